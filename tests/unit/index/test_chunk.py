"""Unit tests for qa.text (sentence/paragraph offsets) and qa.index.chunk (passages)."""

from __future__ import annotations

import itertools
import random

import pytest

from qa.index.chunk import Chunker, tiktoken_counter
from qa.text import paragraph_spans, sentence_spans
from qa.types import Article

COUNT = tiktoken_counter()


def fake_wordpieces(text: str) -> int:
    """Stand-in for the embedder's word-piece counter: about 1.3 pieces a word."""
    return int(len(text.split()) * 1.3 + 0.999)


def sentences(text: str, start: int = 0, end: int | None = None) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text, start, end)]


# -- sentences and paragraphs ---------------------------------------------------------------


def test_sentence_spans_slices_are_the_sentences() -> None:
    text = (
        'Mr. Smith went to the U.S. Army base on Jan. 5. He said "It is fine." '
        "Then he left! Did he return? Yes, at 5 p.m. He did."
    )
    assert sentences(text) == [
        "Mr. Smith went to the U.S. Army base on Jan. 5.",
        'He said "It is fine."',
        "Then he left!",
        "Did he return?",
        "Yes, at 5 p.m. He did.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "The U.S. Senate voted on Tuesday.",
        "Mr. Putin met Mrs. Merkel and Dr. Jones.",
        "J. K. Rowling wrote the book.",
        "Officials from the U.K. and the U.N. Security Council met in St. Petersburg.",
    ],
)
def test_abbreviations_and_initials_do_not_split(text: str) -> None:
    assert sentences(text) == [text]


def test_sentence_spans_offsets_cover_the_text_in_order() -> None:
    text = '  First one.  Second one?\n\nThird, after a break!  "Fourth," he said.  '
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "First one.",
        "Second one?",
        "Third, after a break!",
        '"Fourth," he said.',
    ]
    for (_a, b), (c, _) in itertools.pairwise(spans):
        assert b <= c
        assert text[b:c].strip() == ""
    # Every non-space character is in some sentence.
    covered = "".join(text[a:b] for a, b in spans)
    assert "".join(covered.split()) == "".join(text.split())


def test_sentence_spans_within_a_range() -> None:
    text = "He won.\n\nShe lost. It was close. The end."
    start = text.index("She")
    end = text.index(" The end")
    assert sentences(text, start, end) == ["She lost.", "It was close."]
    assert all(start <= a < b <= end for a, b in sentence_spans(text, start, end))


def test_paragraph_breaks_end_sentences() -> None:
    text = "A heading without a period\n\nThen the body starts here."
    assert sentences(text) == ["A heading without a period", "Then the body starts here."]


def test_paragraph_spans() -> None:
    text = "  One.\n\nTwo para\nline two.\n \n\n Three.  "
    spans = paragraph_spans(text)
    assert [text[a:b] for a, b in spans] == ["One.", "Two para\nline two.", "Three."]
    assert paragraph_spans("") == []
    assert paragraph_spans("single") == [(0, 6)]


# -- chunker --------------------------------------------------------------------------------

_WORDS = [
    "government",
    "minister",
    "council",
    "election",
    "market",
    "company",
    "police",
    "report",
    "city",
    "river",
    "bridge",
    "budget",
    "school",
    "hospital",
    "court",
    "judge",
    "trade",
    "energy",
    "water",
    "station",
]


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, sentences_: int, words: int = 14) -> str:
    return " ".join(_sentence(rng, words) for _ in range(sentences_))


def make_article(seed: int = 0) -> Article:
    """Tiny paragraphs, normal ones and one very long paragraph."""
    rng = random.Random(seed)
    paragraphs = [
        "Photo: City Herald",  # tiny
        _paragraph(rng, 4),  # normal
        "Short line one.",  # tiny
        "Short line two.",  # tiny
        _paragraph(rng, 40),  # long: must be split
        _paragraph(rng, 3),
        "The end.",  # tiny, last
    ]
    return Article(
        title="Council approves the bridge budget",
        text="\n\n".join(paragraphs),
        date="2023-04-11",
        url="https://example.com/a",
    )


