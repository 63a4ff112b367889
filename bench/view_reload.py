"""What a reader pays per generation of the embedded index: loading it, and its first ``lead``.

Usage:
    python bench/view_reload.py SCRATCH_INDEX [--repeat N]

SCRATCH_INDEX is a copy of an embedded index (it is written to: one article is added). Times,
wall and CPU: loading the current generation (``LocalBackend.view``), the first ``lead`` call
(each hit article's first passage, as the headline route asks it) for 20 live articles; then
one new article is indexed (a delta generation), and the reload of the view and the first
``lead`` on it are timed again. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.index.embed import Embedder
from qa.index.folder import open_store
from qa.index.indexer import Indexer
from qa.search.local import LocalBackend

ARTICLE = (
    "Harbour crane collapses in a storm\n\nSeptember 30, 2022\n\nA crane at the container "
    "harbour collapsed in the storm on Friday; nobody was hurt.\n\nOriginal url:\n"
    "<https://bench.example/crane>\n"
)


def _timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, {
        "wall_ms": (time.perf_counter() - w) * 1000,
        "cpu_ms": (time.process_time() - c) * 1000,
    }


def _round(backend: LocalBackend, ids: list[str], repeat: int) -> dict[str, Any]:
    view, load = _timed(backend.view)
    leads, first = _timed(lambda: view.lead(ids))
    later = [_timed(lambda: view.lead(ids))[1]["wall_ms"] for _ in range(repeat)]
    return {
        "view": load,
        "first_lead": first,
        "later_lead_wall_ms": min(later),
        "found": len(leads),
        "generation": view.generation,
        "delta": view.gen.delta is not None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with open_store(args.index) as store:
        q = "SELECT id FROM articles WHERE deleted_gen IS NULL ORDER BY id LIMIT 20"
        ids = [str(r[0]) for r in store.db.execute(q)]
    backend = LocalBackend(args.index)
    out = {"cold": _round(backend, ids, args.repeat)}
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "crane.txt"
        page.write_text(ARTICLE, encoding="utf-8")
        Indexer(args.index, Embedder()).update([page], prune=False)
    out["after_one_new_article"] = _round(backend, ids, args.repeat)
    backend.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
