"""Shared fixtures: the real embedder (one per session), shared data, the reference article."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from qa.index.embed import Embedder

ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = ROOT.parent / "shared" / "data"
REFERENCE_NAME = "putin-syria-peace-conference-2018-01-30.txt"


def needs_shared(*parts: str) -> pytest.MarkDecorator:
    """Skip marker for tests that read ``../shared/data/<parts>`` when it is absent."""
    path = SHARED_DIR.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not available: {path}")


@pytest.fixture(scope="session")
def real_embedder() -> Iterator[Embedder]:
    """The real MiniLM embedder, loaded once per test session (~5 s)."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    from qa.index.embed import Embedder

    embedder = Embedder()
    _ = embedder.dim  # load now, so that the first test does not pay for it in its timing
    yield embedder


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared/data`` (tests using it should also carry ``needs_shared(...)``)."""
    return SHARED_DIR


@pytest.fixture(scope="session")
def reference_article() -> Path:
    """The repository's reference article (corpus/)."""
    path = ROOT / "corpus" / REFERENCE_NAME
    assert path.is_file(), f"reference article missing: {path}"
    return path


@pytest.fixture(scope="session")
def tiny_mpnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised MPNet encoder folder (no segment ids, pad id 1), with the
    shipped reader's word-piece tokenizer: a stand-in for the teacher's base."""
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    from qa.reader.weights import base_model_path

    folder = tmp_path_factory.mktemp("tiny-mpnet")
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()))
    config = MPNetConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    MPNetModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
