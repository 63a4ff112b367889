"""The command line, ``newsqa`` (with ``qa.tui``, the only code that prints)."""
