"""Shared fixtures: the real embedder (one per session), shared data, the reference article, the
CLI run in process, the fakes of the evaluation tests, and a tiny SQuAD train file and a tiny
MPNet encoder for the training tests."""

from __future__ import annotations

import datetime
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings

from tests.milvus_fixtures import milvus_server, release_lite  # noqa: F401  # Milvus Lite

# The fuzz tests (tests/unit/*/test_fuzz_*.py): a few seconds each in the normal suite;
# `pytest --hypothesis-profile=fuzz-long tests/unit -k fuzz` runs a long search.
_FUZZ = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("default", max_examples=100, **_FUZZ)  # type: ignore[arg-type]
settings.register_profile("fuzz-long", max_examples=20_000, **_FUZZ)  # type: ignore[arg-type]
settings.load_profile("default")

if TYPE_CHECKING:
    from qa.index.embed import Embedder
    from qa.search.retriever import Filters
    from qa.types import Answer, Hit, Response

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


@pytest.fixture()
def shared_model(real_embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's embedder for the default model is the ``real_embedder`` fixture."""
    from qa.index import folder as folder_module
    from qa.settings import DEFAULT_MODEL

    named = folder_module.embedder_named

    def embedder_named(name: str) -> object:
        return real_embedder if name == real_embedder.name else named(name)

    assert real_embedder.name == DEFAULT_MODEL
    monkeypatch.setattr(folder_module, "embedder_named", embedder_named)


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


# -- the CLI, in process ----------------------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    """What a person sees from one ``newsqa`` command: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.err.splitlines() if line.strip()]

    @property
    def flat_out(self) -> str:
        """stdout with every run of white space made one space (rich wraps long lines)."""
        return " ".join(self.out.split())


NewsQA = Callable[..., CliRun]


@pytest.fixture()
def newsqa() -> NewsQA:
    """Run ``newsqa ARGS...`` through the console-script entry point ``qa.cli.main:main``.

    ``main`` maps errors to exit codes and one stderr line, so it is what is run (not the click
    group alone), with ``sys.argv`` set as the shell would. Every ``NEWSQA_*`` variable of the
    outer environment is unset; ``env`` sets some (None unsets).
    """
    from click.testing import CliRunner

    from qa.cli.main import main

    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2 always keeps stderr apart

    def run(*args: str, env: dict[str, str | None] | None = None) -> CliRun:
        overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("NEWSQA_")}
        overrides.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        overrides.update(env or {})
        with runner.isolation(env=overrides) as streams:
            out, err = streams[0], streams[1]  # click >= 8.2 adds a third, mixed stream
            argv, sys.argv = sys.argv, ["newsqa", *args]
            code = 0
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            finally:
                sys.argv = argv
                sys.stdout.flush()
                sys.stderr.flush()
            return CliRun(code, out.getvalue().decode(), err.getvalue().decode())

    return run


# -- fakes of the evaluation tests -----------------------------------------------------------


def fake_hit(url: str, rank: int, text: str = "", other_urls: tuple[str, ...] = ()) -> Hit:
    """A retrieved passage of the article at ``url``."""
    from qa.types import Hit, Passage

    text = text or f"Passage of {url}."
    passage = Passage(
        id=f"p-{url}", article_id=f"a-{url}", paragraph=0, start=0, end=len(text), text=text
    )
    return Hit(
        passage=passage,
        score=1.0 / rank,
        rank=rank,
        title=f"Title of {url}",
        date="2024-01-02",
        url=url,
        source="",
        other_urls=other_urls,
    )


def fake_answer(text: str, hit: Hit, confidence: float, kind: str = "span") -> Answer:
    """An answer whose text is the whole of a passage."""
    from qa.types import Answer, Span

    return Answer(
        text=text,
        sentence=text,
        confidence=confidence,
        hit=hit,
        span=Span(0, len(text)),
        sentence_span=Span(0, len(text)),
        kind=kind,
    )


@dataclass(frozen=True)
class Scripted:
    """What the fake answerer returns for one question.

    Attributes:
        urls: URLs of the retrieved hits, best first.
        text: The shown answer ("" for no answer).
        kind: ``span`` or ``sentence``.
        confidence: Confidence of the best answer (also given when none is shown).
        copies: Per hit, the other URLs carrying its passage (duplicates, syndicated copies).
    """

    urls: tuple[str, ...]
    text: str = ""
    kind: str = "span"
    confidence: float = 0.9
    copies: tuple[tuple[str, ...], ...] = ()


