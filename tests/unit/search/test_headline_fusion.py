"""The headline route: article hits from the headline vectors fused into the passage candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from qa.index.embed import HashEmbedder
from qa.search.backend import PassageRecord
from qa.search.headline_route import below
from qa.search.retriever import Retriever
from qa.types import Passage
from tests.unit.index.test_indexer import article_text, make_indexer, write


def record(article: str, paragraph: int, title: str = "") -> PassageRecord:
    text = f"paragraph {paragraph} of {article}"
    passage = Passage(
        f"{article}-{paragraph}", article, paragraph, 0, len(text), text, title or article
    )
    return PassageRecord(passage, "2022-06-14", f"https://a.example/{article}", "example")


class StubView:
    """The parts of a search view the headline fusion reads: passage rows and lead passages."""

    def __init__(self, records: dict[int, PassageRecord]) -> None:
        self.rows = records

    def records(self, docs: list[int]) -> dict[int, PassageRecord]:
        return {d: self.rows[d] for d in docs if d in self.rows}

    def lead(self, article_ids: list[str]) -> dict[str, int]:
        leads: dict[str, int] = {}
        for d in sorted(self.rows, reverse=True):
            leads[self.rows[d].passage.article_id] = d
        return {a: leads[a] for a in article_ids if a in leads}


def lift(
    fused: list[tuple[int, float]],
    dense: dict[int, float],
    heads: dict[str, float],
    rows: dict[int, PassageRecord],
    weight: float = 0.2,
) -> list[tuple[int, float]]:
    r = Retriever.__new__(Retriever)  # only the fusion settings are read: no index needed
    r.headline_weight, r.bm25_weight, r.fusion = weight, 0.25, "linear"
    out, records = r._lift(StubView(rows), fused, heads, dense)  # type: ignore[arg-type]
    assert {d for d, _ in out} <= set(records), "every candidate comes with its record"
    return [(d, round(s, 6)) for d, s in out]


ROWS = {
    0: record("a", 0),
    1: record("b", 0),
    2: record("b", 1),
    7: record("c", 0),
    8: record("c", 1),
}


def test_a_headline_hit_lifts_its_article_s_best_candidate_only() -> None:
    fused = [(0, 1.0), (1, 0.85), (2, 0.8)]
    out = lift(fused, {0: 0.8, 1: 0.7, 2: 0.6}, {"b": 0.5}, ROWS)
    # b/0 gets 0.2 * best (1.0) * 0.5 = 0.1; b/1 keeps its score.
    assert out == [(0, 1.0), (1, 0.95), (2, 0.8)]


def test_an_article_without_candidates_brings_in_its_first_passage() -> None:
    fused = [(0, 1.0), (1, 0.9)]
    out = lift(fused, {0: 0.8, 1: 0.6}, {"c": 0.5}, ROWS)
    # c has no candidate: its first passage (doc 7, not 8) enters at the score of a passage
    # found by neither side (0.75 * the lowest cosine, 0.6) plus its lift (0.2 * 1.0 * 0.5).
    assert dict(out)[7] == round(0.75 * 0.6 + 0.1, 6)
    assert 8 not in dict(out)


def test_the_lift_is_a_share_of_the_best_score() -> None:
    fused = [(0, 10.0), (1, 9.0)]
    out = lift(fused, {}, {"b": 0.5}, ROWS)
    assert dict(out)[1] == 9.0 + 0.2 * 10.0 * 0.5


def test_weight_zero_changes_nothing() -> None:
    fused = [(0, 1.0), (1, 0.9)]
    assert lift(fused, {0: 0.8, 1: 0.6}, {"b": 0.5}, ROWS, weight=0.0)[:2] == fused


SURVEY = (
    "How relevant is this ad to you? Did you encounter any technical issues? Video player was "
    "slow to load content. Video content never loaded. Ad froze or did not finish loading."
)


HEADS = [
    "Netflix green lights Squid Game season two",
    "Taco Bell brings back the Mexican pizza",
    "Storm floods the coast of Florida",
    "Senate passes the budget bill",
]


@pytest.fixture()
def video_pages(tmp_path: Path) -> Path:
    """Pages whose only text is one survey, told apart by their headlines, and articles whose
    text matches the question's words better than any survey page."""
    return write_video_pages(tmp_path / "corpus")


def write_video_pages(folder: Path) -> Path:
    """The ``video_pages`` corpus in ``folder`` (video pages dated 2022-06-10, text pages
    2023-04-11)."""
    folder.mkdir()
    for i, head in enumerate(HEADS):
        url = f"https://www.example.com/video/{i}"
        write(folder / f"video{i}.txt", article_text(head, [SURVEY], "2022-06-10", url))
    for i in range(6):
        para = (
            f"Netflix shows a new season of its series number {i}; the season of the game "
            f"show {i} opens on Netflix with two new episodes in the season."
        )
        url = f"https://www.example.com/text/{i}"
        write(folder / f"text{i}.txt", article_text(f"Streaming notes {i}", [para], url=url))
    return folder


