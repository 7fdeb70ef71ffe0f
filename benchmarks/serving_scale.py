"""Serving at a real catalogue's size (issue 17): one bundle built on a large MovieLens-layout folder, measured per
tier; writes the serving-scale section of docs/SCALE.md (the page's other parts are kept).

    python -m ml_core synth --users 45000 --items 66000 --ratings 3500000 --out var/synth-60k
    ML_ARTIFACTS_DIR=var/scale60k /usr/bin/time -v -o var/scale60k/build.time python manage.py \\
        build_serving_artifacts --dataset var/synth-60k --quick --epochs 1 --eval-users 500
    python benchmarks/serving_scale.py --bundle var/scale60k/serving --build-time var/scale60k/build.time

The bundle is built by the command a user runs (every ensemble model, its INT8 ONNX exports, the FAISS index:
HNSW from 50,000 items). The page gives:

- the build: wall time and peak memory (``/usr/bin/time -v``), each model's fit and its test NDCG@10 on the
  seeded evaluation users, the bundle's size on disk;
- each tier in a fresh process (``benchmarks/serving.py``'s worker): cold start, user and item requests at 100
  and 500 candidates (p50/p95, every ensemble model, nothing cached), and resident memory split into anonymous
  (each worker pays it) and file-backed (shared by the workers of one machine);
- the FAISS index of the bundle against exact search on the same vectors: recall@100 and latency of user queries;
- with ``--http-seconds``, the site itself on that bundle (``benchmarks/serving_http.py``: uvicorn, PostgreSQL,
  Redis): the bare DRF endpoint, returning members, members who just rated and first requests, on Tiers 2 and 3.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.serving import in_process  # noqa: E402
from benchmarks.support.sections import marked, write_section  # noqa: E402

SECTION = "serving-scale"
TARGETS_MS = {2: 8.0, 3: 1.0}  # issue 17: p50 of a user request at 100 candidates, 60k movies
TARGET_RSS_MB = 1536.0  # issue 17: one web worker holds the bundle in <= 1.5 GB


def build_time(path: Path | None) -> dict[str, float] | None:
    """Wall seconds and peak RSS (MB) from a ``/usr/bin/time -v`` report."""
    if path is None or not path.exists():
        return None
    text = path.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if not wall or not peak:
        raise SystemExit(f"{path}: not a /usr/bin/time -v report (no wall clock or maximum resident set size line)")
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return {"wall_s": seconds, "peak_mb": int(peak.group(1)) / 1024}


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def bundle_facts(bundle: Path) -> dict[str, Any]:
    ensemble = json.loads((bundle / "ensemble.json").read_text())
    n_items = len(json.loads((bundle / "items.json").read_text())["movie_ids"])
    models = {}
    for name in ensemble["models"]:
        metrics = json.loads((bundle / "models" / name / "manifest.json").read_text()).get("metrics") or {}
        models[name] = {"train_s": metrics.get("train_seconds"), "epochs": metrics.get("epochs"),
                        "max_epochs": metrics.get("max_epochs"),
                        "ndcg": (metrics.get("test") or {}).get("ndcg@10"),
                        "weight": ensemble["weights"].get(name)}
    parts = {p.name: disk_mb(p) for p in sorted(bundle.iterdir()) if p.is_dir()}
    return {"dataset": ensemble.get("dataset"), "n_items": n_items, "models": models, "disk_mb": disk_mb(bundle),
            "parts_mb": parts, "test": ensemble["metrics"]["test"], "n_eval_users": ensemble.get("n_eval_users"),
            "version": json.loads((bundle / "manifest.json").read_text()).get("version")}


def retrieval_recall(bundle: Path, n_queries: int, k: int = 100, seed: int = 0) -> dict[str, Any]:
    """The bundle's FAISS index against exact inner-product search over the same vectors (user queries: the mean of
    30 movies drawn by popularity, as serving forms them)."""
    import faiss
    import numpy as np

    from ml_core.retrieval.faiss_index import EmbeddingIndex

    index = EmbeddingIndex.load(bundle / "retrieval")
    exact = faiss.IndexFlatIP(index.vectors.shape[1])
    exact.add(np.ascontiguousarray(index.vectors, np.float32))
    popularity = np.load(bundle / "popularity.npy")[: len(index.vectors)] + 1.0
    rng = np.random.default_rng(seed)
    recalls, t_index, t_exact = [], [], []
    for _ in range(n_queries):
        history = rng.choice(len(index.vectors), 30, replace=False, p=popularity / popularity.sum())
        query = index.user_query(history)
        assert query is not None
        t = time.perf_counter()
        got, _ = index.search(query, k)
        t_index.append(time.perf_counter() - t)
        q = np.ascontiguousarray((query / max(np.linalg.norm(query), 1e-12)).reshape(1, -1), np.float32)
        t = time.perf_counter()
        _, want = exact.search(q, k)
        t_exact.append(time.perf_counter() - t)
        recalls.append(len(set(got.tolist()) & set(want[0].tolist())) / k)
    return {"kind": index.kind, "k": k, "n_items": len(index.vectors), "dims": int(index.vectors.shape[1]),
            "queries": n_queries, "recall": float(np.mean(recalls)), "min_recall": float(np.min(recalls)),
            "index_p50_ms": float(np.percentile(t_index, 50) * 1e3), "exact_p50_ms": float(np.percentile(t_exact, 50) * 1e3)}


HTTP_LOADS = ("bare", "warm", "rated", "cold")
HTTP_NAMES = {"bare": "bare DRF endpoint", "warm": "returning member", "rated": "member who just rated",
              "cold": "first request"}


def render_http(http: list[dict[str, Any]]) -> list[str]:
    """The site on the bundle: one row per tier and load."""
    if not http:
        return []
    first = http[0]
    lines = ["", f"The site on this bundle (`benchmarks/serving_http.py`: uvicorn, {first['workers']} workers, "
             f"{first['database']}, Redis; {first['concurrency']} connections, {first['rounds']} x "
             f"{first['seconds']:g} s per load; load average at start {first['load_at_start']}):", "",
             "| tier | request | requests/s | ratio to bare | p50 ms | p95 ms | server CPU ms/request | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for run in http:
        if "error" in run:
            lines.append(f"| {run['tier']} | error: {run['error']} ||||||")
            continue
        for name in HTTP_LOADS:
            row = run[name]
            ratio = "1.00" if name == "bare" else f"{run[f'ratio_{name}']:.2f}"
            lines.append(f"| {run['tier']} | {HTTP_NAMES[name]} | {row['rps']:.0f} | {ratio} | {row['p50_ms']:.1f} | "
                         f"{row['p95_ms']:.1f} | {row['server_cpu_ms']:.1f} | {row['errors']} |")
    return lines


def render(facts: dict[str, Any], build: dict[str, float] | None, tiers: list[dict[str, Any]],
           recall: dict[str, Any], meta: dict[str, Any], http: list[dict[str, Any]] | None = None) -> str:
    start, end = marked(SECTION)
    lines = [start, "## Serving at catalogue size", "",
             f"Produced by `python benchmarks/serving_scale.py --bundle {meta['bundle']}"
             + (f" --build-time {meta['build_time']}" if meta.get("build_time") else "")
             + f"` at {meta['when']} on {meta['machine']} (load average at start {meta['load']:.2f}); the commands "
             "that made the data and the bundle are in the script's docstring.", "",
             f"Bundle {facts['version']}: dataset `{facts['dataset']}`, **{facts['n_items']:,} movies**, models "
             f"{', '.join(facts['models'])}; weights selected and tested on {facts['n_eval_users']} seeded members; "
             f"ensemble test NDCG@10 {facts['test']['ndcg@10']:.4f}. On disk {facts['disk_mb']:.0f} MB ("
             + ", ".join(f"{k} {v:.0f} MB" for k, v in facts["parts_mb"].items()) + ").", ""]
    if build:
        caps = sorted({m["max_epochs"] for m in facts["models"].values() if m.get("max_epochs")})
        cap = f"at most {', '.join(map(str, caps))} epochs a model" if caps else "each model to early stopping"
        lines += [f"Build ({cap}): {build['wall_s'] / 60:.1f} min wall, peak {build['peak_mb'] / 1024:.1f} GB.", ""]
    lines += ["| model | fit s | epochs | test NDCG@10 | DR weight |", "|---|---:|---:|---:|---:|"]
    for name, m in facts["models"].items():
        ndcg = f"{m['ndcg']:.4f}" if m["ndcg"] is not None else "-"
        lines.append(f"| {name} | {m['train_s'] or 0:.0f} | {m['epochs'] or '-'} | {ndcg} | {m['weight']:.3f} |")
    lines += ["", "Each tier in a fresh process, one thread, k = 10, the stochastic policy on, nothing cached between "
              "requests (ms; memory after the requests):", "",
              "| tier | cold start s | user@100 p50 | p95 | user@500 p50 | item@100 p50 | RSS MB | of it anonymous "
              "| file-backed (shared) | target |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for t in tiers:
        if "error" in t:
            lines.append(f"| {t['tier']} | error: {t['error']} |||||||||")
            continue
        number = int(t["tier"][4]) if t["tier"].startswith("tier") else 0
        p50 = t["user@100"]["p50"]
        goals = []
        if number in TARGETS_MS:
            goals.append(f"p50 <= {TARGETS_MS[number]:g} ms: {'met' if p50 <= TARGETS_MS[number] else '**not met**'}")
        if number in (2, 3):
            goals.append(f"RSS <= 1.5 GB: {'met' if t['rss_mb'] <= TARGET_RSS_MB else '**not met**'}")
        lines.append(f"| {t['tier']} | {t['cold_start_s']:.1f} | {p50:.2f} | {t['user@100']['p95']:.2f} | "
                     f"{t['user@500']['p50']:.2f} | {t['item@100']['p50']:.2f} | {t['rss_mb']:.0f} | "
                     f"{t.get('anon_mb', float('nan')):.0f} | {t.get('file_mb', float('nan')):.0f} | "
                     f"{'; '.join(goals) or '-'} |")
    lines += ["", f"Retrieval: the bundle's {recall['kind']} index over {recall['n_items']:,} vectors of "
              f"{recall['dims']} dimensions against exact search on the same vectors, {recall['queries']} user "
              f"queries: recall@{recall['k']} {recall['recall']:.3f} (lowest {recall['min_recall']:.2f}); p50 "
              f"{recall['index_p50_ms']:.2f} ms against {recall['exact_p50_ms']:.2f} ms exact.",
              *render_http(http or []), "", end]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="the serving folder (ML_ARTIFACTS_DIR/serving)")
    parser.add_argument("--build-time", default=None, help="the build command's /usr/bin/time -v report")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tiers", default="1,2,3")
    parser.add_argument("--queries", type=int, default=500, help="user queries for the retrieval recall")
    parser.add_argument("--http-seconds", type=float, default=0.0,
                        help="seconds per load and round of the site on this bundle (0: no HTTP part)")
    parser.add_argument("--http-tiers", default="2,3")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432",
                        help="PostgreSQL server for the HTTP part's scratch database")
    parser.add_argument("--out", default=str(ROOT / "docs" / "SCALE.md"))
    args = parser.parse_args()
    bundle = Path(args.bundle)
    if not (bundle / "manifest.json").exists():
        raise SystemExit(f"{bundle}: no serving bundle (manifest.json missing)")
    meta = {"bundle": args.bundle, "build_time": args.build_time, "load": os.getloadavg()[0],
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()} ({os.cpu_count()} CPUs)"}
    facts = bundle_facts(bundle)
    build = build_time(Path(args.build_time) if args.build_time else None)
    tiers = [in_process(bundle, int(t), args.requests) for t in args.tiers.split(",") if t]
    recall = retrieval_recall(bundle, args.queries)
    http = []
    if args.http_seconds > 0:
        from benchmarks.serving_http import run_http

        for tier in [t for t in args.http_tiers.split(",") if t]:
            try:
                http.append(run_http(bundle, tier, seconds=args.http_seconds, concurrency=8, workers=2,
                                     postgres=args.postgres or None, rounds=2, loads=HTTP_LOADS))
            except Exception as exc:  # noqa: BLE001 - the page says which tier failed and why
                http.append({"tier": tier, "error": f"{type(exc).__name__}: {exc}"})
    section = render(facts, build, tiers, recall, meta, http)
    write_section(Path(args.out), SECTION, section, title="Scale")
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
