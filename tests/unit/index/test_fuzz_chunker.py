"""Fuzzing the chunker (hypothesis): whatever the text, every passage keeps its token budget
(cl100k and, with a short title, the embedder's word-piece window) and its offsets slice back
to its text; nothing but white space is lost.

Bounded by example counts (the ``default`` profile of tests/conftest.py);
``pytest --hypothesis-profile=fuzz-long tests/unit -k fuzz`` searches far longer.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qa.index.chunk import Chunker, tiktoken_counter
from qa.index.embed import wordpiece_counter
from qa.types import Article, Passage

COUNT = tiktoken_counter()
PIECES = wordpiece_counter()

WORDS = st.sampled_from(
    ["The", "harbour", "U.S.", "Mr.", "Jan.", "5.", "said", '"Yes."', "(a)", "?", "!", "...", "—"]
)
CHUNK = st.one_of(
    st.text(max_size=40),
    WORDS,
    st.sampled_from([" ", "\n", "\n\n", "\n\n\n", ". ", "\t", "\u00a0", "\u2028", "\r\n"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=100, max_size=3000),  # no spaces
    st.text(alphabet="中文字符漢字日本語", min_size=50, max_size=800),
    st.text(alphabet="0123456789+/=", min_size=100, max_size=2000),  # base64-like
)
TEXT = st.lists(CHUNK, min_size=1, max_size=40).map("".join)


@given(text=TEXT, budget=st.integers(8, 250), overlap=st.integers(0, 2))
def test_fuzz_passages_keep_the_budget_and_their_offsets(
    text: str, budget: int, overlap: int
) -> None:
    chunker = Chunker(
        max_tokens=budget,
        min_tokens=min(40, budget // 2),
        overlap_sentences=overlap,
        counter=COUNT,
        model_max_tokens=None,
    )
    article = Article(title="Title", text=text)
    passages = chunker.split(article)
    # Offsets are into the article's text as stored (control characters made visible).
    for p in passages:
        assert COUNT(p.text) <= budget
        assert article.text[p.start : p.end] == p.text
        assert p.text.strip() == p.text and p.text
    assert_covers(article.text, passages)


def assert_covers(text: str, passages: list[Passage]) -> None:
    """Every non-space character of ``text`` lies inside some passage."""
    inside = [False] * len(text)
    for p in passages:
        inside[p.start : p.end] = [True] * (p.end - p.start)
    assert all(inside[i] or c.isspace() for i, c in enumerate(text))


@given(text=TEXT, title=st.text(max_size=30))
def test_fuzz_passages_fit_the_embedder_window(text: str, title: str) -> None:
    chunker = Chunker(counter=COUNT, model_counter=PIECES)  # the defaults: 200 and 256
    article = Article(title=title or "T", text=text)
    for p in chunker.split(article):
        assert COUNT(p.text) <= 200
        assert PIECES(article.title) + PIECES(p.text) + 3 <= 256
        assert article.text[p.start : p.end] == p.text