def test_a_page_told_only_by_its_headline_reaches_the_top_k(
    video_pages: Path, tmp_path: Path
) -> None:
    root = tmp_path / "idx"
    make_indexer(root).update([video_pages])
    query = "Did Netflix green light a second season of Squid Game?"
    off = Retriever(root, HashEmbedder(64), candidates=5, headline_weight=0.0)
    on = Retriever(root, HashEmbedder(64), candidates=5, headline_weight=0.5)
    try:
        gold = "https://www.example.com/video/0"
        before = [h.url for h in off.search(query, k=8)]
        after = [h.url for h in on.search(query, k=8)]
        assert gold not in before and gold in after
        assert "https://www.example.com/video/1" not in after
        # The passages the reader reads (the first 5) are those of the passage routes.
        assert len(before) >= 5 and after[:5] == before[:5]
        assert after.index(gold) >= 5
    finally:
        off.backend.close()
        on.backend.close()


def test_below_keeps_the_reader_s_passages_in_place() -> None:
    plain = [(0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7)]
    lifted = [(9, 1.2), (2, 1.1), (0, 1.0), (3, 0.95), (1, 0.9)]
    out = [(d, round(x, 6)) for d, x in below(plain, lifted, 2)]
    # The rest keep the lifted order, scaled under the last passage read (0.9 / 1.2).
    assert out == [(0, 1.0), (1, 0.9), (9, 0.9), (2, 0.825), (3, 0.7125)]
    assert below(plain, plain, 2) is plain
    assert below(plain, lifted, 0) == lifted


def test_headlines_follow_the_filters(video_pages: Path, tmp_path: Path) -> None:
    from qa.search.backend import Filters

    root = tmp_path / "idx"
    make_indexer(root).update([video_pages])
    r = Retriever(root, HashEmbedder(64), candidates=3, headline_weight=0.2)
    try:
        view = r.view()
        vector = HashEmbedder(64).embed(["Netflix green lights Squid Game season two"])
        assert next(iter(view.headlines(vector, 1, None).values())) == pytest.approx(1.0, abs=1e-2)
        # The video pages are dated 2022-06-10, the text articles 2023-04-11.
        later = view.headlines(vector, 10, Filters(since="2023-01-01"))
        leads = view.lead(list(later))
        dates = {rec.date for rec in view.records(list(leads.values())).values()}
        assert len(later) == 6 and dates == {"2023-04-11"}
    finally:
        r.backend.close()


def test_a_title_several_articles_share_is_not_searched(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    bodies = ["The river rose overnight.", "Markets fell at the open.", "A new bridge opened."]
    for i, body in enumerate(bodies):  # two share a generic title, one has its own
        title = "Live updates" if i < 2 else "Live updates from the bridge opening"
        url = f"https://www.example.com/live/{i}"
        write(folder / f"live{i}.txt", article_text(title, [body], url=url))
    root = tmp_path / "idx"
    make_indexer(root).update([folder])
    vector = HashEmbedder(64).embed(["Live updates"])

    def found() -> set[str]:
        r = Retriever(root, HashEmbedder(64))
        try:
            view = r.view()
            heads = view.headlines(vector, 10, None)
            return {rec.url for rec in view.records(list(view.lead(list(heads)).values())).values()}
        finally:
            r.backend.close()

    assert found() == {"https://www.example.com/live/2"}
    (folder / "live1.txt").unlink()  # the title is now one article's own
    make_indexer(root).update([folder])
    assert found() == {"https://www.example.com/live/0", "https://www.example.com/live/2"}


def test_one_reader_across_delta_generations_reads_only_the_new_headlines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.search import local

    monkeypatch.setenv("NEWSQA_DELTA_MIN", "0")
    monkeypatch.setenv("NEWSQA_DELTA_SHARE", "10")
    folder, root = tmp_path / "corpus", tmp_path / "idx"
    folder.mkdir()

    def page(name: str, title: str, body: str) -> None:
        url = f"https://www.example.com/{name}"
        write(folder / f"{name}.txt", article_text(title, [body], url=url))

    for i in range(4):
        page(f"other{i}", f"Ferry timetable {i}", f"Ferry number {i} sails at noon.")
    page("live0", "Live updates", "The river rose overnight.")
    make_indexer(root).update([folder])
    read: list[int] = []
    real = local.article_meta

    def counting(store: object, rowids: npt.NDArray[np.int64]) -> object:
        read.append(len(rowids))
        return real(store, rowids)  # type: ignore[arg-type]

    monkeypatch.setattr(local, "article_meta", counting)
    r = Retriever(root, HashEmbedder(64))
    vector = HashEmbedder(64).embed(["Live updates"])

    def found() -> dict[str, int]:
        view = r.view()
        leads = view.lead(list(view.headlines(vector, 10, None)))
        recs = view.records(list(leads.values()))
        return {rec.url.rsplit("/", 1)[1]: d for d, rec in recs.items()}

    try:
        assert set(found()) == {"live0", *(f"other{i}" for i in range(4))}
        assert read == [5]
        page("live1", "Live updates", "Markets fell at the open.")  # the title is shared now
        make_indexer(root).update([folder])
        assert set(found()) == {f"other{i}" for i in range(4)}
        (folder / "live0.txt").unlink()  # one article's own again, its passages in the delta
        make_indexer(root).update([folder])
        now = found()
        view = r.view()
        assert view.gen.delta is not None and set(now) == {
            "live1",
            *(f"other{i}" for i in range(4)),
        }
        assert now["live1"] >= view.gen.base.size  # its first passage, a delta document
        # The base's headlines were read once; each delta generation read its own.
        assert read == [5, 1, 1]
    finally:
        r.backend.close()
