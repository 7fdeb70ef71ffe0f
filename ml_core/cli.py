"""`python -m ml_core train ...` (and `manage.py train`): fit (or tune with --tune), evaluate, export, write model cards;
`python -m ml_core fairness --dataset ml-100k`: the demographic fairness report (docs/FAIRNESS.md)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .data import REPO_ROOT, DatasetError, dataset_profile, fallback_notes, load_dataset
from .tuning import DEFAULT_TRIALS

log = logging.getLogger("ml_core")

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input (unknown dataset or model); exit code 2."""


def artifacts_root(out: str | None) -> Path:
    """--out, else $ML_ARTIFACTS_DIR, else var/artifacts in the project."""
    return Path(out or os.environ.get("ML_ARTIFACTS_DIR") or REPO_ROOT / "var" / "artifacts")


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """The train options (shared with `manage.py train`)."""
    train.add_argument("--dataset", default="ml-100k",
                       help="ml-100k, ml-latest-small, a MovieLens folder, or an interaction CSV / a folder with "
                            "interactions.csv (user_id,item_id[,rating][,timestamp]; see ml_core/data.py)")
    train.add_argument("--models", default="all", help="comma-separated registry names (default: all registered)")
    train.add_argument("--out", default=None, help="artifacts root (default $ML_ARTIFACTS_DIR or var/artifacts)")
    train.add_argument("--docs", default=str(REPO_ROOT / "docs"), help="where MODEL_CARDS.md and img/ go")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--threads", type=int, default=int(os.environ.get("ML_TORCH_THREADS", "1")),
                       help="torch intra-op threads (default 1, or $ML_TORCH_THREADS)")
    train.add_argument("--tune", action="store_true",
                       help="search each model's configuration on validation first (Optuna TPE, median pruning; "
                            "resumable) and store the choice for this dataset; without it, train the stored "
                            "choice, or the model's defaults for a dataset never tuned")
    train.add_argument("--trials", type=int, default=None,
                       help="trials per model with --tune, counting earlier sessions (default: the model's own, "
                            f"else {DEFAULT_TRIALS})")
    train.add_argument("--jobs", type=int, default=1,
                       help="models trained at once, each in its own process with --threads threads (default 1)")
    train.add_argument("--quick", action="store_true", help="smoke run: first configuration, 2 epochs")
    train.add_argument("--eval-users", type=int, default=None,
                       help="validate and test on a seeded sample of this many users (large sets; the card says "
                            "so); default all")
    train.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_arguments(sub.add_parser("train", help="train, tune on validation, evaluate on test, export, "
                                                     "write model cards"))
    cards = sub.add_parser("cards", help="regenerate docs/MODEL_CARDS.md from the saved run metrics")
    cards.add_argument("--out", default=None, help="artifacts root (default $ML_ARTIFACTS_DIR or var/artifacts)")
    cards.add_argument("--docs", default=str(REPO_ROOT / "docs"))
    add_fairness_arguments(sub.add_parser("fairness", help="per member group (age, gender, occupation) accuracy, "
                                                           "exposure and calibration before and after re-ranking; "
                                                           "writes docs/FAIRNESS.md"))
    from .synth import add_synth_arguments

    add_synth_arguments(sub.add_parser("synth", help="write a seeded MovieLens-shaped dataset of any size "
                                                     "(ratings.csv, movies.csv, links.csv); streams"))
    from .experiments.simulate import add_simulate_arguments

    add_simulate_arguments(sub.add_parser("simulate", help="members with known true preferences use the serving "
                                                           "engine; scores off-policy estimates, A/B tests and "
                                                           "Thompson allocation against the truth; writes "
                                                           "docs/EXPERIMENTS.md"))
    return parser