@dataclass
class FakeAnswerer:
    """An :class:`qa.answer.Answerer` stand-in that answers from a script, and records calls."""

    script: dict[str, Scripted]
    calls: list[tuple[str, int, Filters | None]] = field(default_factory=list)
    warmed: bool = False

    def warm_up(self) -> None:
        self.warmed = True

    def ask(
        self,
        question: str,
        k: int = 5,
        filters: Filters | None = None,
        as_of: datetime.date | None = None,
    ) -> Response:
        from qa.answer import citation_for
        from qa.types import Response

        self.calls.append((question, k, filters, as_of))
        s = self.script[question]
        copies = s.copies or ((),) * len(s.urls)
        pairs = enumerate(zip(s.urls, copies, strict=True))
        hits = [fake_hit(url, i + 1, other_urls=other) for i, (url, other) in pairs]
        guess = fake_answer(s.text or "a guess", hits[0], s.confidence, s.kind) if hits else None
        shown = guess if s.text else None
        answers = [guess] if guess else []
        cites = [citation_for(i + 1, h, shown) for i, h in enumerate(hits)]
        return Response(question, shown, answers, cites, hits)


@pytest.fixture()
def fake_pipeline(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Scripted]], Any]:
    """Make :class:`qa.eval.questions.Evaluator` build a :class:`FakeAnswerer` (and no index).

    Returns a function that installs a script and gives back the records of the constructor's
    arguments and the answerer's calls: ``{"retriever": {...}, "answerer": FakeAnswerer}``.
    """
    import qa.eval.questions as questions

    def install(script: dict[str, Scripted]) -> dict[str, Any]:
        made: dict[str, Any] = {}

        class FakeRetriever:
            def __init__(self, index_dir: Path, fusion: str = "linear", **kwargs: Any) -> None:
                made["retriever"] = {"index_dir": index_dir, "fusion": fusion, **kwargs}
                self.embedder = object()

        def answerer(index_dir: Path, **kwargs: Any) -> FakeAnswerer:
            made["answerer_args"] = {"index_dir": index_dir, **kwargs}
            made["answerer"] = FakeAnswerer(script)
            return made["answerer"]

        monkeypatch.setattr(questions, "Retriever", FakeRetriever)
        monkeypatch.setattr(questions, "Answerer", answerer)
        return made

    return install


@dataclass
class FakeSpanReader:
    """A :class:`qa.reader.span.SpanReader` stand-in for :class:`qa.eval.reader.ReaderEvaluator`:
    answers each question with a scripted (text, confidence), or nothing."""

    script: dict[str, tuple[str, float] | None]
    threshold: float = 0.5
    calibration: Any = None
    runtime: str = "fake"
    loaded: int = 0
    questions: list[str] = field(default_factory=list)

    def load(self) -> tuple[Any, Any]:
        self.loaded += 1
        return (None, None)

    def read(self, question: str, passages: Sequence[Hit]) -> list[Answer]:
        self.questions.append(question)
        found = self.script.get(question)
        if found is None:
            return []
        text, confidence = found
        return [fake_answer(text, passages[0], confidence)]


def fake_clock(monkeypatch: pytest.MonkeyPatch, module: Any, latencies_ms: Sequence[float]) -> None:
    """Make ``module.time.perf_counter`` time each question at the given latencies: it is read
    twice a question (before and after), so the values come in (start, start + latency) pairs."""
    from types import SimpleNamespace

    ticks = [t for i, ms in enumerate(latencies_ms) for t in (10.0 * i, 10.0 * i + ms / 1000)]
    monkeypatch.setattr(module, "time", SimpleNamespace(perf_counter=iter(ticks).__next__))


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


# The modules a one-shot `newsqa ask` must not import (seconds each; see docs/benchmarks.md).
HEAVY = ("torch", "transformers", "sentence_transformers", "ray")
# Runs the console entry point and prints the heavy modules it left in sys.modules.
PROBE = """
import json, sys
from qa.cli.main import main
args, watched = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
sys.argv = ["newsqa", *args]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted({m.split(".")[0] for m in sys.modules} & watched)
print("HEAVY=" + json.dumps(heavy), "CODE=" + str(code))
"""


def run_probe(args: list[str], cwd: Path) -> tuple[str, list[str], str]:
    """(stdout before the probe line, heavy modules imported, exit code) of one CLI run."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
    out, _, probe = done.stdout.rpartition("HEAVY=")
    assert probe, done.stderr
    heavy, _, code = probe.partition(" CODE=")
    return out, json.loads(heavy), code.strip()


@pytest.fixture()
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy settings would route 127.0.0.1 requests elsewhere: clear them."""
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
