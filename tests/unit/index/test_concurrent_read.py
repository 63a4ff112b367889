"""Readers running while imports write always see a complete generation.

A background thread runs four ``newsqa import`` processes one after another (fast fake
embedder), each committing a new generation, while this test keeps searching with one
long-lived Retriever and fresh ones, and checking the index: every observed article count is
one of the committed totals (never half an import), every hit's passage and vector are there,
and the integrity check passes on whatever generation is current.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_import_kill import ENV, LAYOUTS, article, use_layout

from qa.index.check import check_index
from qa.index.embed import HashEmbedder
from qa.index.folder import open_store
from qa.search.retriever import Retriever

pytestmark = pytest.mark.crash

BATCHES = 4
PER_BATCH = 300


def _import(root: Path, feed: Path) -> None:
    cmd = [sys.executable, "-m", "qa.cli.main", "import", str(feed), "--index-dir", str(root)]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_readers_see_only_complete_generations(
    tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_layout(monkeypatch, layout)
    rng = random.Random(7)
    records = [article(rng, i) for i in range(PER_BATCH * (BATCHES + 1))]
    feeds = []
    for b in range(BATCHES + 1):
        feed = tmp_path / f"feed-{b}.jsonl"
        chunk = records[b * PER_BATCH : (b + 1) * PER_BATCH]
        feed.write_text("\n".join(json.dumps(r) for r in chunk) + "\n", encoding="utf-8")
        feeds.append(feed)
    root = tmp_path / "idx"
    _import(root, feeds[0])
    totals = {PER_BATCH * (b + 1) for b in range(BATCHES + 1)}
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for feed in feeds[1:]:
                _import(root, feed)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    embedder = HashEmbedder(384)
    long_lived = Retriever(root, embedder)
    seen: set[int] = set()
    checks = 0
    # The last round starts after the writer has ended, so that it sees the final generation.
    done = False
    while not done:
        done = not thread.is_alive() and checks >= 2
        for retriever in (long_lived, Retriever(root, embedder)):
            hits = retriever.search("bridge plan officials", k=5)
            assert len(hits) == 5 and all(h.passage.text for h in hits)
        with open_store(root) as store:
            gen = store.current_gen
            articles, _ = store.counts(gen)
        assert articles in totals, f"generation {gen} shows {articles} articles"
        seen.add(articles)
        assert check_index(root) == []
        checks += 1
    thread.join()
    assert not errors, errors
    assert PER_BATCH * (BATCHES + 1) in seen
    assert len(seen) >= 3, f"only saw {sorted(seen)}: the reads did not overlap the writes"
