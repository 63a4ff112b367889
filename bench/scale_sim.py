"""Scale simulation: FAISS IVF-SQ8 and Milvus Lite over 1M-3M synthetic 384-d vectors.

Usage: nice -n 15 python bench/scale_sim.py [--sizes 1000000,3000000] [--engines faiss,milvus]
       [--queries 1000] [--out bench/out/scale_sim.json]

The vectors are clustered like sentence embeddings, not uniform (uniform vectors in 384
dimensions have no near neighbours, so every index looks either perfect or useless): unit
cluster centres with Zipf-like cluster sizes, each vector its centre plus Gaussian noise of a
per-cluster width, normalised. Generated in seeded chunks, so the 1M set is the first third of
the 3M set and the growth from one size to the next is measured on the same data. Queries come
from the same distribution (new points, never in the index). Exact top-10 by brute-force inner
product (FAISS flat) is the ground truth.

Per engine and size: build time (insert + train + index), memory per vector (the serialised
FAISS index; for Milvus Lite the resident memory of its server process and the size of its
data folder), single-query latency p50/p95 (one request per question, as `ask` searches), and
recall@10 against exact search. FAISS uses newsqa's own IVF rules (``qa.index.dense``: lists
the power of two nearest 2*sqrt(n), ``nprobe`` an eighth of them) and a cheaper ``nprobe``.
Milvus Lite is first asked which index types it builds (on a small collection); the big runs
use IVF_SQ8 with the same lists and probes when it accepts it, else what it has.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qa.index.dense import ivf_lists, ivf_nprobe

DIM = 384
CLUSTERS = 4096
CHUNK = 100_000
SEED = 20261206
F32 = npt.NDArray[np.float32]
MILVUS_TYPES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "DISKANN", "AUTOINDEX")


def _centres() -> tuple[F32, npt.NDArray[np.float64], F32]:
    rng = np.random.default_rng([SEED, 0])
    c = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
    # Centres share a low-rank component, as embeddings of one language and genre do.
    c += (
        2.0
        * (rng.standard_normal((CLUSTERS, 16)) @ rng.standard_normal((16, DIM))).astype(np.float32)
        / np.sqrt(16)
    )
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    sizes = 1.0 / np.arange(1, CLUSTERS + 1) ** 0.7
    rng.shuffle(sizes)
    width = rng.uniform(0.6, 1.2, CLUSTERS).astype(np.float32)
    return c, sizes / sizes.sum(), width


def vectors(start_chunk: int, n: int, stream: int = 1) -> F32:
    """``n`` unit vectors from seeded chunks ``start_chunk``... of one stream."""
    centres, p, width = _centres()
    out = np.empty((n, DIM), dtype=np.float32)
    done, k = 0, start_chunk
    while done < n:
        rng = np.random.default_rng([SEED, stream, k])
        m = min(CHUNK, n - done)
        lab = rng.choice(CLUSTERS, size=m, p=p)
        noise = rng.standard_normal((m, DIM), dtype=np.float32) / np.sqrt(DIM)
        x = centres[lab] + noise * width[lab, None]
        out[done : done + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        done, k = done + m, k + 1
    return out


def exact_top10(data: F32, queries: F32) -> npt.NDArray[np.int64]:
    import faiss

    # faiss.knn reads the array in place: a flat index would hold a second copy of it.
    _, ids = faiss.knn(queries, data, 10, metric=faiss.METRIC_INNER_PRODUCT)
    return np.asarray(ids, dtype=np.int64)


def recall10(found: list[list[int]], truth: npt.NDArray[np.int64]) -> float:
    return float(
        np.mean([len(set(f[:10]) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    )


def pct(lat: list[float]) -> dict[str, float]:
    a = np.asarray(lat) * 1000
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p95_ms": round(float(np.percentile(a, 95)), 3),
    }


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_seconds() -> float:
    """CPU seconds of this process, every thread included (Milvus Lite runs in-process)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


