"""Import speed with and without Ray on the same articles: passages/s, and per worker.

Usage: nice -n 10 python bench/ray_import.py [--articles 400[,1600]] [--rounds 1]
    [--modes plain,ray1,ray2]

The first ``--articles`` records of the shared news corpus are written to one JSONL file and
imported into a fresh index per run (with two sizes, each mode runs on both, and the table adds
the marginal rate between them: the passages/s of an actor once its start is paid):

- ``plain``: ``Indexer`` as ``newsqa import`` runs it (one process, torch on every core);
- ``rayN``: ``RayIndexer`` (``newsqa import --ray``) on a local Ray of two CPUs on 127.0.0.1
  with N embedding actors (one CPU and one torch thread each).

Ray itself is started once before the Ray runs and its start is timed apart; each Ray run
still pays its actors' model loads, as every import does. Runs alternate between the modes
when ``--rounds`` > 1, so that load from other processes falls on all of them alike. CPU
seconds are those of this process and all it starts: where this process may create a cgroup
(v1 ``cpuacct``, as root), the cgroup's counter, which keeps the time of processes that exited
wherever they were reaped; elsewhere the sum over the live descendants (an actor reaped outside
this process tree drops out of that sum). A shared machine's waiting shows as the gap between
wall and CPU time. Output: a markdown table (wall
s, CPU s, passages, passages/s, per worker, passages per CPU second) and
bench/out/ray_import.json.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.index.embed import Embedder  # noqa: E402
from qa.index.indexer import Indexer  # noqa: E402
from qa.index.ray_cluster import start_ray  # noqa: E402
from qa.index.ray_import import RayIndexer  # noqa: E402

CORPUS = ROOT.parent / "shared/data/news/realtimeqa-corpus.jsonl.gz"


def write_feed(n: int, folder: Path) -> Path:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as fh:
        lines = [ln for ln in itertools.islice(fh, n) if ln.strip()]
    path = folder / f"news-{n}.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _stat(pid: int) -> tuple[int, list[str]]:
    """(parent pid, fields after the command name) of /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), fields


CPUACCT = Path("/sys/fs/cgroup/cpuacct")
_GROUP: list[Path] = []


def join_cgroup() -> bool:
    """Move this process into a cgroup of its own, so that everything it starts from now on is
    counted there (False where cgroup v1 cpuacct is missing or not writable)."""
    group = CPUACCT / f"newsqa-ray-bench-{os.getpid()}"
    try:
        group.mkdir(exist_ok=True)
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        return False
    _GROUP.append(group)
    return True


