"""Search: the hybrid dense + BM25 retriever behind a small backend protocol."""

# How the retriever combines the dense and keyword sides (qa.search.retriever); here, so that
# the command line can offer them without importing the search code.
FUSIONS = ("linear", "rrf", "dense", "bm25")
