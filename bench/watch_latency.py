"""Write-to-answer latency of ``newsqa watch`` on an existing (large) index.

Usage: python bench/watch_latency.py --index bench/out/idx-full [--trials 10] [--debounce 0.5]

Runs ``newsqa watch FOLDER --index-dir INDEX`` as a subprocess (as a user would, model loaded
once), waits for its initial run, then per trial writes a new article file with a unique word
into FOLDER and polls a long-lived Retriever in this process (a chat session after model load)
every 20 ms until the question "When will the WORD transit line open?" has the new article
among its top 5 passages (those ``newsqa ask`` reads). Latency = from just before
the write until that answer. At the end the trial files are deleted and the time until they
are gone from the index is measured the same way. Prints a markdown table and the watcher's
status lines; writes bench/out/watch_latency.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.eval.metrics import percentile  # noqa: E402
from qa.index.folder import open_store  # noqa: E402
from qa.index.generation import MANIFEST, gen_dir  # noqa: E402
from qa.search.retriever import Retriever  # noqa: E402

BODY = (
    "The regional transit authority said on Tuesday that the {word} line would open next "
    "spring after two years of delays, with trains every six minutes at peak hours.\n\n"
    "Officials told reporters that the {word} project had cost 40 million dollars more than "
    "planned, mostly because of tunnel repairs under the old river crossing."
)


def article(word: str) -> str:
    return (
        f"Transit authority opens the {word} line\n\nMarch 3, 2026\n\n"
        f"{BODY.format(word=word)}\n\nOriginal url:\n<https://bench.example/{word}>\n"
    )


def wait_for(retriever: Retriever, word: str, present: bool, timeout: float) -> float:
    """Seconds until a search for ``word`` does (or no longer does) return its article."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        # The question a user would ask; `newsqa ask` reads the top 5 passages.
        hits = retriever.search(f"When will the {word} transit line open?", k=5)
        found = any(word in h.title for h in hits)
        if found == present:
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise TimeoutError(f"{word}: not {'indexed' if present else 'removed'} in {timeout} s")


def manifest(index: Path) -> dict[str, object]:
    with open_store(index) as store:
        path = gen_dir(index, store.path.name, store.current_gen) / MANIFEST
        data: dict[str, object] = json.loads(path.read_text())
        return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, default=ROOT / "bench/out/idx-full")
    ap.add_argument("--folder", type=Path, default=ROOT / "bench/out/watch-corpus")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--debounce", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    shutil.rmtree(args.folder, ignore_errors=True)
    args.folder.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "qa.cli.main",
        "watch",
        str(args.folder),
        "--index-dir",
        str(args.index),
        "--debounce",
        str(args.debounce),
    ]
    lines: list[str] = []
    watcher = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert watcher.stdout is not None
    ready = threading.Event()

    def follow() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.append(line.rstrip())
            if " added " in line:
                ready.set()

    threading.Thread(target=follow, daemon=True).start()
    t_start = time.perf_counter()
    if not ready.wait(args.timeout * 5):
        watcher.kill()
        sys.exit("watch did not finish its initial run:\n" + "\n".join(lines[-20:]))
    startup = time.perf_counter() - t_start
    retriever = Retriever(args.index)
    retriever.search("warm up", k=1)
    lat, words = [], []
    try:
        for trial in range(args.trials):
            word = f"zorblax{os.getpid()}t{trial}"
            t0 = time.perf_counter()
            (args.folder / f"{word}.txt").write_text(article(word), encoding="utf-8")
            lat.append(time.perf_counter() - t0 + wait_for(retriever, word, True, args.timeout))
            words.append(word)
            print(
                f"trial {trial}: {lat[-1]:.2f} s  ({manifest(args.index).get('kind')})", flush=True
            )
            time.sleep(1.0)
        t0 = time.perf_counter()
        for word in words:
            (args.folder / f"{word}.txt").unlink()
        removal = time.perf_counter() - t0 + wait_for(retriever, words[-1], False, args.timeout)
        wait_for(retriever, words[0], False, args.timeout)
    except TimeoutError:
        print("\n".join(lines[-20:]))
        raise
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(60)
    m = manifest(args.index)
    passages = m.get("passages")
    table = [
        f"watch latency on {args.index} ({passages} passages, last generation "
        f"{m.get('kind', 'full')}), debounce {args.debounce:g} s, {args.trials} trials",
        "",
        "| measure | seconds |",
        "|---|---|",
        f"| watch start-up (model load + initial run) | {startup:.1f} |",
        f"| write -> answer, median | {percentile(lat, 50):.2f} |",
        f"| write -> answer, p95 | {percentile(lat, 95):.2f} |",
        f"| write -> answer, max | {max(lat):.2f} |",
        f"| delete {len(words)} files -> gone from answers | {removal:.2f} |",
    ]
    out = "\n".join(table)
    print(out)
    print("\nwatch output:\n" + "\n".join(lines[-(args.trials + 6) :]))
    (ROOT / "bench/out").mkdir(exist_ok=True)
    (ROOT / "bench/out/watch_latency.txt").write_text(out + "\n")


if __name__ == "__main__":
    main()
