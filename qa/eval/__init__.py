"""Evaluation: SQuAD metrics, retrieval and answers end to end, the reader on gold paragraphs."""
