"""Cold `newsqa ask` (a fresh process per question): wall time and peak RSS, per query path.

Usage: python bench/cold_ask.py [--index-dir index] [--runs 10] [--paths onnx,torch]

Paths: ``onnx`` is the default (ONNX Runtime embedder and reader, no torch import), ``torch``
forces torch for both (``NEWSQA_EMBED_BACKEND=torch NEWSQA_READER_BACKEND=torch``, what
every question paid before). Each run is one `newsqa ask --json` process, timed from spawn to
exit; peak RSS is the child's own (``wait4``). Runs alternate between the paths so that load
from other processes falls on both alike. Also times `newsqa watch` until it prints that it
is watching, and a chat-like process (answerer built and warmed up, one question answered).
CPU seconds (user + system) of each ask are reported beside the wall time: on a machine that
others load they show the work itself (ONNX Runtime runs two threads, so on an idle machine
wall time is at most about the CPU time). Output: min / median / max, bench/out/cold_ask.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUESTION = "How many Syrians did the Kremlin invite to Sochi?"
ENVS = {
    "onnx": {},
    "torch": {"NEWSQA_EMBED_BACKEND": "torch", "NEWSQA_READER_BACKEND": "torch"},
}
# The chat's start: its backend builds an Answerer, warms it up and answers.
CHAT_LIKE = """
import sys, time
from pathlib import Path
from qa.answer import Answerer
t = time.perf_counter()
a = Answerer(Path(sys.argv[1]))
a.warm_up()
ready = time.perf_counter() - t
r = a.ask(sys.argv[2])
print(f"{ready:.3f} {time.perf_counter() - t:.3f} {r.answer.text if r.answer else None}")
"""


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str, float]:
    """(wall s, peak RSS MB, stdout, CPU s: user + system) of one process."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{cmd[:3]} failed: {err.strip()[-300:]}")
    return wall, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime


def watch_ready(index_dir: Path, env: dict[str, str]) -> float:
    """Seconds until `newsqa watch` says it is watching (models loaded)."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "newsqa"), "watch", "corpus", "--index-dir", str(index_dir)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    ready = time.perf_counter() - t
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:  # still finishing its first run: not what is timed
        proc.kill()
        proc.wait()
    if not line.startswith("watching"):
        raise SystemExit(f"watch did not start: {line!r}")
    return ready


def stats(values: list[float]) -> dict[str, float]:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "n": len(values),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index-dir", type=Path, default=ROOT / "index")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--paths", default="onnx,torch")
    ap.add_argument("--no-watch", action="store_true", help="skip the watch/chat timings")
    args = ap.parse_args()
    paths = args.paths.split(",")
    ask = [str(BIN / "newsqa"), "ask", QUESTION, "--json", "--index-dir", str(args.index_dir)]
    runs: dict[str, dict[str, list[float]]] = {p: {"wall": [], "rss": [], "cpu": []} for p in paths}
    answers: dict[str, set[tuple[str, float]]] = {p: set() for p in paths}
    for _ in range(args.runs):
        for p in paths:
            wall, rss, out, cpu = run_once(ask, ENVS[p])
            runs[p]["wall"].append(wall)
            runs[p]["cpu"].append(cpu)
            runs[p]["rss"].append(rss)
            ans = json.loads(out)["answer"]
            answers[p].add((ans["text"], round(ans["confidence"], 3)))
    result: dict[str, object] = {
        p: {
            "wall_s": stats(runs[p]["wall"]),
            "peak_rss_mb": stats(runs[p]["rss"]),
            "cpu_s": stats(runs[p]["cpu"]),
            "answers": sorted(answers[p]),
        }
        for p in paths
    }
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cold_ask.json").write_text(json.dumps(result, indent=1))
    for key, value in result.items():
        print(key, json.dumps(value), flush=True)
    if not args.no_watch:
        for p in paths:
            ready = [watch_ready(args.index_dir, ENVS[p]) for _ in range(3)]
            chat = [
                run_once([sys.executable, "-c", CHAT_LIKE, str(args.index_dir), QUESTION], ENVS[p])[
                    2
                ].split()
                for _ in range(3)
            ]
            result[f"{p}-watch-ready"] = stats(ready)
            result[f"{p}-chat-ready"] = stats([float(c[0]) for c in chat])
            result[f"{p}-chat-first-answer"] = stats([float(c[1]) for c in chat])
    (out / "cold_ask.json").write_text(json.dumps(result, indent=1))
    for key, value in result.items():
        if "-" in key:
            print(key, json.dumps(value))


if __name__ == "__main__":
    main()
