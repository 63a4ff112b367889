"""FAISS index types on real news vectors: build time, size, latency, recall against flat.

Usage: python bench/faiss_types.py [--index bench/out/idx-news2022]
       [--questions ../shared/data/news/realtimeqa-dev.jsonl] [--out bench/out/faiss_types.txt]

Vectors: every passage vector of the index's store (float16 in SQLite, as the product keeps
them), minus ``--held-out`` random passages that serve as queries together with the question
file's questions embedded by the index's own model. Ground truth is the exact flat search.
Latency is one query per call with top-100 (the retriever's candidate count), faiss's default
OpenMP threads (printed), over ``--latency-queries`` queries (the questions first). Recall@k is
the share of the exact top-k found. ``--scale N`` adds a synthetic corpus of N times the real
one (the real vectors plus N-1 copies with Gaussian noise, renormalised to cosine ~0.85 with
their source) to show the behaviour at full-corpus size; those rows are marked synthetic.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from qa.eval.questions import load_questions
from qa.index import dense as dense_index
from qa.index.dense import DenseSpec
from qa.index.folder import embedder_for, open_store
from qa.index.store import VISIBLE

Vectors = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]
Builder = Callable[[Vectors], tuple[Any, DenseSpec]]


def load_vectors(index_dir: Path) -> Vectors:
    """Every passage vector visible in the current generation, in rowid order."""
    with open_store(index_dir) as store:
        dim = int(store.get_meta("embed_dim"))
        q = f"SELECT vec FROM passages WHERE {VISIBLE} ORDER BY rowid"
        blobs = [r[0] for r in store.db.execute(q, {"gen": store.current_gen})]
    vecs = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(-1, dim)
    return np.ascontiguousarray(vecs, dtype=np.float32)


def synthesize(x: Vectors, times: int, seed: int) -> Vectors:
    """``x`` plus ``times - 1`` noisy unit copies (cosine ~0.85 with their source)."""
    rng = np.random.default_rng(seed)
    parts = [x]
    for _ in range(times - 1):
        noise = rng.standard_normal(x.shape, dtype=np.float32) * (0.62 / np.sqrt(x.shape[1]))
        y = x + noise
        parts.append(y / np.linalg.norm(y, axis=1, keepdims=True))
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def ivf_builder(encoding: str, nprobe: int, nlist: int | None = None) -> Builder:
    """IVF with ``encoding`` (Flat or SQ8), trained like qa.index.dense (same sample, seed)."""

    def build(x: Vectors) -> tuple[Any, DenseSpec]:
        import faiss

        lists = nlist or dense_index.ivf_lists(len(x))
        index = faiss.index_factory(
            x.shape[1], f"IVF{lists},{encoding}", faiss.METRIC_INNER_PRODUCT
        )
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.seed = dense_index.SEED
        rng = np.random.default_rng(dense_index.SEED)
        size = min(len(x), dense_index.TRAIN_PER_LIST * lists)
        index.train(x[np.sort(rng.choice(len(x), size, replace=False))])
        index.add(x)
        ivf.nprobe = nprobe
        return index, DenseSpec("ivf", nlist=lists, nprobe=nprobe, trained_on=len(x))

    return build


def hnsw_builder(m: int, ef_search: int) -> Builder:
    """HNSW with flat storage, ``m`` links per node, efConstruction 40 (faiss default)."""

    def build(x: Vectors) -> tuple[Any, DenseSpec]:
        import faiss

        index = faiss.IndexHNSWFlat(x.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        index.add(x)
        index.hnsw.efSearch = ef_search
        return index, DenseSpec("hnsw", ef_search=ef_search)

    return build


def recall(found: Ids, truth: Ids, k: int) -> float:
    """Mean share of each query's exact top-k found in its approximate top-k."""
    return float(
        np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth, strict=True)])
    )


def latency_ms(
    index: Any, spec: DenseSpec, queries: Vectors, allowed: Ids | None = None
) -> tuple[float, float]:
    """p50 and p95 of single-query top-100 searches, in ms."""
    times = []
    for i in range(len(queries)):
        t0 = time.perf_counter()
        dense_index.search(index, spec, queries[i : i + 1], 100, allowed)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def latency_cells(index: Any, spec: DenseSpec, queries: Vectors, allowed: Ids | None = None) -> str:
    """Two table cells: p50 / p95 with one OpenMP thread, then with faiss's default count.

    Both, because a second thread that has to wait for a busy core costs more than it saves
    on one query (see docs/benchmarks.md).
    """
    import faiss

    default = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    one = latency_ms(index, spec, queries, allowed)
    faiss.omp_set_num_threads(default)
    many = latency_ms(index, spec, queries, allowed)
    return f"{one[0]:.2f} / {one[1]:.2f} | {many[0]:.2f} / {many[1]:.2f}"