@pytest.fixture()
def chunker() -> Chunker:
    return Chunker(
        max_tokens=200, min_tokens=40, model_max_tokens=256, model_counter=fake_wordpieces
    )


def test_passage_text_is_the_article_slice(chunker: Chunker) -> None:
    article = make_article()
    passages = chunker.split(article)
    assert passages
    for p in passages:
        assert p.text == article.text[p.start : p.end]
        assert p.article_id == article.id
        assert p.title == article.title
        assert p.text == p.text.strip()
        assert p.embed_text() == f"{article.title}\n{p.text}"


def test_passages_fit_the_token_budget_and_model_window(chunker: Chunker) -> None:
    for seed in range(5):
        article = make_article(seed)
        for p in chunker.split(article):
            assert COUNT(p.text) <= 200
            assert fake_wordpieces(p.title) + fake_wordpieces(p.text) + 3 <= 256


def test_model_window_splits_further() -> None:
    """A small model window (fake counter) splits passages that fit the tiktoken budget."""
    article = make_article(1)
    wide = Chunker(model_max_tokens=None).split(article)
    narrow = Chunker(model_max_tokens=64, model_counter=fake_wordpieces).split(article)
    assert len(narrow) > len(wide)
    for p in narrow:
        assert p.text == article.text[p.start : p.end]
        assert fake_wordpieces(p.title) + fake_wordpieces(p.text) + 3 <= 64


def test_every_non_space_character_is_in_some_passage(chunker: Chunker) -> None:
    article = make_article(2)
    covered = [False] * len(article.text)
    for p in chunker.split(article):
        for i in range(p.start, p.end):
            covered[i] = True
    missing = [c for c, ok in zip(article.text, covered, strict=True) if not ok and not c.isspace()]
    assert missing == []


def test_tiny_paragraphs_are_merged(chunker: Chunker) -> None:
    article = make_article()
    passages = chunker.split(article)
    texts = [p.text for p in passages]
    # No passage is just a caption or a one-liner.
    for tiny in ("Photo: City Herald", "Short line one.", "Short line two.", "The end."):
        assert tiny not in texts
        assert any(tiny in t for t in texts)
    # The caption went with the paragraph after it, the last line with the one before.
    first = passages[0]
    assert first.text.startswith("Photo: City Herald\n\n")
    assert first.paragraph == 1
    assert passages[-1].text.endswith("The end.")
    assert "\n\nThe end." in passages[-1].text


def test_long_paragraph_split_with_overlap(chunker: Chunker) -> None:
    article = make_article()
    paragraphs = paragraph_spans(article.text)
    long_start, long_end = paragraphs[4]
    parts = [p for p in chunker.split(article) if p.start >= long_start and p.end <= long_end]
    assert len(parts) >= 3
    assert all(p.paragraph == 5 for p in parts)
    for prev, nxt in itertools.pairwise(parts):
        assert nxt.start > prev.start
        assert nxt.start < prev.end, "consecutive parts of a split paragraph overlap"
        overlap = article.text[nxt.start : prev.end]
        # The overlap is whole sentence(s): it starts a sentence of the next part.
        assert sentences(nxt.text)[0] == sentences(overlap)[0]
    assert parts[0].start == long_start and parts[-1].end == long_end


def test_paragraph_numbers_increase(chunker: Chunker) -> None:
    article = make_article(3)
    passages = chunker.split(article)
    numbers = [p.paragraph for p in passages]
    assert numbers == sorted(numbers)
    assert numbers[0] == 1
    assert max(numbers) <= len(paragraph_spans(article.text))
    starts = [p.start for p in passages]
    assert starts == sorted(starts)


def test_passage_ids_are_stable_and_unique(chunker: Chunker) -> None:
    article = make_article(4)
    first = chunker.split(article)
    again = Chunker(
        max_tokens=200, min_tokens=40, model_max_tokens=256, model_counter=fake_wordpieces
    ).split(make_article(4))
    assert [p.id for p in first] == [p.id for p in again]
    assert first == again
    assert len({p.id for p in first}) == len(first)
    other = chunker.split(make_article(5))
    assert not {p.id for p in first} & {p.id for p in other}


