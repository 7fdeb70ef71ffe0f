"""How APEX's models grow with the data: writes docs/SCALE.md.

    python benchmarks/scale.py [--scales 1m,25m] [--models popularity,itemknn,ease] [--eval-users 5000]

For each scale a seeded synthetic MovieLens-shaped set (`python -m ml_core synth --scale S`, reused from
var/synth-S when there) is split by the usual chronological leave-one-out; each model is fitted on it in a fresh
process (its own peak RSS), then evaluated with full ranking on a seeded sample of test users (`--eval-users`,
as `train --eval-users` does). The table gives fit time, peak memory, artifact size and test NDCG@10; the growth
exponent b (fit time ∝ ratings^b) is fitted over the scales run. Models not listed here do not yet run at 25M
(issue 17): the page says so instead of guessing.
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

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.support.sections import section_of  # noqa: E402

DOC = REPO / "docs" / "SCALE.md"


def _child(folder: str, model: str, eval_users: int) -> None:
    """Inside a fresh process: load, split, fit, evaluate, export; one JSON line."""
    import resource

    sys.path.insert(0, str(REPO))
    from ml_core.data import load_dataset
    from ml_core.evaluation import evaluate, leave_one_out
    from ml_core.interface import FitOptions
    from ml_core.registry import MODELS

    t0 = time.perf_counter()
    data = load_dataset(folder)
    split = leave_one_out(data, seed=42, eval_users=eval_users)
    prepared = time.perf_counter() - t0
    instance = MODELS[model]()
    t0 = time.perf_counter()
    instance.fit(split.train, FitOptions(seed=42, progress=False))
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics = evaluate(instance, split, "test", full_only=True)
    scored = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        instance.export(Path(tmp) / model)
        size = sum(p.stat().st_size for p in (Path(tmp) / model).rglob("*") if p.is_file())
    print(json.dumps({"model": model, "ratings": len(data), "items": data.n_items, "users": data.n_users,
                      "prepare_s": prepared, "fit_s": fit, "eval_s": scored,
                      "eval_users": int(len(split.eval_users("test"))), "ndcg@10": metrics["ndcg@10"],
                      "artifact_mb": size / 2**20,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _run(folder: Path, model: str, eval_users: int) -> dict:
    """A fresh process from this (small) one: a forked child's peak RSS starts from its parent's."""
    out = subprocess.run([sys.executable, __file__, "--child", str(folder), "--model", model,
                          "--eval-users", str(eval_users)], cwd=REPO, capture_output=True, text=True, check=False)
    if out.returncode:
        return {"model": model, "error": (out.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", default="1m,25m")
    parser.add_argument("--models", default="popularity,itemknn,ease")
    parser.add_argument("--eval-users", type=int, default=5000)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.model, args.eval_users)
        return 0
    load_before = os.getloadavg()
    rows: list[dict] = []
    for scale in args.scales.split(","):
        folder = REPO / "var" / f"synth-{scale}"
        if not (folder / "ratings.csv").exists():
            subprocess.run([sys.executable, "-m", "ml_core", "synth", "--scale", scale, "--out", str(folder),
                            "--no-progress"], cwd=REPO, check=True)
        for model in args.models.split(","):
            row = {"scale": scale, **_run(folder, model, args.eval_users)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    load_after = os.getloadavg()
    lines = [
        "# Scale: how the models grow with the data",
        "",
        f"Produced by `python benchmarks/scale.py --scales {args.scales} --models {args.models} --eval-users "
        f"{args.eval_users}` on {platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()}), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Load average (1/5/15 min) before "
        f"{' / '.join(f'{x:.2f}' for x in load_before)}, after {' / '.join(f'{x:.2f}' for x in load_after)}: "
        "the machine was shared, so times are upper bounds.",
        "",
        "Data: `python -m ml_core synth --scale S` (docs/SYNTHETIC_DATA.md compares its shape with ml-100k and "
        "ml-latest-small). Each model is fitted in a fresh process on the chronological leave-one-out train part "
        "(default configuration) and evaluated with full ranking on a seeded sample of test users; *prepare* is "
        "reading the CSV and splitting.",
        "",
        "| scale | model | ratings | items | prepare | fit | peak RSS | artifact | test users | test NDCG@10 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['scale']} | {r['model']} | failed: {r['error']} | | | | | | | |")
            continue
        lines.append(f"| {r['scale']} | {r['model']} | {r['ratings']:,} | {r['items']:,} | {r['prepare_s']:.0f} s | "
                     f"{r['fit_s']:.1f} s | {r['peak_rss_mb'] / 1024:.1f} GB | {r['artifact_mb']:.0f} MB | "
                     f"{r['eval_users']:,} | {r['ndcg@10']:.4f} |")
    exponents = []
    for model in args.models.split(","):
        done = [r for r in rows if r.get("model") == model and "error" not in r and r["fit_s"] > 0]
        if len(done) >= 2:
            b = np.polyfit(np.log([r["ratings"] for r in done]), np.log([r["fit_s"] for r in done]), 1)[0]
            exponents.append(f"| {model} | {b:.2f} |")
    if exponents:
        lines += ["", "Fitted growth of fit time with the number of ratings (time ∝ n^b over the scales above):", "",
                  "| model | b |", "|---|---:|", *exponents]
    lines += ["", "Why: popularity is one pass (linear). ItemKNN builds its top-k neighbourhoods a block of items at a "
              "time (`ml_core/models/itemknn.py`): the co-occurrence products grow with the ratings and the items. "
              "EASE solves densely over at most 15,000 items (`EASEConfig.max_items`, O(head^3), fixed once the "
              "catalogue is past it) and regresses the other items on them a block at a time, so its time past "
              "that size grows with the remainder, not with items^3.", "",
              "Not yet run at this size (issue 17): SASRec, LightGCN, the KAN ranker (its features hold a dense "
              "item x item cosine), Neural-ODE, the hyperbolic model and DiffRec/L-DiffRec."]
    kept = section_of(DOC.read_text(), "retrieval") if DOC.exists() else None  # benchmarks/retrieval_scale.py's
    DOC.write_text("\n".join(lines) + "\n" + ("" if kept is None else "\n" + kept + "\n"))
    print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