# ------------------------------------------------------------------------------------- FAISS
def run_faiss(data: F32, queries: F32, truth: npt.NDArray[np.int64]) -> dict[str, Any]:
    import faiss

    n = len(data)
    nlist = ivf_lists(n)
    load0, cpu0 = os.getloadavg()[0], cpu_seconds()
    t0 = time.perf_counter()
    index = faiss.index_factory(DIM, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
    sample = data[np.random.default_rng(SEED).choice(n, min(n, 40 * nlist), replace=False)]
    index.train(sample)
    t_train = time.perf_counter() - t0
    index.add(data)
    build = time.perf_counter() - t0
    build_cpu = cpu_seconds() - cpu0
    size = len(faiss.serialize_index(index))
    out: dict[str, Any] = {
        "engine": "faiss IVF-SQ8",
        "n": n,
        "nlist": nlist,
        "build_s": round(build, 1),
        "build_cpu_s": round(build_cpu, 1),
        "train_s": round(t_train, 1),
        "bytes_per_vector": round(size / n, 1),
        "load1": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "threads": faiss.omp_get_max_threads(),
        "runs": [],
    }
    for nprobe in (ivf_nprobe(nlist), 32):
        index.nprobe = nprobe
        lat, found = [], []
        cpu0 = cpu_seconds()
        for q in queries:
            t = time.perf_counter()
            _, ids = index.search(q[None, :], 10)
            lat.append(time.perf_counter() - t)
            found.append(list(ids[0]))
        out["runs"].append(
            {
                "nprobe": nprobe,
                **pct(lat),
                "cpu_ms_per_query": round((cpu_seconds() - cpu0) * 1000 / len(queries), 3),
                "recall10": round(recall10(found, truth), 4),
            }
        )
    return out


# ------------------------------------------------------------------------------ Milvus Lite
def milvus_supported(folder: Path) -> dict[str, str]:
    """Which index types Milvus Lite accepts, on a 5,000-vector collection.

    "accepted" means create, load, search and describe all answered. It does not mean built:
    milvus-lite 3.2.2 accepts IVF_PQ and DISKANN and then fails to build them in the background
    (its log: "supported: HNSW, HNSW_SQ, IVF_FLAT, IVF_SQ8, BRUTE_FORCE"), searching without.
    """
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(folder / "probe.db"))
    data = vectors(1000, 5000, stream=3)
    result: dict[str, str] = {}
    for kind in MILVUS_TYPES:
        name = f"probe_{kind.lower()}"
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
        client.create_collection(name, schema=schema)
        client.insert(name, [{"id": i, "v": v.tolist()} for i, v in enumerate(data)])
        params = client.prepare_index_params()
        extra = {
            "IVF_FLAT": {"nlist": 64},
            "IVF_SQ8": {"nlist": 64},
            "IVF_PQ": {"nlist": 64, "m": 48},
            "HNSW": {"M": 16, "efConstruction": 100},
        }.get(kind, {})
        params.add_index("v", index_type=kind, metric_type="IP", params=extra)
        try:
            client.create_index(name, params)
            client.load_collection(name)
            client.search(name, data=[data[0].tolist()], limit=10, anns_field="v")
            desc = client.describe_index(name, "v")
            result[kind] = f"accepted ({desc.get('index_type', '?')})"
        except Exception as exc:  # record the refusal as it reads
            result[kind] = f"refused: {str(exc).splitlines()[0][:160]}"
        client.drop_collection(name)
    client.close()
    return result