def test_short_article_is_one_passage(chunker: Chunker) -> None:
    article = Article(title="T", text="Only one short paragraph.")
    [p] = chunker.split(article)
    assert (p.start, p.end, p.paragraph, p.text) == (0, len(article.text), 1, article.text)


def test_sentence_longer_than_budget_is_hard_split() -> None:
    words = " ".join(f"word{i}" for i in range(600))  # no sentence end at all
    article = Article(title="Table", text=words)
    passages = Chunker(max_tokens=100, model_max_tokens=None).split(article)
    assert len(passages) > 1
    for p in passages:
        assert p.text == article.text[p.start : p.end]
        assert COUNT(p.text) <= 100


def _quoted_paragraph(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 9)))
        out.append(
            rng.choice(['"{}," he said.', '"{}."', "{}!", "'{}?'", "{} - it's done."]).format(
                words.capitalize()
            )
        )
    return " ".join(out)


@pytest.mark.parametrize("budget", [25, 40, 64])
def test_joined_sentences_stay_within_budget(budget: int) -> None:
    """Token counts of sentences do not add up once joined; the window itself must fit."""
    rng = random.Random(budget)
    for _ in range(30):
        article = Article(title="Quotes", text=_quoted_paragraph(rng, 30))
        passages = Chunker(max_tokens=budget, min_tokens=1, model_max_tokens=None).split(article)
        assert [p for p in passages if COUNT(p.text) > budget] == []


# -- text without sentence or word boundaries ------------------------------------------------


def random_letters(n: int, seed: int = 3) -> str:
    rng = random.Random(seed)
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=n))


@pytest.mark.parametrize(
    "body",
    [
        random_letters(200_000),  # a line without spaces (base64 and URLs look alike)
        "x" * 100_000,  # one letter: BPE packs runs into long tokens
        "".join(random.Random(5).choices("中文字符漢字日本語한국어", k=30_000)),  # no spaces at all
        "Intro sentence here. " + random_letters(50_000) + " Outro sentence here.",
    ],
    ids=["letters", "one-letter", "cjk", "blob-inside-sentences"],
)
def test_text_without_boundaries_is_cut_within_the_budget(body: str) -> None:
    chunker = Chunker(max_tokens=200, model_max_tokens=256)
    passages = chunker.split(Article(title="Blob", text=body))
    assert len(passages) > 1
    assert max(COUNT(p.text) for p in passages) <= 200
    assert all(body[p.start : p.end] == p.text for p in passages)
    # Nothing is lost: every non-space character is in some passage, in order.
    assert "".join(p.text for p in passages).replace(" ", "") == body.replace(" ", "")


def test_a_long_sentence_of_words_is_cut_between_words() -> None:
    words = [f"w{i}" for i in range(20_000)]
    body = " ".join(words)  # one sentence: no period anywhere
    passages = Chunker(max_tokens=200, model_max_tokens=None).split(Article(title="T", text=body))
    assert max(COUNT(p.text) for p in passages) <= 200
    assert [w for p in passages for w in p.text.split(" ")] == words
    assert all(p.text == p.text.strip() for p in passages)


def test_any_counter_bounds_the_passage_length() -> None:
    """With a word counter a 1 MB word is one 'token': passages are still cut (32 characters
    per token of budget), never handed to a counter whole."""
    seen: list[int] = []

    def counting_words(text: str) -> int:
        seen.append(len(text))
        return len(text.split())

    body = random_letters(1_000_000)
    chunker = Chunker(max_tokens=50, counter=counting_words, model_max_tokens=None)
    passages = chunker.split(Article(title="T", text=body))
    assert max(len(p.text) for p in passages) <= 50 * 32
    assert "".join(p.text for p in passages) == body
    assert max(seen) <= 50 * 32
