"""The --json shape: an answer merged across passages cites every passage and every URL."""

from __future__ import annotations

from qa.answer import citation_for
from qa.types import Answer, Hit, Passage, Response, Span


def _hit(n: int, text: str, url: str, other_urls: tuple[str, ...] = ()) -> Hit:
    p = Passage(id=f"p{n}", article_id=f"a{n}", paragraph=0, start=0, end=len(text), text=text)
    return Hit(
        passage=p,
        score=1.0 / n,
        rank=n,
        title=f"T{n}",
        date="2024-01-02",
        url=url,
        source="",
        other_urls=other_urls,
    )


def test_merged_answer_cites_all_passages_and_copies() -> None:
    text = "The mayor, Ann Lee, opened the bridge."
    h1 = _hit(1, text, "https://a.example/1", ("https://b.example/copy",))
    h2 = _hit(2, "Unrelated passage about weather.", "https://c.example/2")
    h3 = _hit(3, "Ann Lee spoke at the opening.", "https://d.example/3")
    ans = Answer(
        text="Ann Lee",
        sentence=text,
        confidence=0.9,
        hit=h1,
        span=Span(11, 18),
        sentence_span=Span(0, len(text)),
        extra_hits=(h3,),
    )
    hits = [h1, h2, h3]
    cites = [citation_for(i + 1, h, ans) for i, h in enumerate(hits)]
    resp = Response("Who opened the bridge?", ans, [ans], cites, hits)
    doc = resp.to_json()
    assert doc["answer"]["citation"] == 1
    assert doc["answer"]["citations"] == [1, 3]
    first = doc["citations"][0]
    assert first["urls"] == ["https://a.example/1", "https://b.example/copy"]
    assert first["passage"][first["start"] : first["end"]] == "Ann Lee"
    assert doc["citations"][2]["start"] is None  # offsets only where the span itself sits


def test_no_answer_has_no_answer_citations() -> None:
    h = _hit(1, "Some text.", "https://a.example/1")
    resp = Response("q", None, [], [citation_for(1, h, None)], [h])
    assert resp.answer_citations() == [] and resp.to_json()["answer"] is None
