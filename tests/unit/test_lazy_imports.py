"""A one-shot `newsqa ask` imports neither torch nor transformers nor sentence-transformers.

Run in a fresh interpreter (a test process has imported them long before): the CLI, the
retriever and the answer path against a tiny index of the fast fake embedder, with the
sentence reader. The real models' ONNX path is checked in tests/integration/test_onnx_path.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_probe

from qa.index.chunk import Chunker
from qa.index.embed import HashEmbedder
from qa.index.indexer import Indexer

ARTICLE = {
    "title": "Council approves the bridge",
    "text": "The city council approved the new bridge on Monday. It will cost 40 million euros.",
    "publish_date": "2024-01-02",
    "url": "https://example.com/bridge",
}


def test_ask_imports_no_torch(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps(ARTICLE) + "\n", encoding="utf-8")
    root = tmp_path / "index"
    Indexer(root, HashEmbedder(64), chunker=Chunker(model_max_tokens=None)).update(
        [feed], prune=False
    )
    args = ["ask", "What will the bridge cost?", "--reader", "sentence", "--json"]
    out, heavy, code = run_probe([*args, "--index-dir", str(root)], tmp_path)
    assert code in ("0", "None"), out
    assert "40 million euros" in json.loads(out)["answer"]["sentence"]
    assert heavy == []


def test_help_imports_no_torch(tmp_path: Path) -> None:
    _, heavy, code = run_probe(["--help"], tmp_path)
    assert code in ("0", "None") and heavy == []
