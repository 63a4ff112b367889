"""Crash safety of ``newsqa import``: SIGKILL at random moments never damages the index.

An import of 2,000 articles runs through the real CLI (``python -m qa.cli.main``) with the fast fake
embedder (``NEWSQA_MODEL=hash-384``) and is killed at seeded random moments, some of them
while the final generation is being written. After every kill ``newsqa stats --check --json``
must pass and the last committed generation must still answer; a last run completes the
import, which must then equal an uninterrupted one with nothing stored twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import numpy as np
import pytest

from qa.index.embed import HashEmbedder
from qa.index.folder import open_store
from qa.index.generation import gen_dir
from qa.search.retriever import Retriever

pytestmark = pytest.mark.crash

ARTICLES = 2000
BASE = 200  # committed first: the generation every killed run must leave usable
MIN_KILLS = 10
MIN_BUILD_KILLS = 3
ENV = {**os.environ, "NEWSQA_MODEL": "hash-384", "COLUMNS": "120"}

PEOPLE = [
    "Maria Lopez",
    "Daniel Okafor",
    "Priya Raman",
    "Tomasz Nowak",
    "Aiko Tanaka",
    "Samuel Greene",
    "Fatima Haddad",
    "Lars Eriksen",
    "Chen Wei",
    "Grace Mensah",
]
ROLES = [
    "the mayor",
    "a city council member",
    "the health minister",
    "a union leader",
    "the chief executive",
    "a senior economist",
    "the police chief",
    "a local teacher",
]
PLACES = [
    "Riverton",
    "the northern province",
    "Port Alden",
    "the capital",
    "Lakeside County",
    "the coastal district",
    "Greenfield",
    "the old harbour",
    "Millbrook",
    "the valley",
]
SUBJECTS = [
    "the new bridge",
    "the water treatment plant",
    "a regional rail line",
    "the hospital expansion",
    "school funding",
    "the wind farm",
    "housing permits",
    "the port upgrade",
    "bus fares",
    "the flood barrier",
    "a cancer screening programme",
    "the wheat harvest",
    "the technology park",
    "museum renovations",
    "road repairs",
]
VERBS = [
    "approved",
    "rejected",
    "delayed",
    "announced",
    "defended",
    "criticised",
    "questioned",
    "expanded",
    "cut",
    "reviewed",
]
REASONS = [
    "rising costs",
    "a shortage of workers",
    "pressure from residents",
    "an unexpected budget surplus",
    "safety concerns raised by engineers",
    "a ruling by the regional court",
    "months of negotiations",
    "heavy winter storms",
]


SYLLABLES = [
    "var",
    "no",
    "keth",
    "ul",
    "bri",
    "mos",
    "tal",
    "en",
    "dor",
    "qui",
    "sha",
    "lev",
    "ar",
    "pim",
    "rox",
    "ea",
    "gul",
    "fen",
    "tor",
    "ix",
]


def project_name(i: int) -> str:
    """A made-up name unique to article ``i`` (the story's subject, as real news has one)."""
    n = len(SYLLABLES)
    return (SYLLABLES[i % n] + SYLLABLES[i // n % n] + SYLLABLES[i // n // n % n]).capitalize()


def sentence(rng: random.Random, i: int) -> str:
    """One news-like sentence; numbers and names make every article's text its own."""
    templates = [
        "{who}, {role}, said on {day} that {place} had {verb} plans for {subj}.",
        "The {name} project was {verb} by {who} after {reason}.",
        "The decision on {subj} followed {reason}, according to officials in {place}.",
        "About {n:,} residents of {place} are affected, and {who} expects a vote by {month}.",
        "Critics said {subj} would cost {m} million dollars more than planned after {reason}.",
        "{who} told reporters that {subj} in {place} was {verb} for the {ordinal} time.",
        "Figures released in {month} show {n:,} applications, up {p} percent on last year.",
    ]
    return rng.choice(templates).format(
        who=rng.choice(PEOPLE),
        role=rng.choice(ROLES),
        place=rng.choice(PLACES),
        subj=rng.choice(SUBJECTS),
        verb=rng.choice(VERBS),
        reason=rng.choice(REASONS),
        day=rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),
        month=rng.choice(["March", "June", "September", "December"]),
        n=rng.randint(200, 90_000) + i,
        m=rng.randint(2, 900),
        p=rng.randint(1, 60),
        ordinal=rng.choice(["second", "third", "fourth"]),
        name=project_name(i),
    )


def article(rng: random.Random, i: int) -> dict[str, str]:
    """A record as news feeds export them: a lead, then 3-6 paragraphs of 2-5 sentences."""
    place, subj = rng.choice(PLACES), rng.choice(SUBJECTS)
    lead = f"Officials in {place} presented the {project_name(i)} plan for {subj} this week."
    paragraphs = [
        " ".join(sentence(rng, i) for _ in range(rng.randint(2, 5)))
        for _ in range(rng.randint(3, 6))
    ]
    paragraphs[0] = f"{lead} {paragraphs[0]}"
    return {
        "title": f"{place.capitalize()} weighs {subj}: the {project_name(i)} plan",
        "text": "\n\n".join(paragraphs),
        "url": f"https://news{i % 7}.example/2022/{i}",
        "publish_date": f"2022-{1 + i % 12:02d}-{1 + i % 28:02d}",
    }


def write_feeds(folder: Path) -> tuple[Path, Path, list[dict[str, str]]]:
    """The 2,000-article feed and its first ``BASE`` records as a separate file."""
    rng = random.Random(2022)
    records = [article(rng, i) for i in range(ARTICLES)]
    lines = [json.dumps(r) for r in records]
    full, base = folder / "feed-2000.jsonl", folder / "feed-base.jsonl"
    full.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base.write_text("\n".join(lines[:BASE]) + "\n", encoding="utf-8")
    return full, base, records


def newsqa(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter, as a user would."""
    cmd = [sys.executable, "-m", "qa.cli.main", *args, "--index-dir", str(root)]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)


def start_import(root: Path, feed: Path, err: IO[str]) -> subprocess.Popen[str]:
    """``newsqa import FEED`` in the background (progress bar and errors go to ``err``)."""
    cmd = [sys.executable, "-m", "qa.cli.main", "import", str(feed), "--index-dir", str(root)]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=err, text=True)


def checked_stats(root: Path) -> dict[str, int]:
    """``newsqa stats --check --json``: exit 0 (consistent) and the counts."""
    proc = newsqa(root, "stats", "--check", "--json")
    assert proc.returncode == 0, proc.stderr
    info: dict[str, int] = json.loads(proc.stdout)
    assert {"articles", "passages"} <= info.keys()
    assert 0 < info["articles"] <= ARTICLES
    return info


def building(root: Path, pid: int | None = None) -> bool:
    """True while a generation folder is written (by ``pid``): its temporary name exists."""
    gens = root / "gens"
    mark = f".tmp-{pid}" if pid else ".tmp-"
    # Folders left by earlier killed runs end in their own pid and do not count.
    return gens.exists() and any(
        p.name.endswith(mark) if pid else mark in p.name for p in gens.iterdir()
    )


def run_and_kill(root: Path, feed: Path, delay: float | None, rng: random.Random) -> str:
    """Start an import and SIGKILL it after ``delay`` s, or (None) during the generation build.

    Returns:
        ``killed``, ``killed in build`` (it was writing a generation folder) or ``completed``
        (it finished before the kill).
    """
    err = root.parent / "import.err"
    with open(err, "w") as err_file:  # a file, not a pipe: a full pipe would stall the child
        proc = start_import(root, feed, err_file)
        try:
            in_build = wait_for_kill_moment(proc, root, delay, rng)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                return "killed in build" if in_build else "killed"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
    assert proc.returncode == 0, err.read_text()[-2000:]
    return "completed"


def wait_for_kill_moment(
    proc: subprocess.Popen[str], root: Path, delay: float | None, rng: random.Random
) -> bool:
    """Wait ``delay`` s, or (None) until ``proc`` writes its generation folder plus a random
    part of the build; True when it is writing one now."""
    if delay is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=delay)
    else:
        deadline = time.monotonic() + 120
        while proc.poll() is None and not building(root, proc.pid) and time.monotonic() < deadline:
            time.sleep(0.003)
        time.sleep(rng.uniform(0.0, 0.15))
    return building(root, proc.pid)


def answers(root: Path, record: dict[str, str]) -> int:
    """The committed generation finds the article of one of its paragraphs; returns its gen."""
    r = Retriever(root, HashEmbedder(384))
    try:
        hits = r.search(f"{record['title']} {record['text'].splitlines()[0]}", k=3)
        assert hits and hits[0].title == record["title"]
        return r.generation
    finally:
        r.backend.close()


def stored_twice(root: Path) -> list[str]:
    """Anything the current generation holds more than once (passages, vectors, articles)."""
    with open_store(root) as store:
        gen = store.current_gen
        ids = np.load(gen_dir(root, store.path.name, gen) / "ids.npy")
        vis = "added_gen <= :g AND (deleted_gen IS NULL OR deleted_gen > :g)"
        checks = {
            "passage ids": f"SELECT COUNT(*) - COUNT(DISTINCT id) FROM passages WHERE {vis}",
            "vectors": f"SELECT COUNT(*) - COUNT(DISTINCT embed_hash) FROM passages WHERE {vis}",
            "articles": f"SELECT COUNT(*) - COUNT(DISTINCT title) FROM articles WHERE {vis}",
        }
        out = [name for name, q in checks.items() if store.db.execute(q, {"g": gen}).fetchone()[0]]
        return out + (["FAISS id map"] if len(set(ids.tolist())) != len(ids) else [])


# "delta": every generation after the base is a delta over it (qa.index.generation), so kills land
# while delta folders are written and the base folder must outlive them.
LAYOUTS = {"full": {}, "delta": {"NEWSQA_DELTA_MIN": "0", "NEWSQA_DELTA_SHARE": "100"}}


def use_layout(monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    """Set the layout's variables for the CLI subprocesses and for in-process checks."""
    for key, value in LAYOUTS[layout].items():
        monkeypatch.setitem(ENV, key, value)
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_import_survives_sigkill_at_random_moments(
    tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_layout(monkeypatch, layout)
    full, base, records = write_feeds(tmp_path)
    # Reference: one uninterrupted import, which also shows the progress bar's rate and ETA.
    reference = tmp_path / "reference"
    t0 = time.monotonic()
    proc = newsqa(reference, "import", str(full))
    duration = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert "articles/s" in proc.stderr and "ETA" in proc.stderr, proc.stderr[-500:]
    expected = checked_stats(reference)
    assert expected["articles"] == ARTICLES

    root, backup = tmp_path / "index", tmp_path / "backup"
    assert newsqa(root, "import", str(base)).returncode == 0
    first = checked_stats(root)
    shutil.copytree(root, backup)
    outcomes = kill_repeatedly(root, backup, full, records, duration, first["articles"])
    assert outcomes.count("killed") + outcomes.count("killed in build") >= MIN_KILLS, outcomes
    assert outcomes.count("killed in build") >= MIN_BUILD_KILLS, outcomes

    # Re-running finishes the import: the same index as the uninterrupted one, nothing twice.
    proc = newsqa(root, "import", str(full))
    assert proc.returncode == 0, proc.stderr
    final = checked_stats(root)
    assert (final["articles"], final["passages"]) == (ARTICLES, expected["passages"])
    assert stored_twice(root) == []
    assert not building(root), "no half-written generation folder is left behind"
    assert answers(root, records[-1]) == final["generation"]
    store = open_store(root)
    kind = json.loads(
        (gen_dir(root, store.path.name, store.current_gen) / "manifest.json").read_text()
    ).get("kind")
    store.close()
    assert kind == layout


def kill_repeatedly(
    root: Path,
    backup: Path,
    feed: Path,
    records: list[dict[str, str]],
    duration: float,
    base_articles: int,
) -> list[str]:
    """Kill imports until ``MIN_KILLS`` landed; check the index after every one of them."""
    rng = random.Random(7)
    outcomes: list[str] = []
    while sum(o != "completed" for o in outcomes) < MIN_KILLS and len(outcomes) < 30:
        # Every third run dies inside the final generation build, the rest anywhere.
        delay = None if len(outcomes) % 3 == 2 else rng.uniform(0.2, duration)
        outcome = run_and_kill(root, feed, delay, rng)
        outcomes.append(outcome)
        info = checked_stats(root)
        assert info["articles"] in (base_articles, ARTICLES), (outcome, info)
        gen = answers(root, records[rng.randrange(BASE)])  # a base article: in every generation
        assert gen == info["generation"]
        if outcome == "completed":
            # The import got through before its kill: start again from the base generation.
            assert info["articles"] == ARTICLES
            shutil.rmtree(root)
            shutil.copytree(backup, root)
    return outcomes