def add_fairness_arguments(fairness: argparse.ArgumentParser) -> None:
    """The fairness report's options."""
    from .fairness import EASE_MAX_ITEMS, MODEL_CHOICES

    fairness.add_argument("--dataset", default="ml-100k",
                          help="a dataset with member demographics: ml-100k (u.user), or a CSV dataset with a "
                               "users.csv (user_id,age,gender,occupation)")
    fairness.add_argument("--model", default="auto", choices=MODEL_CHOICES,
                          help="auto: the ensemble trained on this split (`python -m ml_core ensemble`) when its "
                               f"artifacts are under --out, else EASE fitted here (up to {EASE_MAX_ITEMS} items), "
                               "else popularity")
    fairness.add_argument("--bundle", default=None, help="a serving bundle folder to use when trained on this split")
    fairness.add_argument("--out", default=None, help="artifacts root (default $ML_ARTIFACTS_DIR or var/artifacts)")
    fairness.add_argument("--docs", default=str(REPO_ROOT / "docs"), help="where FAIRNESS.md and img/ go")
    fairness.add_argument("--seed", type=int, default=42)
    fairness.add_argument("--min-group-users", type=int, default=20,
                          help="groups smaller than this are marked and left out of the gaps (default 20)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m ml_core`; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "cards":
        from .cards import write_model_cards

        write_model_cards(artifacts_root(args.out), Path(args.docs))
        return 0
    if args.command == "fairness":
        return run_fairness(args)
    if args.command == "simulate":
        from .experiments.simulate import run_simulate

        return run_simulate(args)
    if args.command == "synth":
        from .synth import run_synth

        return run_synth(args)
    return run_train(args)


def run_fairness(args: argparse.Namespace) -> int:
    """The fairness command: report, JSON under the artifacts root, docs/FAIRNESS.md; 2 on data without groups."""
    from .fairness import NoGroupsError, ScorerUnavailable, fairness_report, write_fairness_card

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        data = load_dataset(args.dataset)
        report = fairness_report(data, model=args.model, artifacts_dir=artifacts_root(args.out), seed=args.seed,
                                 bundle_dir=Path(args.bundle) if args.bundle else None,
                                 min_group_users=args.min_group_users)
    except NoGroupsError as exc:
        print(f"no fairness report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DatasetError, ScorerUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = artifacts_root(args.out) / data.name / "fairness" / "report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True))
    path = write_fairness_card(report, Path(args.docs), f"python -m ml_core fairness --dataset {args.dataset}")
    log.info("fairness report of %s (%s) -> %s and %s", data.name, report["model"]["source"], path, out)
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Run the train command from parsed options (also used by `manage.py train`); the exit code."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ml_core").setLevel(logging.INFO)
    try:
        train_command(args)
    except (UsageError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def resolve_models(names: str) -> list[str]:
    from .registry import MODELS

    if names.strip().lower() == "all":
        return list(MODELS)
    wanted = [n.strip().lower() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in MODELS]
    if unknown or not wanted:
        raise UsageError(f"unknown model(s) {unknown or names!r}; valid names: {', '.join(sorted(MODELS))}")
    return wanted


def train_command(args: argparse.Namespace) -> dict[str, Any]:
    """Train every requested model on one dataset; returns the merged run metrics."""
    import torch

    from . import cards
    from .evaluation import leave_one_out
    from .interface import FitOptions

    names = resolve_models(args.models)
    if getattr(args, "tune", False) and args.quick:
        raise UsageError("--tune searches with the models' real epoch counts; leave out --quick")
    torch.set_num_threads(max(1, args.threads))
    data = load_dataset(args.dataset)
    split = leave_one_out(data, seed=args.seed, eval_users=getattr(args, "eval_users", None))
    root = artifacts_root(args.out) / data.name
    root.mkdir(parents=True, exist_ok=True)
    metrics_path = root / "metrics.json"
    options = FitOptions(seed=args.seed, progress=not args.no_progress, max_epochs=2 if args.quick else None)
    jobs = max(1, min(getattr(args, "jobs", 1) or 1, len(names)))
    if jobs > 1:
        run = _train_in_processes(names, args, jobs)
    for name in names if jobs == 1 else []:
        entry = train_one(name, split, options, root / name, quick=args.quick, tune=getattr(args, "tune", False),
                          n_trials=getattr(args, "trials", None))
        run = merge_run_metrics(metrics_path, name, entry, dataset=data.name, data_snapshot=data.snapshot(),
                                protocol=_protocol(split), platform=_platform())
        log.info("%s: test NDCG@10 %.4f HR@10 %.4f (fit %.1f s) -> %s", name, entry["test"]["ndcg@10"],
                 entry["test"]["hr@10"], entry["train_seconds"], root / name)
    cards.write_model_cards(artifacts_root(args.out), Path(args.docs))
    return run


def _train_in_processes(names: list[str], args: argparse.Namespace, jobs: int) -> dict[str, Any]:
    """Train the models in `jobs` worker processes, one model each at a time, in the order given.

    Each worker trains with `--threads` torch threads and merges its entry into the run file under
    its lock, exactly as the sequential loop does; a failed model fails the command.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    options = {k: v for k, v in vars(args).items() if k != "func"}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_train_worker, name, options) for name in names]
        results = [f.result() for f in futures]
    return results[-1]


def _train_worker(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """One model of a parallel train command, in its own process (no cards: the parent writes them)."""
    import torch

    from .evaluation import leave_one_out
    from .interface import FitOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = argparse.Namespace(**options)
    torch.set_num_threads(max(1, args.threads))
    data = load_dataset(args.dataset)
    split = leave_one_out(data, seed=args.seed, eval_users=getattr(args, "eval_users", None))
    root = artifacts_root(args.out) / data.name
    fit_options = FitOptions(seed=args.seed, progress=False, max_epochs=2 if args.quick else None)
    entry = train_one(name, split, fit_options, root / name, quick=args.quick, tune=getattr(args, "tune", False),
                      n_trials=getattr(args, "trials", None))
    log.info("%s: test NDCG@10 %.4f HR@10 %.4f (fit %.1f s) -> %s", name, entry["test"]["ndcg@10"],
             entry["test"]["hr@10"], entry["train_seconds"], root / name)
    return merge_run_metrics(root / "metrics.json", name, entry, dataset=data.name, data_snapshot=data.snapshot(),
                             protocol=_protocol(split), platform=_platform())


def train_one(name: str, split: Any, options: Any, directory: Path, *, quick: bool, tune: bool = False,
              n_trials: int | None = None, dataset_dir: Path | None = None) -> dict[str, Any]:
    """Fit one model (tuning it first with ``tune``), evaluate it on test, export it; the metrics entry.

    ``dataset_dir`` (default: the folder above ``directory``) holds ``tuning/<model>.db`` (the study) and
    ``tuned/<model>.json`` (the stored choice, which a run without ``tune`` trains, or the defaults without one).
    """
    from . import artifacts, tuning
    from .evaluation import evaluate
    from .registry import MODELS

    cls = MODELS[name]
    dataset_dir = Path(dataset_dir) if dataset_dir is not None else Path(directory).parent
    if tune:
        _, stored = tuning.load_choice(dataset_dir / "tuned", cls, snapshot=split.train.snapshot()["sha256"])
        result = tuning.tune(cls, split, options, storage_dir=dataset_dir / "tuning", n_trials=n_trials,
                             resume_from=stored)  # a shipped study goes on where it stopped
        tuning.save_choice(dataset_dir / "tuned", cls, result, dataset=dataset_dir.name)
    config, record = tuning.load_choice(dataset_dir / "tuned", cls, snapshot=split.train.snapshot()["sha256"])
    if tune:
        model, report = result.model, result.report
    else:
        model, report, _ = tuning.fit_config(cls, config, split, options)
    entry = {
        "model": name,
        "description": (sys.modules[cls.__module__].__doc__ or "").strip(),
        "test": evaluate(model, split, "test"),
        "valid": evaluate(model, split, "valid"),
        "train_seconds": round(report.seconds, 2),
        "train_cpu_seconds": round(report.extra.get("cpu_seconds", report.seconds), 2),
        "n_parameters": int(report.n_parameters),
        "hyperparameters": tuning.config_dict(config),
        **_tuning_fields(record),
        "epochs": report.epochs,
        "best_epoch": report.best_epoch,
        "val_curve": report.val_curve,
        "val_epochs": report.extra.get("val_epochs", list(range(1, len(report.val_curve) + 1))),
        "seed": options.seed,
        "max_epochs": options.max_epochs,
        "torch_threads": _torch_threads(),
        "quick": quick,
        "data_snapshot": split.train.snapshot(),
        "fallbacks": fallback_notes(name, getattr(cls, "metadata_fallbacks", {}), split.full),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    model.export(directory)
    artifacts.write_manifest(directory, metrics=entry)  # the full entry: the run file can be rebuilt from it
    return entry


def _tuning_fields(record: dict[str, Any] | None) -> dict[str, Any]:
    """Where the configuration came from, the study's trial history and its training time (metrics and card)."""
    if record is None:
        return {"tuning": {"source": "defaults", "note": "no stored choice for this dataset (train --tune)"},
                "trials": [], "tuning_seconds": 0.0}
    return {"tuning": {"source": "tuned", "path": record.get("path"), "dataset": record.get("dataset"),
                       "tuned_at": record.get("tuned_at"), "sessions": record.get("sessions", []),
                       "wall_seconds": record.get("wall_seconds"), **record.get("study", {})},
            "trials": record.get("trials", []), "tuning_seconds": record.get("tuning_seconds", 0.0)}


def merge_run_metrics(metrics_path: Path, name: str, entry: dict[str, Any], **run_fields: Any) -> dict[str, Any]:
    """Add one model's entry to the dataset's run file under a file lock, keeping every other model.

    The file is re-read under the lock, so concurrent `train` commands for other models do not
    drop each other's entries; entries missing from it are recovered from the artifact folders.
    """
    import fcntl

    with open(metrics_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        from .cards import read_run

        run = read_run(metrics_path.parent)
        run["models"][name] = entry
        run.update(run_fields, updated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        tmp = metrics_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(run, indent=2, sort_keys=True))
        tmp.replace(metrics_path)
    return run


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _protocol(split: Any) -> dict[str, Any]:
    return {"split": "chronological leave-one-out (last=test, second-to-last=validation; equal times ordered by "
                     "a seeded hash of dataset, user and item)",
            "n_tied_test_users": int(split.test_tied[split.eval_users("test")].sum()),
            "dataset_profile": dataset_profile(split.full),
            "selection": "validation NDCG@10, full ranking", "ties": "pessimistic",
            "n_eval_users": int(len(split.eval_users("test"))), "sampled_negatives": 100,
            "eval_users_sampled": split.eval_sample is not None,
            "train_interactions": len(split.train)}


def _platform() -> dict[str, Any]:
    """Where a run trained. torch picks its CPU kernels by the instruction set it finds (``cpu_capability``), and
    models sensitive to float rounding (the Neural-ODE, HGCF) can land elsewhere on another one."""
    import torch

    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "cpu": _cpu_model(), "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
