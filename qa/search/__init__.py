"""Search: the hybrid dense + BM25 retriever behind a small backend protocol."""

# How the retriever combines the dense and keyword sides (qa.search.retriever); here, so that
# the command line can offer them without importing the search code.
# ``milvus-rrf`` and ``milvus-weighted`` are Milvus's own rankers (a Milvus backend only).
FUSIONS = ("linear", "rrf", "dense", "bm25", "milvus-rrf", "milvus-weighted")
