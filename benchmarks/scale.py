"""How APEX's models grow with the data: writes docs/SCALE.md.

    python benchmarks/scale.py [--scales 1m,25m] [--models popularity,itemknn,ease] [--eval-users 5000]

For each scale a seeded synthetic MovieLens-shaped set (`python -m ml_core synth --scale S`, reused from
var/synth-S when there) is split by the usual chronological leave-one-out; each model is fitted on it in a fresh
process (its own peak RSS), then evaluated with full ranking on a seeded sample of test users (`--eval-users`,
as `train --eval-users` does). The table gives fit time, peak memory, artifact size and test NDCG@10; the growth
exponent b (fit time ∝ ratings^b) is fitted over the scales stored. Rows are kept in docs/scale.json, so models
and scales can be measured in separate runs; the page lists the models not yet measured at 25M.
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


def _child(folder: str, model: str, eval_users: int, max_epochs: int | None) -> None:
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
    # validation on the same seeded users stops the neural models early, as `train` does
    report = instance.fit(split.train, FitOptions(seed=42, progress=False, validation=split, max_epochs=max_epochs))
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics = evaluate(instance, split, "test", full_only=True)
    scored = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        instance.export(Path(tmp) / model)
        size = sum(p.stat().st_size for p in (Path(tmp) / model).rglob("*") if p.is_file())
    print(json.dumps({"model": model, "ratings": len(data), "items": data.n_items, "users": data.n_users,
                      "prepare_s": prepared, "fit_s": fit, "eval_s": scored, "epochs": report.epochs,
                      "best_epoch": report.best_epoch, "max_epochs": max_epochs,
                      "eval_users": int(len(split.eval_users("test"))), "ndcg@10": metrics["ndcg@10"],
                      "artifact_mb": size / 2**20,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _run(folder: Path, model: str, eval_users: int, max_epochs: int | None) -> dict:
    """A fresh process from this (small) one: a forked child's peak RSS starts from its parent's."""
    extra = [] if max_epochs is None else ["--max-epochs", str(max_epochs)]
    out = subprocess.run([sys.executable, __file__, "--child", str(folder), "--model", model,
                          "--eval-users", str(eval_users), *extra], cwd=REPO, capture_output=True, text=True,
                         check=False)
    if out.returncode:
        return {"model": model, "error": (out.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


RESULTS = REPO / "docs" / "scale.json"  # every measured row; a run replaces its own (scale, model) rows
SCALE_ORDER = ("100k", "1m", "10m", "25m")
WHY = {
    "popularity": "one pass over the ratings (linear).",
    "itemknn": "top-k neighbourhoods built a block of items at a time (`ml_core/models/itemknn.py`): the "
               "co-occurrence products grow with the ratings and the items.",
    "ease": "dense over at most 15,000 items (`EASEConfig.max_items`, O(head^3), fixed once the catalogue is past "
            "it); the other items are regressed on the head a block at a time, so past that size its time grows "
            "with the remainder, not with items^3.",
    "sasrec": "one pass over the training positions per epoch (full softmax below 20,000 items, sampled above: "
              "see the softmax section below), so an epoch grows linearly with the ratings; the number of epochs "
              "early stopping needs is the open factor, and capped rows say so.",
    "kan": "two feature builders (the stacking stage and the final one), each an EASE fit, the item neighbourhoods "
           "and a truncated SVD; histories are sparse rows, and past 15,000 items (`KANConfig.dense_items`) the "
           "cosine keeps each item's 200 nearest neighbours and EASE its head + sparse remainder, so no "
           "item x item array exists. The training lists take the features of their own items only (since "
           "2026-12-07 23:50 UTC; before, every item's 13 features for every member: ~20 min at 45k members x 61k "
           "movies). Full-ranking evaluation builds 13 features for every item of every test user and runs each row "
           "through the KAN: at 1M that, four validation checks over 5,000 users, is most of the fit time, and it "
           "grows with users x items.",
    "lightgcn": "every training step propagates the whole normalised graph (`LightGCNNet.propagate`: n_layers sparse "
                "products over all 2 x ratings edges), so with a fixed batch of 2,048 pairs an epoch would cost "
                "ratings^2 / batch. Past 200 x 2,048 pairs the batch grows with the data instead "
                "(`graph_batch`, `max_steps` = 200 propagations an epoch, square-root step rule): an epoch costs "
                "O(ratings).",
    "hyperbolic": "the same full-graph propagation per step as LightGCN (HGCF's tangent-space hops, "
                  "`ml_core/models/hyperbolic.py`); with its batch of 10,000 the step bound (200 propagations an "
                  "epoch) starts past 2M ratings, so up to 1M an epoch still grows with ratings^2 / batch. Since "
                  "2026-12-07 23:30 UTC it propagates with LightGCN's symmetric SpMM on a CSR adjacency (the backward "
                  "reuses the matrix instead of transposing a COO one every step: a step at 1M ratings 0.57 -> 0.14 s); "
                  "the rows at 1M and below were measured before.",
    "diffusion": "one pass over the users per epoch, each batch of 256 users a dense (batch, items) row block built "
                 "from the sparse matrix (never the whole users x items array): an epoch grows with users x items. "
                 "At 25M (56,687 items) the denoiser's input and output layers hold 57M weights each (hidden 1,000), "
                 "so a batch costs ~175 GFLOP: the run of 2026-12-07 was half-way through its first epoch after 25 "
                 "min on a loaded machine (~45 min an epoch) and was stopped, no row. DiffRec's own answer at this "
                 "size is L-DiffRec (its row).",
    "ldiffrec": "as DiffRec, with the rows compressed per item group by the autoencoder before the diffusion; the "
                "k-means grouping on truncated-SVD item factors is a one-off cost.",
    "neural_ode": "every event is a target once an epoch (each timeline cut into windows of max_len + 1, as SASRec), "
                  "with fixed RK4 steps per gap: an epoch grows linearly with the ratings; the next-item softmax is "
                  "full below 20,000 items and sampled above (the softmax section), and the epochs early stopping "
                  "needs is the open factor.",
}


def _measured(row: dict) -> str:
    run = row.get("run", {})
    return f"{run.get('date', '?')}, load {run.get('load_before', float('nan')):.2f}"


def _table(rows: list[dict]) -> list[str]:
    lines = ["| scale | model | ratings | items | prepare | fit | peak RSS | artifact | test users | scoring ms/user "
             "| test NDCG@10 | measured (UTC, 1-min load before) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['scale']} | {r['model']} | failed: {r['error']} | | | | | | | | | {_measured(r)} |")
            continue
        per_user = f"{1000 * r['eval_s'] / r['eval_users']:.1f}" if r.get("eval_s") is not None else "-"
        epochs = "" if r.get("epochs") in (None, 1) else f" ({r['epochs']} ep{', capped' if r.get('max_epochs') else ''})"
        lines.append(f"| {r['scale']} | {r['model']} | {r['ratings']:,} | {r['items']:,} | {r['prepare_s']:.0f} s | "
                     f"{r['fit_s']:.1f} s{epochs} | {r['peak_rss_mb'] / 1024:.1f} GB | {r['artifact_mb']:.0f} MB | "
                     f"{r['eval_users']:,} | {per_user} | {r['ndcg@10']:.4f} | {_measured(r)} |")
    return lines


def _order(row: dict) -> tuple[int, str]:
    scale = row["scale"]
    return (SCALE_ORDER.index(scale) if scale in SCALE_ORDER else len(SCALE_ORDER), row["model"])


def write_doc(rows: list[dict]) -> None:
    """docs/SCALE.md from every stored row (the retrieval section of benchmarks/retrieval_scale.py is kept)."""
    rows = sorted(rows, key=_order)
    models = list(dict.fromkeys(r["model"] for r in sorted(rows, key=lambda r: r["model"])))
    lines = [
        "# Scale: how the models grow with the data",
        "",
        "Produced by `python benchmarks/scale.py --scales S,... --models M,... --eval-users 5000`: each run measures "
        "its scales x models and replaces those rows in `docs/scale.json`; this page is written from all stored "
        "rows, each with when it was measured and the machine's load then (2 CPUs shared with other work, so times "
        "are upper bounds).",
        "",
        "Data: `python -m ml_core synth --scale S` (docs/SYNTHETIC_DATA.md compares its shape with ml-100k and "
        "ml-latest-small). Each model is fitted in a fresh process on the chronological leave-one-out train part "
        "(default configuration; the neural models check validation NDCG@10 on the same seeded users and stop early, "
        "as `train` does, the checks counted in *fit*, epochs in brackets) and evaluated with full ranking on a seeded sample of test "
        "users; *prepare* is reading the CSV and splitting; *scoring ms/user* is the full-ranking evaluation's time "
        "per test user (every item scored, batched).",
        "",
        *_table(rows),
    ]
    exponents = []
    for model in models:
        done = [r for r in rows if r["model"] == model and "error" not in r and r["fit_s"] > 0]
        if len({r["ratings"] for r in done}) >= 2:
            n = np.log([r["ratings"] for r in done])
            b = np.polyfit(n, np.log([r["fit_s"] for r in done]), 1)[0]
            # early stopping (or a cap) picks a different number of epochs at each scale: per epoch is the cost
            per_epoch = np.polyfit(n, np.log([r["fit_s"] / max(r.get("epochs") or 1, 1) for r in done]), 1)[0]
            exponents.append(f"| {model} | {b:.2f} | {per_epoch:.2f} | {', '.join(r['scale'] for r in done)} |")
    if exponents:
        lines += ["", "Fitted growth of fit time with the number of ratings (time ∝ n^b), for the whole fit and per "
                  "epoch (the epochs early stopping or a cap chose differ between scales). A neural model's fit "
                  "time includes its validation checks, full ranking of the seeded validation users over every "
                  "item: their cost grows with users x items, faster than the ratings between these scales (943 "
                  "users x 1,640 items at 100k, 5,000 x 3,701 at 1M: 12 times the work for 10 times the "
                  "ratings), so a per-epoch b above 1 is partly the checks:", "",
                  "| model | b (fit) | b (per epoch) | over |", "|---|---:|---:|---|", *exponents]
    lines += ["", "Why:", ""] + [f"- **{m}**: {WHY[m]}" for m in models if m in WHY]
    at_25m = {r["model"] for r in rows if r["scale"] == "25m" and "error" not in r}
    missing = [m for m in ("sasrec", "lightgcn", "kan", "neural_ode", "hyperbolic", "diffusion", "ldiffrec")
               if m not in at_25m]
    if missing:
        lines += ["", f"Not yet measured at 25M (issue 17): {', '.join(missing)}."]
    text = DOC.read_text() if DOC.exists() else ""
    # the sections of benchmarks/retrieval_scale.py, softmax_scale.py and serving_scale.py stay as they are
    kept = [k for k in (section_of(text, name) for name in ("retrieval", "softmax", "serving-scale")) if k is not None]
    DOC.write_text("\n".join(lines) + "\n" + "".join("\n" + k + "\n" for k in kept))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", default="1m,25m")
    parser.add_argument("--models", default="popularity,itemknn,ease")
    parser.add_argument("--eval-users", type=int, default=5000)
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="cap on training epochs (the row says so); default: the model's own, early-stopped")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.model, args.eval_users, args.max_epochs)
        return 0
    stored: list[dict] = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    for scale in args.scales.split(","):
        folder = REPO / "var" / f"synth-{scale}"
        if not (folder / "ratings.csv").exists():
            subprocess.run([sys.executable, "-m", "ml_core", "synth", "--scale", scale, "--out", str(folder),
                            "--no-progress"], cwd=REPO, check=True)
        for model in args.models.split(","):
            load_before, started = os.getloadavg()[0], datetime.now(UTC)
            row = {"scale": scale, **_run(folder, model, args.eval_users, args.max_epochs),
                   "run": {"date": f"{started:%Y-%m-%d %H:%M}", "load_before": load_before,
                           "host": f"{platform.node()} ({os.cpu_count()} CPUs)", "eval_users_arg": args.eval_users}}
            stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else []  # another run may have added rows
            stored = [r for r in stored if (r["scale"], r["model"]) != (scale, model)] + [row]
            RESULTS.write_text(json.dumps(sorted(stored, key=_order), indent=1) + "\n")  # kept row by row
            print(json.dumps(row), flush=True)
    write_doc(stored)
    print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
