"""Indexing: chunks, embeddings, the store, FAISS and BM25 generations, near-duplicates, watch."""
