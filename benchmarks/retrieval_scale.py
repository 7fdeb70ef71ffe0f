"""Candidate retrieval at catalogue size: exact search vs HNSW, recall@100 and latency; writes a section of docs/SCALE.md.

`python benchmarks/retrieval_scale.py [--items 1682,9742,30000,60000] [--queries 500]`

For each catalogue size the item vectors (64 dimensions, like the serving bundle's LightGCN embeddings) are drawn
from a seeded mixture: taste clusters of Zipf-distributed sizes, each item its cluster's centre plus its own
noise, so neighbourhoods are as uneven as real ones. Queries are what serving sends (``EmbeddingIndex.
user_query``): the mean of a member's 30 history items, mostly from two clusters. Both indexes are built by
``ml_core.retrieval.faiss_index.EmbeddingIndex.build`` (the product's code) and searched one query at a time on
one thread, as a web worker does. Recall@100 is the share of the exact top 100 that HNSW returns.

These are synthetic vectors: recall on a trained model's embeddings depends on their geometry, and the serving
benchmark (docs/BENCHMARKS.md) measures the whole request on real bundles.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.support.sections import marked, write_section  # noqa: E402
from ml_core.retrieval import faiss_index  # noqa: E402
from ml_core.retrieval.faiss_index import EmbeddingIndex  # noqa: E402

DOC = ROOT / "docs" / "SCALE.md"
START, END = marked("retrieval")
DIM, CLUSTERS, HISTORY, K = 64, 200, 30, 100


def item_vectors(n_items: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_items, DIM) vectors and each item's cluster: Zipf-sized taste clusters plus item noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, DIM)).astype(np.float32)
    sizes = 1.0 / np.arange(1, CLUSTERS + 1) ** 0.8
    cluster = rng.choice(CLUSTERS, size=n_items, p=sizes / sizes.sum())
    vectors = centres[cluster] + rng.normal(scale=0.9, size=(n_items, DIM)).astype(np.float32)
    return vectors, cluster


def queries(index: EmbeddingIndex, cluster: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Members' query vectors: the mean of HISTORY items, 80% from two favourite clusters, the rest anywhere."""
    rng = np.random.default_rng(seed + 1)
    members = {c: np.flatnonzero(cluster == c) for c in np.unique(cluster)}
    big = [c for c, items in members.items() if len(items) >= HISTORY]
    out = []
    for _ in range(n):
        favourites = rng.choice(big, size=2, replace=False)
        own = np.concatenate([members[c] for c in favourites])
        history = np.where(rng.random(HISTORY) < 0.8, rng.choice(own, HISTORY), rng.integers(0, len(cluster), HISTORY))
        q = index.user_query(history)
        assert q is not None
        out.append(q)
    return np.stack(out)


def measure(n_items: int, n_queries: int, ef_values: list[int], seed: int) -> list[dict[str, float | int | str]]:
    import faiss

    faiss.omp_set_num_threads(1)
    vectors, cluster = item_vectors(n_items, seed)
    started = time.perf_counter()
    exact = EmbeddingIndex.build(vectors, hnsw_threshold=sys.maxsize)
    flat_build = time.perf_counter() - started
    started = time.perf_counter()
    hnsw = EmbeddingIndex.build(vectors, hnsw_threshold=0)
    hnsw_build = time.perf_counter() - started
    qs = queries(exact, cluster, n_queries, seed)
    truth, flat_ms = [], []
    for q in qs:
        t = time.perf_counter()
        items, _ = exact.search(q, K)
        flat_ms.append((time.perf_counter() - t) * 1e3)
        truth.append(set(items.tolist()))
    rows: list[dict[str, float | int | str]] = [{
        "items": n_items, "index": "flat (exact)", "ef_search": "-", "build_s": flat_build,
        "size_mb": _size_mb(exact), "p50_ms": float(np.percentile(flat_ms, 50)),
        "p95_ms": float(np.percentile(flat_ms, 95)), "recall": 1.0}]
    for ef in ef_values:
        hnsw.index.hnsw.efSearch = ef  # type: ignore[attr-defined]  # an IndexHNSWFlat (threshold 0)
        ms, recall = [], []
        for q, want in zip(qs, truth, strict=True):
            t = time.perf_counter()
            items, _ = hnsw.search(q, K)
            ms.append((time.perf_counter() - t) * 1e3)
            recall.append(len(want & set(items.tolist())) / K)
        rows.append({"items": n_items, "index": f"HNSW (M={faiss_index.HNSW_M})", "ef_search": ef,
                     "build_s": hnsw_build, "size_mb": _size_mb(hnsw), "p50_ms": float(np.percentile(ms, 50)),
                     "p95_ms": float(np.percentile(ms, 95)), "recall": float(np.mean(recall))})
    return rows


def _size_mb(index: EmbeddingIndex) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp))
        return sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20


def section(rows: list[dict[str, float | int | str]], command: str, load: tuple[float, float]) -> str:
    lines = [START, "## Candidate retrieval at catalogue size (exact search vs HNSW)", "",
             f"Produced by `{command}` on {platform.node()} ({os.cpu_count()} CPUs), "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average before {load[0]:.2f}, after {load[1]:.2f}.", "",
             "Synthetic 64-dimensional item vectors in Zipf-sized taste clusters; each query is a member's "
             f"{HISTORY}-movie history averaged as serving does (`EmbeddingIndex.user_query`); top {K} per query, "
             "one query at a time on one thread. Recall@100: the share of the exact top 100 that HNSW finds. "
             f"Serving switches to HNSW at {faiss_index.HNSW_THRESHOLD:,} items (`HNSW_THRESHOLD`, efSearch "
             f"{faiss_index.HNSW_EF_SEARCH}).", "",
             "| items | index | efSearch | build s | on disk MB | p50 ms | p95 ms | recall@100 |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['items']:,} | {r['index']} | {r['ef_search']} | {r['build_s']:.1f} | {r['size_mb']:.1f} "
                     f"| {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['recall']:.3f} |")
    lines += ["", "The vectors are synthetic; a trained model's embeddings have their own geometry, so recall on a "
              "real bundle can differ (the serving benchmark measures whole requests on real bundles).", END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="1682,9742,30000,60000")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--ef", default="64,128,256", help="HNSW efSearch values to measure")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=str(DOC))
    args = parser.parse_args()
    before = os.getloadavg()[0]
    rows = []
    for n in (int(x) for x in args.items.split(",")):
        rows += measure(n, args.queries, [int(e) for e in args.ef.split(",")], args.seed)
        print(rows[-1], flush=True)
    command = "python benchmarks/retrieval_scale.py" + "".join(
        f" --{k} {v}" for k, v in (("items", args.items), ("queries", args.queries), ("ef", args.ef))
        if str(v) != str(parser.get_default(k)))
    write_section(Path(args.out), "retrieval", section(rows, command, (before, os.getloadavg()[0])),
                  title="Scale: how the models grow with the data")


if __name__ == "__main__":
    main()
