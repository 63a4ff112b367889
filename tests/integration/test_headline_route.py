"""The headline route with the real embedder and real FAISS: a video page whose only text is the
site's ad survey is found by its headline.

The corpus mimics the news slice: several video pages share one survey as their whole body and
differ only by headline, and text articles about streaming and television match the question's
words in their passages. With a small candidate pool (as 100 candidates are small against a
news archive), the passage routes alone never reach the video page. A Milvus Lite copy ranks
the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SHARED_DIR  # noqa: F401  (keeps the shared conftest loaded first)

from qa.index.check import check_index
from qa.index.embed import Embedder
from qa.index.indexer import Indexer
from qa.search.engines import open_backend, publisher_for
from qa.search.retriever import Retriever

pytestmark = pytest.mark.integration

SURVEY = (
    "How relevant is this ad to you? Did you encounter any technical issues? Video player was "
    "slow to load content. Video content never loaded. Ad froze or did not finish loading. "
    "Video content did not start after ad. Audio on ad was too loud. Other issues."
)
VIDEOS = {
    "squid": "'Squid Game': Netflix green lights season 2",
    "taco": "Taco Bell is bringing back the Mexican Pizza",
    "storm": "Watch the storm surge flood a street in Fort Myers",
    "court": "Judge orders the release of the search warrant inventory",
}
TEXTS = [
    (
        "Streaming services raise their prices",
        "Netflix, Disney+ and HBO Max have all raised the price of their monthly plans this "
        "year, and analysts expect more increases as the services try to turn a profit.",
    ),
    (
        "The most watched series of the summer",
        "Stranger Things led the summer's streaming charts, followed by a crime drama and a "
        "cooking competition; a second season of the drama was announced in July.",
    ),
    (
        "Television networks plan their fall schedules",
        "The broadcast networks renewed most of their comedies for another season, while two "
        "dramas were cancelled after their first season drew small audiences.",
    ),
    (
        "A Korean film wins at the festival",
        "A South Korean thriller won the top prize at the festival on Saturday, the second "
        "Korean winner in four years, and its director thanked the streaming service.",
    ),
    (
        "Video game sales slow after the pandemic boom",
        "Sales of video games fell in the second quarter as players returned outdoors; the "
        "biggest publishers still expect their new seasons of online games to sell well.",
    ),
    (
        "Netflix loses subscribers for a second quarter",
        "Netflix said it lost nearly a million subscribers in the second quarter, fewer than it "
        "had feared, and that it will launch a cheaper plan with advertising.",
    ),
]
QUESTION = "Which show did Netflix renew for a second season?"
GOLD = "https://video.example/squid"


def page_text(title: str, day: str, body: str, url: str) -> str:
    return f"{title}\n\n{day}\n\n{body}\n\nOriginal url:\n<{url}>\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = tmp_path_factory.mktemp("videos")
    for name, title in VIDEOS.items():
        page = page_text(title, "September 20, 2022", SURVEY, f"https://video.example/{name}")
        (corpus / f"{name}.txt").write_text(page, encoding="utf-8")
    for i, (title, body) in enumerate(TEXTS):
        page = page_text(title, "September 19, 2022", body, f"https://news.example/{i}")
        (corpus / f"text{i}.txt").write_text(page, encoding="utf-8")
    return corpus


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder, corpus: Path) -> Path:
    index = tmp_path_factory.mktemp("index")
    report = Indexer(index, real_embedder).update([corpus])
    assert report.headlines_added == len(VIDEOS) + len(TEXTS)
    return index


def urls(root: Path, embedder: Embedder, weight: float | None, uri: str = "embedded") -> list[str]:
    backend = open_backend(root, uri)
    r = Retriever(root, embedder, candidates=3, headline_weight=weight, backend=backend)
    try:
        return [h.url for h in r.search(QUESTION, k=7)]
    finally:
        r.backend.close()


def test_the_page_told_only_by_its_headline_is_found(root: Path, real_embedder: Embedder) -> None:
    # The passage routes find only text articles (3 candidates a side, as 100 are few against
    # an archive); the video page comes in by its headline, first after the reader's passages.
    before = urls(root, real_embedder, 0.0)
    found = urls(root, real_embedder, None)  # the default weight
    n = min(5, len(before))  # the reader's passages stay those of the passage routes
    assert GOLD not in before and found[:n] == before[:n]
    assert found[n] == GOLD
    assert not {f"https://video.example/{n}" for n in VIDEOS if n != "squid"} & set(found)
    assert check_index(root) == []


@pytest.mark.milvus
@pytest.mark.usefixtures("release_lite")
def test_milvus_finds_it_alike(
    root: Path, corpus: Path, real_embedder: Embedder, tmp_path: Path
) -> None:
    pytest.importorskip("pymilvus")
    lite, other = f"milvus:{tmp_path / 'm.db'}", tmp_path / "milvus"
    Indexer(other, real_embedder, backend=publisher_for(other, lite)).update([corpus])
    found = {}
    for weight in (0.0, None):  # the route off, then on (the default)
        found[weight] = urls(other, real_embedder, weight, lite)
        assert found[weight] == urls(root, real_embedder, weight)
    assert GOLD not in found[0.0] and GOLD in found[None]