def sweep(
    name: str,
    build: Builder,
    settings: list[int],
    base: Vectors,
    sets: dict[str, tuple[Vectors, Ids]],
    lat_q: Vectors,
) -> list[dict[str, Any]]:
    """Build once, then one table row per search setting (IVF nprobe or HNSW efSearch)."""
    import faiss

    t0 = time.perf_counter()
    index, spec = build(base)
    build_s = time.perf_counter() - t0
    mb = len(faiss.serialize_index(index)) / 1e6
    rows = []
    for value in settings or [0]:
        if spec.kind == "ivf":
            spec = replace(spec, nprobe=value)
        elif spec.kind == "hnsw":
            spec = replace(spec, ef_search=value)
        dense_index.configure(index, spec)
        label = {"ivf": f" nprobe {value}", "hnsw": f" efSearch {value}"}.get(spec.kind, "")
        row: dict[str, Any] = {"name": name + label, "n": len(base), "build_s": build_s, "mb": mb}
        row["latency"] = latency_cells(index, spec, lat_q)
        for key, (q, truth) in sets.items():
            _, found = dense_index.search(index, spec, q, 100)
            row[f"{key}@10"], row[f"{key}@100"] = (
                recall(found, truth, 10),
                recall(found, truth, 100),
            )
        row["index"], row["spec"] = index, spec
        print(fmt_row(row), flush=True)
        rows.append(row)
    return rows


def fmt_row(r: dict[str, Any]) -> str:
    """A markdown table row."""
    return (
        f"| {r['name']} | {r['n']:,} | {r['build_s']:.1f} | {r['mb']:.0f} | "
        f"{r['latency']} | {r['q@10']:.3f} / {r['q@100']:.3f} | "
        f"{r['p@10']:.3f} / {r['p@100']:.3f} |"
    )


HEADER = (
    "| index | vectors | build (s) | size (MB) | p50 / p95 ms, 1 thread | "
    "p50 / p95 ms, 2 threads | questions recall@10 / @100 | held-out passages recall@10 / @100 |\n"
    "|---|---|---|---|---|---|---|---|"
)


def flat_builder(x: Vectors) -> tuple[Any, DenseSpec]:
    """Exact inner-product index (the product's type below the threshold)."""
    return dense_index.build_dense(x, "flat")


def query_sets(base: Vectors, questions: Vectors, held: Vectors) -> dict[str, tuple[Vectors, Ids]]:
    """Question and held-out passage queries with their exact top-100 over ``base``."""
    index, _ = flat_builder(base)
    return {key: (q, index.search(q, 100)[1]) for key, q in (("q", questions), ("p", held))}


