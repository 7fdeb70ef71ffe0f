"""Wall time of the six-model retrain on ml-100k (targets: SASRec and LightGCN < 5 min each, all six <= 15 min).

    python benchmarks/training_time.py [--jobs 2] [--threads 1]

Runs the real train command (`python -m ml_core train --jobs ... --threads ...`) into a temporary artifacts
root, so the committed model cards are untouched, and writes docs/TRAINING_BENCHMARK.md from the run file:
per-model fit and tuning time (wall and CPU), test NDCG@10, and the command's total wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "TRAINING_BENCHMARK.md"
SIX = ("sasrec", "neural_ode", "kan", "lightgcn", "hyperbolic", "diffusion")  # longest first: packs the jobs
TARGETS = {"sasrec": 300.0, "lightgcn": 300.0}
TOTAL_TARGET = 900.0


def run(models: list[str], jobs: int, threads: int, dataset: str) -> tuple[float, dict, list[float]]:
    """Train into a temp root; (command wall seconds, run file, load averages before/after)."""
    with tempfile.TemporaryDirectory(prefix="apex-train-bench-") as tmp:
        cmd = [sys.executable, "-m", "ml_core", "train", "--dataset", dataset, "--models", ",".join(models),
               "--jobs", str(jobs), "--threads", str(threads), "--out", tmp, "--docs", str(Path(tmp) / "docs"),
               "--no-progress"]
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, check=True)
        wall = time.perf_counter() - start
        run_file = json.loads((Path(tmp) / dataset / "metrics.json").read_text())
    return wall, run_file, [round(load_before, 2), round(os.getloadavg()[0], 2)]


def render(wall: float, run_file: dict, loads: list[float], jobs: int, threads: int, models: list[str]) -> str:
    entries = run_file["models"]
    lines = [
        "# Training time benchmark",
        "",
        "Produced by `python benchmarks/training_time.py"
        + (f" --jobs {jobs}" if jobs != 2 else "") + (f" --threads {threads}" if threads != 1 else "")
        + (f" --models {','.join(models)}" if tuple(models) != SIX else "")
        + "`; do not edit by hand. The real train command (tuning on validation, early stopping, test evaluation, "
        "export) on ml-100k into a temporary root.",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%dT%H:%MZ} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{jobs} model(s) at a time with {threads} torch thread(s) each; 1-minute load average "
        f"{loads[0]} before, {loads[1]} after.",
        "",
        f"**Total wall time of the command: {wall:.0f} s ({wall / 60:.1f} min)**; target <= {TOTAL_TARGET / 60:.0f} min.",
        "",
        "| model | fit wall s | fit CPU s | epochs (best) | tuning wall s (configs) | test NDCG@10 | target |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    for name in models:
        e = entries[name]
        target = f"fit < {TARGETS[name]:.0f} s" if name in TARGETS else ""
        lines.append(
            f"| {name} | {e['train_seconds']:.1f} | {e['train_cpu_seconds']:.1f} | {e['epochs']} ({e['best_epoch']}) "
            f"| {e['tuning_seconds']:.1f} ({len(e['trials'])}) | {e['test']['ndcg@10']:.4f} | {target} |")
    lines += ["", "Fit = the selected configuration's training, validation checks included; tuning = all "
              "configurations tried. The model cards (`docs/MODEL_CARDS.md`) carry the metrics of the committed "
              "artifacts; this page is about time.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--models", default=",".join(SIX))
    parser.add_argument("--out", default=str(DOC))
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    wall, run_file, loads = run(models, args.jobs, args.threads, args.dataset)
    Path(args.out).write_text(render(wall, run_file, loads, args.jobs, args.threads, models))
    print(f"total {wall:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