def run_milvus(
    data: F32, queries: F32, truth: npt.NDArray[np.int64], folder: Path, kind: str
) -> dict[str, Any]:
    from pymilvus import DataType, MilvusClient

    n = len(data)
    nlist = ivf_lists(n)
    db = folder / f"sim-{n}.db"
    before = set(descendants(os.getpid()))
    client = MilvusClient(str(db))
    server = [p for p in descendants(os.getpid()) if p not in before]
    rss0 = rss_mb([os.getpid(), *server])
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection("sim", schema=schema)
    load0, cpu0 = os.getloadavg()[0], cpu_seconds()
    t0 = time.perf_counter()
    for s in range(0, n, 10_000):
        block = data[s : s + 10_000]
        client.insert("sim", [{"id": s + i, "v": v} for i, v in enumerate(block.tolist())])
        if (s + 10_000) % 100_000 == 0:  # how far a run got, should it be stopped
            el = time.perf_counter() - t0
            print(f"milvus insert {s + 10_000}: {el:.0f} s, {(s + 10_000) / el:.0f}/s", flush=True)
    client.flush("sim")
    t_insert = time.perf_counter() - t0
    params = client.prepare_index_params()
    iparams = {"nlist": nlist} if kind.startswith("IVF") else {"M": 16, "efConstruction": 200}
    params.add_index("v", index_type=kind, metric_type="IP", params=iparams)
    client.create_index("sim", params)
    client.load_collection("sim")
    build = time.perf_counter() - t0
    build_cpu = cpu_seconds() - cpu0
    gc.collect()
    rss1 = rss_mb([os.getpid(), *server])
    disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and "probe" not in f.name)
    out: dict[str, Any] = {
        "engine": f"milvus-lite {kind}",
        "n": n,
        "nlist": nlist,
        "insert_s": round(t_insert, 1),
        "build_s": round(build, 1),
        "build_cpu_s": round(build_cpu, 1),
        "load1": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "rss_delta_mb": round(rss1 - rss0, 1),
        "rss_bytes_per_vector": round((rss1 - rss0) * 2**20 / n, 1),
        "disk_bytes_per_vector": round(disk / n, 1),
        "server_pids": len(server),
        "runs": [],
    }
    probes = (ivf_nprobe(nlist), 32) if kind.startswith("IVF") else (128,)
    for probe in probes:
        sp = {"nprobe": probe} if kind.startswith("IVF") else {"ef": probe}
        lat, found = [], []
        cpu0 = cpu_seconds()
        for q in queries:
            t = time.perf_counter()
            res = client.search(
                "sim", data=[q.tolist()], limit=10, anns_field="v", search_params={"params": sp}
            )
            lat.append(time.perf_counter() - t)
            found.append([int(h["id"]) for h in res[0]])
        cpu_ms = round((cpu_seconds() - cpu0) * 1000 / len(queries), 3)
        out["runs"].append(
            {
                **sp,
                **pct(lat),
                "cpu_ms_per_query": cpu_ms,
                "recall10": round(recall10(found, truth), 4),
            }
        )
    client.drop_collection("sim")
    client.close()
    return out


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    return next(
        (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), ""
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,3000000")
    ap.add_argument("--engines", default="faiss,milvus")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--milvus-index", default="IVF_SQ8")
    ap.add_argument("--out", type=Path, default=Path("bench/out/scale_sim.json"))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "cpu": cpu_name(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "dim": DIM,
        "clusters": CLUSTERS,
        "seed": SEED,
        "results": [],
    }
    queries = vectors(0, args.queries, stream=2)
    folder = Path(tempfile.mkdtemp(prefix="scale-sim-", dir=args.out.parent))
    try:
        if "milvus" in engines:
            report["milvus_index_types"] = milvus_supported(folder)
            print(json.dumps(report["milvus_index_types"], indent=1), flush=True)
        for n in sizes:
            t = time.perf_counter()
            data = vectors(0, n)
            truth = exact_top10(data, queries)
            print(f"{n}: data + exact top-10 in {time.perf_counter() - t:.0f} s", flush=True)
            for engine in engines:
                if engine == "faiss":
                    res = run_faiss(data, queries, truth)
                else:
                    res = run_milvus(data, queries, truth, folder, args.milvus_index)
                print(json.dumps(res), flush=True)
                report["results"].append(res)
                args.out.write_text(json.dumps(report, indent=1))
                gc.collect()
            del data
            gc.collect()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
