"""Shared fixtures: the real embedder (one per session), shared data, the reference article,
a tiny SQuAD train file and a tiny MPNet encoder for the training tests."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


# (title, [(paragraph, [(question, answer), ...]), ...]): each answer occurs once in its
# paragraph; paragraphs have several sentences and articles several paragraphs, so that both
# kinds of no-answer twins (qa.train.negatives) exist.
TINY_SQUAD: list[tuple[str, list[tuple[str, list[tuple[str, str]]]]]] = [
    (
        "Sochi_summit",
        [
            (
                "Russia hosted a peace summit in Sochi in January 2018. The main opposition "
                "faction boycotted the talks. Delegates arrived by plane from Damascus.",
                [
                    ("Who boycotted the talks?", "The main opposition faction"),
                    ("Where was the peace summit held?", "Sochi"),
                ],
            ),
            (
                "The Kremlin invited 1,600 Syrians to the conference. The talks lasted one "
                "day. A statement was signed at the end.",
                [("How many Syrians did the Kremlin invite?", "1,600")],
            ),
        ],
    ),
    (
        "Eiffel_Tower",
        [
            (
                "The Eiffel Tower is in Paris. It was completed in 1889. Gustave Eiffel's "
                "company designed and built it.",
                [
                    ("When was the Eiffel Tower completed?", "1889"),
                    ("In which city is the Eiffel Tower?", "Paris"),
                ],
            ),
            (
                "The tower is 330 metres tall. It was the tallest structure in the world "
                "for 41 years.",
                [("How tall is the tower?", "330 metres")],
            ),
        ],
    ),
    (
        "Amazon_River",
        [
            (
                "The Amazon River flows through Brazil, Peru and Colombia. It carries more "
                "water than any other river. Its basin covers seven million square kilometres.",
                [
                    ("Which river carries more water than any other?", "The Amazon River"),
                    ("How large is the Amazon basin?", "seven million square kilometres"),
                ],
            ),
            (
                "The river's mouth is on the Atlantic Ocean. Spanish explorers first sailed "
                "down it in 1542.",
                [("When did explorers first sail down the river?", "1542")],
            ),
        ],
    ),
    (
        "Penicillin",
        [
            (
                "Alexander Fleming discovered penicillin in 1928. He noticed mould killing "
                "bacteria on a culture plate. The drug was mass-produced during the war.",
                [
                    ("Who discovered penicillin?", "Alexander Fleming"),
                    ("When was penicillin discovered?", "1928"),
                ],
            ),
            (
                "Fleming shared the Nobel Prize in 1945. He worked at St Mary's Hospital in "
                "London.",
                [("Where did Fleming work?", "St Mary's Hospital")],
            ),
        ],
    ),
    (
        "Mount_Everest",
        [
            (
                "Mount Everest is the highest mountain on Earth. It stands on the border of "
                "Nepal and China. Its summit is 8,849 metres above sea level.",
                [
                    ("What is the highest mountain on Earth?", "Mount Everest"),
                    ("How high is the summit of Everest?", "8,849 metres"),
                ],
            ),
            (
                "Edmund Hillary and Tenzing Norgay first reached the top in 1953. Hundreds of "
                "climbers try every spring.",
                [("Who first reached the top of Everest?", "Edmund Hillary and Tenzing Norgay")],
            ),
        ],
    ),
]


def tiny_squad_doc() -> dict[str, Any]:
    """A SQuAD v1.1 document of 5 articles, 10 paragraphs and 15 questions (ids ``q1``..)."""
    data, number = [], 0
    for title, paragraphs in TINY_SQUAD:
        paras = []
        for context, questions in paragraphs:
            qas = []
            for question, answer in questions:
                number += 1
                start = context.index(answer)
                qas.append(
                    {
                        "id": f"q{number}",
                        "question": question,
                        "answers": [{"text": answer, "answer_start": start}],
                    }
                )
            paras.append({"context": context, "qas": qas})
        data.append({"title": title, "paragraphs": paras})
    return {"version": "1.1", "data": data}


@pytest.fixture(scope="session")
def tiny_squad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`tiny_squad_doc` as a gzipped SQuAD train file (``train-v1.1.json.gz``)."""
    path = tmp_path_factory.mktemp("squad") / "train-v1.1.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(tiny_squad_doc(), handle)
    return path