def leave_cgroup(wait_s: float = 30.0) -> None:
    """Move back to the root group and remove this run's group once Ray's processes in it
    have exited (they outlive ``ray.shutdown`` by a few seconds)."""
    for group in _GROUP:
        deadline = time.monotonic() + wait_s
        try:
            (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            continue
        while True:
            try:
                group.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    break  # a process of the group still lives; the empty group is harmless
                time.sleep(0.5)


def cpu_seconds() -> float:
    """CPU seconds of this process and of every process it started (see the module doc)."""
    if _GROUP:
        return int((_GROUP[0] / "cpuacct.usage").read_text()) / 1e9
    return _tree_cpu_seconds()


def _tree_cpu_seconds() -> float:
    """CPU seconds of this process and of every live process under it (Ray's raylet and the
    actors under it; exited ones through their parents' reaped-children times)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, list[str]]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stats[int(d.name)] = _stat(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    own = stats.get(os.getpid())
    total = sum(int(x) for x in own[1][11:13]) if own else 0  # utime, stime
    todo, seen = [os.getpid()], set()
    while todo:
        parent = todo.pop()
        for pid, (ppid, fields) in stats.items():
            if ppid == parent and pid not in seen:
                seen.add(pid)
                total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
                todo.append(pid)
    return total / tick


def run(mode: str, feed: Path, folder: Path, embedder: Embedder) -> dict[str, Any]:
    root = folder / f"idx-{mode}-{feed.stem}"
    shutil.rmtree(root, ignore_errors=True)
    if mode == "plain":
        indexer: Indexer = Indexer(root, embedder)
        workers = 1
    else:
        workers = int(mode.removeprefix("ray"))
        indexer = RayIndexer(root, embedder, actors=workers)
    load = os.getloadavg()[0]
    cpu = cpu_seconds()
    t = time.perf_counter()
    report = indexer.update([feed], prune=False)
    wall = time.perf_counter() - t
    cpu = cpu_seconds() - cpu
    n = report.passages_embedded + report.passages_reused
    return {
        "mode": mode,
        "feed": feed.stem,
        "workers": workers,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "passages": n,
        "articles": report.added,
        "passages_per_s": round(n / wall, 1),
        "per_worker": round(n / wall / workers, 1),
        "passages_per_cpu_s": round(n / cpu, 1),
        "load1_before": round(load, 2),
        "load1_after": round(os.getloadavg()[0], 2),
    }


def table(results: list[dict[str, Any]], modes: list[str], feeds: list[str]) -> None:
    """Medians per mode and size, and with two sizes the marginal rate between them."""
    print(
        "| mode | articles | workers | wall s | CPU s | passages | passages/s | per worker "
        "| per CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    med: dict[tuple[str, str], tuple[float, float, int]] = {}
    for mode, feed in itertools.product(modes, feeds):
        rs = [r for r in results if r["mode"] == mode and r["feed"] == feed]
        wall = statistics.median(r["wall_s"] for r in rs)
        cpu = statistics.median(r["cpu_s"] for r in rs)
        rate = statistics.median(r["passages_per_s"] for r in rs)
        per_cpu = statistics.median(r["passages_per_cpu_s"] for r in rs)
        n, w = rs[0]["passages"], rs[0]["workers"]
        med[mode, feed] = (wall, cpu, n)
        print(
            f"| {mode} | {feed.removeprefix('news-')} | {w} | {wall} | {cpu} | {n} | {rate} "
            f"| {rate / w:.1f} | {per_cpu} |"
        )
    if len(feeds) != 2:
        return
    print("\nMarginal, between the two sizes (fixed costs cancel):\n")
    print(
        "| mode | extra passages | extra wall s | passages/s | extra CPU s | passages per CPU s |"
    )
    print("|---|---|---|---|---|---|")
    for mode in modes:
        (w1, c1, n1), (w2, c2, n2) = med[mode, feeds[0]], med[mode, feeds[1]]
        dn = n2 - n1
        print(
            f"| {mode} | {dn} | {w2 - w1:.1f} | {dn / (w2 - w1):.1f} | {c2 - c1:.1f} "
            f"| {dn / (c2 - c1):.1f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", default="400", help="one size, or two: 60,240")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--modes", default="plain,ray1,ray2")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/ray_import.json")
    args = ap.parse_args()
    modes = args.modes.split(",")
    sizes = [int(n) for n in args.articles.split(",")]
    counted = "cgroup" if join_cgroup() else "live process tree"
    folder = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    results: list[dict[str, Any]] = []
    ray_start = None
    try:
        feeds = [write_feed(n, folder) for n in sizes]
        embedder = Embedder()  # the plain import's; the Ray actors build its twin
        embedder.embed(["warm up"])
        if any(m.startswith("ray") for m in modes):
            t = time.perf_counter()
            start_ray(None, num_cpus=2)
            ray_start = round(time.perf_counter() - t, 1)
        for _ in range(args.rounds):
            for mode, feed in itertools.product(modes, feeds):
                res = run(mode, feed, folder, embedder)
                print(json.dumps(res), flush=True)
                results.append(res)
    finally:
        if ray_start is not None:
            import ray

            ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
        leave_cgroup()
    print(
        f"\nRay start (local, 2 CPUs): {ray_start} s; runtime {embedder.runtime}; "
        f"CPU counted by the {counted}\n"
    )
    table(results, modes, [f.stem for f in feeds])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "ray_start_s": ray_start,
                "runtime": embedder.runtime,
                "cpu_counted_by": counted,
                "runs": results,
            }
        )
    )


if __name__ == "__main__":
    main()
