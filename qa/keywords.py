"""Keyword side of retrieval: tokenisation and a BM25 index (bm25s) over passages."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


@functools.lru_cache(maxsize=1)
def _stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lower-case words, English stop words removed, Snowball-stemmed."""
    stop = _stopwords()
    words = [w.replace("’", "'").split("'")[0] for w in _WORD.findall(text.lower())]
    words = [w for w in words if w and w not in stop]
    return list(_stemmer().stemWords(words))  # type: ignore[attr-defined]


class KeywordIndex:
    """BM25 over a fixed list of documents (one generation of passages).

    Args:
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._bm25: object | None = None
        self.size = 0

    def build(self, token_lists: list[list[str]]) -> None:
        """Index documents given as token lists (order = document number)."""
        import bm25s

        bm25 = bm25s.BM25(k1=self.k1, b=self.b)
        if token_lists:
            bm25.index(token_lists, show_progress=False)
        self._bm25 = bm25
        self.size = len(token_lists)

    def save(self, folder: Path) -> None:
        """Write the index files into ``folder``."""
        if self._bm25 is not None and self.size:
            self._bm25.save(str(folder), show_progress=False)  # type: ignore[attr-defined]

    def load(self, folder: Path, size: int) -> None:
        """Read an index written by ``save`` (``size`` documents; 0 means empty)."""
        import bm25s

        self.size = size
        self._bm25 = (
            bm25s.BM25.load(str(folder), mmap=False, show_progress=False) if size else None
        )

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every document for ``query`` (zeros when nothing matches)."""
        tokens = tokenize(query)
        if not self.size or self._bm25 is None:
            return np.zeros(self.size, dtype=np.float32)
        vocab = self._bm25.vocab_dict  # type: ignore[attr-defined]
        ids = [vocab[t] for t in tokens if t in vocab]
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        out = self._bm25.get_scores_from_ids(ids)  # type: ignore[attr-defined]
        return np.asarray(out, dtype=np.float32)
