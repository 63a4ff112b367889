"""Keyword side of retrieval: tokenisation and a BM25 index (bm25s) over passages.

A generation's base segment is a bm25s index; the few passages added since (its delta segment,
see qa.index.generation) are scored by :class:`DeltaKeywords` with the base's collection statistics,
so that scores from both segments are on one scale and can be fused together.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
# Version 2 undoubles a stem's final consonant pair. Snowball (Porter2) strips "-ed"/"-ing"
# and then undoubles ("boycotted" -> "boycot") but leaves the same double in the bare word
# ("boycotts" -> "boycott"), so a question never matched the other form. Indexes record the
# version they were built with and are queried with it (version 1: plain Snowball).
TOKENIZER_VERSION = 2
_DOUBLE = re.compile(r"(bb|dd|ff|gg|mm|nn|pp|rr|tt)$")


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    """bm25s's English stop words, read from its module file.

    Importing ``bm25s.stopwords`` runs the package's ``__init__``, which imports scipy: about
    half a second of a one-shot question. The list itself is plain Python.
    """
    import importlib.util

    spec = importlib.util.find_spec("bm25s")
    places = list(spec.submodule_search_locations or []) if spec else []
    source = Path(places[0]) / "stopwords.py" if places else None
    if source is None or not source.is_file():  # an unusual install: import it the usual way
        from bm25s.stopwords import STOPWORDS_EN

        return frozenset(STOPWORDS_EN)
    namespace: dict[str, object] = {}
    exec(compile(source.read_text(encoding="utf-8"), str(source), "exec"), namespace)
    words = namespace["STOPWORDS_EN"]
    assert isinstance(words, tuple | list)
    return frozenset(str(w) for w in words)


class _SavedScores:
    """A saved bm25s index read with numpy alone (no bm25s, so no scipy import).

    bm25s precomputes every (term, document) score into a sparse column matrix, saved as three
    arrays, the vocabulary and the parameters. Scoring a query adds up its terms' columns,
    in the order and with the ``np.add.at`` calls of bm25s's own numpy backend, so the scores
    are the same to the bit (``tests/unit/index/test_keywords.py``). Only the variants without
    a non-occurrence term (lucene, robertson, atire) are read this way.
    """

    METHODS = ("lucene", "robertson", "atire")

    def __init__(self, folder: Path) -> None:
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        self.vocab_dict: dict[str, int] = json.loads(
            (folder / "vocab.index.json").read_text(encoding="utf-8")
        )
        self.dtype = np.dtype(params.get("dtype", "float32"))
        self.scores = {
            name: np.load(folder / f"{name}.csc.index.npy")
            for name in ("data", "indices", "indptr")
        }
        self.num_docs = int(params["num_docs"])

    @classmethod
    def readable(cls, folder: Path) -> bool:
        """Whether ``folder`` holds an index this class reads (else bm25s loads it)."""
        try:
            params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return (
            isinstance(params, dict)
            and params.get("method") in cls.METHODS
            and not (folder / "nonoccurrence_array.index.npy").exists()
        )

    def get_scores_from_ids(self, ids: list[int]) -> npt.NDArray[np.float32]:
        data, indices, indptr = (self.scores[k] for k in ("data", "indices", "indptr"))
        out = np.zeros(self.num_docs, dtype=self.dtype)
        for t in ids:
            start, end = indptr[t], indptr[t + 1]
            np.add.at(out, indices[start:end], data[start:end])
        return out


@functools.lru_cache(maxsize=1)
def _stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str, version: int | None = None) -> list[str]:
    """Lower-case words, English stop words removed, Snowball-stemmed.

    Args:
        text: Any text.
        version: Tokenizer version (default: the current one); an index is queried with the
            version it was built with.
    """
    version = TOKENIZER_VERSION if version is None else version
    stop = _stopwords()
    words = [w.replace("’", "'").split("'")[0] for w in _WORD.findall(text.lower())]
    words = [w for w in words if w and w not in stop]
    stems: list[str] = _stemmer().stemWords(words)  # type: ignore[attr-defined]
    if version >= 2:
        stems = [_DOUBLE.sub(lambda m: m.group(1)[0], s) if len(s) > 3 else s for s in stems]
    return stems


class KeywordIndex:
    """BM25 over a fixed list of documents (one generation of passages).

    Args:
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
        version: Tokenizer version of the indexed tokens; queries are tokenized with it.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75, version: int | None = None) -> None:
        self.k1 = k1
        self.b = b
        self.version = TOKENIZER_VERSION if version is None else version
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

    def build_ids(self, docs: list[npt.NDArray[np.int32]], vocab: dict[str, int]) -> None:
        """Index documents given as token-id arrays over ``vocab`` (term -> id).

        The same index as :meth:`build` on the token lists, in a fraction of the memory.
        """
        import bm25s

        bm25 = bm25s.BM25(k1=self.k1, b=self.b)
        if docs:
            bm25.index((docs, vocab), show_progress=False)
        self._bm25 = bm25
        self.size = len(docs)

    def save(self, folder: Path) -> None:
        """Write the index files into ``folder``."""
        if self._bm25 is not None and self.size:
            self._bm25.save(str(folder), show_progress=False)  # type: ignore[attr-defined]

    def load(self, folder: Path, size: int) -> None:
        """Read an index written by ``save`` (``size`` documents; 0 means empty)."""
        self.size = size
        if not size:
            self._bm25 = None
        elif _SavedScores.readable(folder):
            self._bm25 = _SavedScores(folder)
        else:
            import bm25s

            self._bm25 = bm25s.BM25.load(str(folder), mmap=False, show_progress=False)

    def doc_freq(self, term: str) -> int:
        """Number of documents holding ``term`` (0 for unknown terms)."""
        if self._bm25 is None or not self.size:
            return 0
        t = self._bm25.vocab_dict.get(term)  # type: ignore[attr-defined]
        indptr = self._bm25.scores["indptr"]  # type: ignore[attr-defined]
        # bm25s keeps one sparse column per vocabulary entry: its length is the term's df.
        if t is None or t + 1 >= len(indptr):
            return 0
        return int(indptr[t + 1] - indptr[t])

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every document for ``query`` (zeros when nothing matches)."""
        tokens = tokenize(query, self.version)
        if not self.size or self._bm25 is None:
            return np.zeros(self.size, dtype=np.float32)
        vocab = self._bm25.vocab_dict  # type: ignore[attr-defined]
        ids = [vocab[t] for t in tokens if t in vocab]
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        out = self._bm25.get_scores_from_ids(ids)  # type: ignore[attr-defined]
        return np.asarray(out, dtype=np.float32)


class DeltaKeywords:
    """BM25 (Lucene variant, as bm25s) over a small delta segment, scored with base statistics.

    A term's IDF counts the documents of base and delta together, and lengths are normalised
    by the base's average length, so a delta passage scores as it would had it been in the
    base when the base was built.

    Args:
        k1: BM25 term-frequency saturation (same as the base's).
        b: BM25 length normalisation (same as the base's).

    Queries are tokenized with the base's tokenizer version (the current one without a base).
    """

    FILE = "delta-tokens.json"

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self.docs: list[Counter[str]] = []
        self.lengths: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self.avgdl = 1.0
        self._base: KeywordIndex | None = None
        self._postings: dict[str, list[int]] = {}

    @property
    def size(self) -> int:
        return len(self.docs)

    def build(self, token_lists: list[list[str]], base: KeywordIndex | None, avgdl: float) -> None:
        """Index the delta documents against ``base`` (avgdl: the base's mean length)."""
        self.docs = [Counter(toks) for toks in token_lists]
        self.lengths = np.asarray([len(t) for t in token_lists], dtype=np.float32)
        self.avgdl = avgdl if avgdl > 0 else float(self.lengths.mean()) if self.size else 1.0
        self._base = base
        self._postings = {}
        for i, doc in enumerate(self.docs):
            for term in doc:
                self._postings.setdefault(term, []).append(i)

    def save(self, folder: Path) -> None:
        """Write the token lists (the delta is small: it is re-indexed on load)."""
        folder.mkdir(parents=True, exist_ok=True)
        docs = [[t for t, n in d.items() for _ in range(n)] for d in self.docs]
        (folder / self.FILE).write_text(json.dumps({"avgdl": self.avgdl, "docs": docs}))

    def load(self, folder: Path, base: KeywordIndex) -> None:
        """Read what ``save`` wrote and index it against ``base``."""
        data = json.loads((folder / self.FILE).read_text())
        self.build([list(map(str, d)) for d in data["docs"]], base, float(data["avgdl"]))

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every delta document for ``query``."""
        out = np.zeros(self.size, dtype=np.float32)
        if not self.size:
            return out
        n = (self._base.size if self._base else 0) + self.size
        norm = self.k1 * (1 - self.b + self.b * self.lengths / self.avgdl)
        # A repeated query term counts again, as in bm25s.
        version = self._base.version if self._base is not None else None
        for term in tokenize(query, version):
            docs = self._postings.get(term)
            if not docs:
                continue
            df = len(docs) + (self._base.doc_freq(term) if self._base else 0)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = np.asarray([self.docs[i][term] for i in docs], dtype=np.float32)
            out[docs] += idf * tf / (tf + norm[docs])
        return out
