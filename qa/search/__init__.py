"""Search: the hybrid dense + BM25 retriever behind a small backend protocol."""
