"""Readers: the Reader protocol and fallback, the sentence reader, the span reader and its model."""