def filtered_rows(
    rows: list[dict[str, Any]], base: Vectors, dates: Ids, queries: Vectors
) -> list[str]:
    """Recall@100 of date-filtered searches (newest 5%, oldest 50% / 80%) against exact."""
    flat, _ = flat_builder(base)
    order = np.argsort(dates, kind="stable")
    out = [
        "| index | filter (share of passages) | recall@100 | p50 / p95 ms, 1 thread | "
        "p50 / p95 ms, 2 threads |",
        "|---|---|---|---|---|",
    ]
    for label, allowed in (
        ("newest 5%", np.sort(order[-len(order) // 20 :])),
        ("oldest 50%", np.sort(order[: len(order) // 2])),
        ("oldest 80%", np.sort(order[: len(order) * 4 // 5])),
    ):
        allowed = allowed.astype(np.int64)
        _, truth = dense_index.search(flat, DenseSpec(), queries, 100, allowed)
        for r in rows:
            dense_index.configure(r["index"], r["spec"])
            _, found = dense_index.search(r["index"], r["spec"], queries, 100, allowed)
            cells = latency_cells(r["index"], r["spec"], queries[:100], allowed)
            line = (
                f"| {r['name']} | {label} ({len(allowed) / len(base):.0%}) | "
                f"{recall(found, truth, 100):.3f} | {cells} |"
            )
            print(line, flush=True)
            out.append(line)
    return out


def passage_dates(index_dir: Path) -> Ids:
    """yyyymmdd of each visible passage's article, in rowid order (0 when undated)."""
    with open_store(index_dir) as store:
        q = (
            "SELECT a.date FROM passages p JOIN articles a ON a.id = p.article_id "
            "WHERE p.added_gen <= :gen AND (p.deleted_gen IS NULL OR p.deleted_gen > :gen) "
            "ORDER BY p.rowid"
        )
        rows = store.db.execute(q, {"gen": store.current_gen}).fetchall()
    return np.asarray([int(d.replace("-", "")[:8] or 0) for (d,) in rows], dtype=np.int64)


def flat_latency_by_size(base: Vectors, lat_q: Vectors, sizes: list[int]) -> list[str]:
    """Flat top-100 latency on prefixes of the corpus (where the threshold comes from)."""
    out = [
        "| vectors | flat p50 / p95 ms, 1 thread | flat p50 / p95 ms, 2 threads |",
        "|---|---|---|",
    ]
    for n in sizes:
        index, spec = flat_builder(base[:n])
        out.append(f"| {min(n, len(base)):,} | {latency_cells(index, spec, lat_q)} |")
        print(out[-1], flush=True)
    return out


def real_scale(
    base: Vectors, sets: dict[str, tuple[Vectors, Ids]], lat_q: Vectors, hnsw: bool
) -> list[dict[str, Any]]:
    """Rows for flat, IVF-Flat, IVF-SQ8 (nprobe sweep) and HNSW (efSearch sweep)."""
    nprobes = [8, 16, 32, 64, 128]
    rows = sweep("flat (exact)", flat_builder, [], base, sets, lat_q)
    rows += sweep("IVF,Flat", ivf_builder("Flat", 64), nprobes, base, sets, lat_q)
    rows += sweep("IVF,SQ8", ivf_builder("SQ8", 64), nprobes, base, sets, lat_q)
    if hnsw:
        rows += sweep("HNSW32,Flat", hnsw_builder(32, 128), [64, 128, 256], base, sets, lat_q)
    return rows


def rebuild_line(x: Vectors, label: str) -> str:
    """Seconds of the product's IVF build: k-means + add, then add with the lists reused."""
    t0 = time.perf_counter()
    index, spec = dense_index.build_dense(x, "ivf")
    fresh = time.perf_counter() - t0
    centroids = dense_index.ivf_centroids(index)
    del index
    t0 = time.perf_counter()
    dense_index.build_dense(x, "ivf", centroids, spec.trained_on)
    line = f"| {len(x):,}{label} | {spec.nlist} | {fresh:.1f} | {time.perf_counter() - t0:.1f} |"
    print(line, flush=True)
    return line


def synthetic_scale(
    base: Vectors, times: int, questions: Vectors, held: Vectors, lat_q: Vectors
) -> tuple[list[dict[str, Any]], str]:
    """Flat and the product's IVF on a synthetic corpus ``times`` the real size."""
    big = synthesize(base, times, seed=1)
    sets = query_sets(big, questions, held)
    nprobe = dense_index.ivf_nprobe(dense_index.ivf_lists(len(big)))
    rows = sweep("flat (exact), synthetic", flat_builder, [], big, sets, lat_q)
    rows += sweep(
        "IVF,SQ8 (auto), synthetic",
        ivf_builder("SQ8", nprobe),
        [nprobe, 2 * nprobe],
        big,
        sets,
        lat_q,
    )
    for r in rows:
        r.pop("index")  # free the big indexes as soon as their row is printed
    return rows, rebuild_line(big, " (synthetic)")


def main() -> None:
    """Run every measurement and write the tables."""
    import faiss

    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, default=Path("bench/out/idx-news2022"))
    ap.add_argument(
        "--questions", type=Path, default=Path("../shared/data/news/realtimeqa-dev.jsonl")
    )
    ap.add_argument("--held-out", type=int, default=1000)
    ap.add_argument("--latency-queries", type=int, default=200)
    ap.add_argument("--scale", type=int, default=3, help="synthetic corpus size (x real); 0: none")
    ap.add_argument("--no-hnsw", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="only the first N vectors (smoke test)")
    ap.add_argument("--out", type=Path, default=Path("bench/out/faiss_types.txt"))
    args = ap.parse_args()
    x = load_vectors(args.index)[: args.limit or None]
    dates = passage_dates(args.index)[: args.limit or None]
    held_ix = np.random.default_rng(0).choice(len(x), args.held_out, replace=False)
    keep = np.ones(len(x), dtype=bool)
    keep[held_ix] = False
    base, held, dates = x[keep], x[held_ix], dates[keep]
    embedder = embedder_for(args.index)
    questions = embedder.embed([q.question for q in load_questions(args.questions)])
    lat_q = np.concatenate([questions, held])[: args.latency_queries]
    print(
        f"{len(base):,} vectors ({x.shape[1]}-d), {len(questions)} questions, {len(held)} "
        f"held-out passages; faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads"
    )
    print(HEADER)
    sets = query_sets(base, questions, held)
    rows = real_scale(base, sets, lat_q, not args.no_hnsw)
    picked = [
        r
        for r in rows
        if r["name"] in ("flat (exact)", "IVF,SQ8 nprobe 128", "HNSW32,Flat efSearch 128")
    ]
    filtered = filtered_rows(picked, base, dates, np.concatenate([questions, held]))
    for r in rows:
        r.pop("index")
    rebuild = [
        "| vectors | lists | k-means + add (s) | add, lists reused (s) |",
        "|---|---|---|---|",
        rebuild_line(base, ""),
    ]
    synth: list[dict[str, Any]] = []
    if args.scale > 1:
        synth, line = synthetic_scale(base, args.scale, questions, held, lat_q)
        rebuild.append(line)
    sizes = flat_latency_by_size(base, lat_q, [25_000, 50_000, 100_000, 150_000])
    lines = [
        f"{len(base):,} real vectors; faiss {faiss.__version__}, "
        f"{faiss.omp_get_max_threads()} OpenMP threads",
        HEADER,
    ]
    lines += [fmt_row(r) for r in rows + synth] + ["", *filtered, "", *sizes, "", *rebuild]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
