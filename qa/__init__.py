"""newsqa: extractive question answering over a folder of news articles, with citations."""

__version__ = "0.1.0"
