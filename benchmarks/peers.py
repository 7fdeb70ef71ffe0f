"""Peers on APEX's own split and evaluator: implicit's ALS/BPR and RecBole's EASE/LightGCN/DiffRec/SASRec.

    nice -n 19 .venv/bin/python benchmarks/peers.py [--datasets ml-100k,ml-latest-small]
        [--models all|als,bpr,recbole_ease,...,apex] [--trials 20] [--quick]

Every peer is fitted on ml_core's leave-one-out split (exported as files for RecBole, which runs in
its own virtualenv, var/peers-venv, created here when missing) and returns full score matrices;
APEX's evaluator (ml_core.evaluation.evaluate: the same candidates, exclusions and pessimistic ties)
computes every metric, never the library's own evaluator. Each peer starts from its library's
documented defaults (the first trial) and is tuned by Optuna's TPE (fixed seed) on validation
NDCG@10 with the same trial budget for all. Two protocols, never mixed in one table:
(a) the validation item is in the test-time input (APEX's protocol); (b) train-only input (the
libraries' default for general models). Results accumulate in docs/peers.json (one row per dataset
and implementation, replaced when rerun) and docs/PEERS.md is rewritten from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

log = logging.getLogger("benchmarks.peers")

VENV = REPO / "var" / "peers-venv"
WORK = REPO / "var" / "peers"
RESULTS = REPO / "docs" / "peers.json"
PAGE = REPO / "docs" / "PEERS.md"
# what the RecBole virtualenv installs; RecBole 1.2.1 predates numpy 2, so the numeric stack is pinned
# (and scipy < 1.12: its LightGCN builds the graph with dok_matrix._update, which later scipy removed)
VENV_PINS = ["torch==2.13.0", "numpy==1.26.4", "scipy==1.10.1", "pandas==2.2.3", "recbole==1.2.1"]
PROTOCOLS = {"a": "validation item in the test-time input (APEX's protocol)",
             "b": "train-only test-time input (the libraries' default for general models)"}


@dataclass(frozen=True)
class Peer:
    """One established implementation, its APEX counterpart and its search space."""

    key: str
    family: str
    library: str
    model: str
    apex: str  # the nearest APEX registry model
    defaults: dict[str, Any]  # the library's documented defaults: trial 1
    space: dict[str, tuple]  # name -> ("log"|"int"|"float", low, high) or ("cat", choices)
    note: str = ""


PEERS = {p.key: p for p in [
    Peer("als", "MF", "implicit", "AlternatingLeastSquares", "lightgcn",
         {"factors": 100, "regularization": 0.01, "alpha": 1.0, "iterations": 15},
         {"factors": ("cat", [32, 64, 100, 128, 200]), "regularization": ("log", 1e-3, 10.0),
          "alpha": ("log", 0.1, 50.0), "iterations": ("int", 5, 50)},
         "(a) recomputes the user factors from the history with the validation item (recalculate_user)"),
    Peer("bpr", "MF", "implicit", "BayesianPersonalizedRanking", "lightgcn",
         {"factors": 100, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100},
         {"factors": ("cat", [32, 64, 100, 128, 200]), "learning_rate": ("log", 1e-3, 0.1),
          "regularization": ("log", 1e-4, 0.1), "iterations": ("int", 50, 500)},
         "user factors are learned, not folded in: (a) and (b) are the same scores"),
    Peer("recbole_ease", "EASE", "recbole", "EASE", "ease", {"reg_weight": 250.0},
         {"reg_weight": ("log", 1.0, 5000.0)}),
    Peer("recbole_lightgcn", "LightGCN", "recbole", "LightGCN", "lightgcn",
         {"learning_rate": 0.001, "n_layers": 2, "reg_weight": 1e-5},
         {"learning_rate": ("log", 5e-4, 5e-3), "n_layers": ("int", 1, 4), "reg_weight": ("log", 1e-6, 1e-2)},
         "(a) propagates the learned embeddings over the graph with the validation edges added"),
    Peer("recbole_diffrec", "DiffRec", "recbole", "DiffRec", "diffusion",
         {"learning_rate": 0.001, "steps": 5, "noise_scale": 0.001, "noise_min": 0.0005, "noise_max": 0.005,
          "dims_dnn": 300},
         {"learning_rate": ("log", 1e-5, 1e-2), "steps": ("cat", [2, 5, 10, 40, 50, 100]),
          "noise_scale": ("log", 1e-5, 1e-1), "noise_min": ("cat", [0.0005, 0.001, 0.005]),
          "noise_max": ("cat", [0.005, 0.01]), "dims_dnn": ("cat", [300, 600, 1000])}),
    Peer("recbole_sasrec", "SASRec", "recbole", "SASRec", "sasrec",
         {"learning_rate": 0.001, "n_layers": 2, "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5,
          "MAX_ITEM_LIST_LENGTH": 50},
         {"learning_rate": ("log", 1e-4, 5e-3), "n_layers": ("int", 1, 3), "hidden_dropout_prob": ("float", 0.1, 0.5),
          "attn_dropout_prob": ("float", 0.1, 0.5), "MAX_ITEM_LIST_LENGTH": ("cat", [20, 50, 100, 200])}),
]}
APEX_MODELS = sorted({p.apex for p in PEERS.values()})


# ---- the split as files, and scores as APEX's evaluator reads them --------------------------------

def export_split(split: Any, directory: Path) -> Path:
    """Write the split for a process that cannot import ml_core: train.tsv (user, item, position in
    the user's chronological train sequence), valid.tsv and test.tsv (user, item), meta.json."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "train.tsv", "w") as fh:
        fh.write("user\titem\tposition\n")
        for u, seq in enumerate(split.train_seqs):
            fh.writelines(f"{u}\t{i}\t{p}\n" for p, i in enumerate(seq.tolist()))
    for stage, items in (("valid", split.valid_item), ("test", split.test_item)):
        users = np.flatnonzero(items >= 0)
        with open(directory / f"{stage}.tsv", "w") as fh:
            fh.write("user\titem\n")
            fh.writelines(f"{u}\t{i}\n" for u, i in zip(users.tolist(), items[users].tolist(), strict=True))
    meta = {"n_users": int(len(split.train_seqs)), "n_items": int(split.n_items),
            "snapshot": split.full.snapshot(), "train_snapshot": split.train.snapshot()}
    (directory / "meta.json").write_text(json.dumps(meta, indent=2))
    return directory


def read_split_files(directory: Path) -> dict[str, Any]:
    """The exported files back as {'meta', 'train_seqs', 'valid_item', 'test_item'} (the runner's reader)."""
    from benchmarks.peers_runner import read_split

    return read_split(directory)


class ScoreTable:
    """A fitted peer's precomputed scores (n_users, n_items), read by APEX's evaluator as a model."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, np.float32)

    def score_batch(self, contexts: list[Any]) -> np.ndarray:
        return self.scores[[c.user for c in contexts]]


def scores_from_top_k(top_lists: list[list[int]], n_items: int) -> np.ndarray:
    """Scores that rank each user's top-k list first, in order; every other item NaN (ranks last)."""
    out = np.full((len(top_lists), n_items), np.nan, np.float32)
    for u, items in enumerate(top_lists):
        out[u, np.asarray(items, np.int64)] = np.arange(len(items), 0, -1, dtype=np.float32)
    return out


def train_only_input(split: Any) -> Any:
    """The split seen through protocol (b): test-time input cut to the train history, candidates unchanged."""
    return _TrainOnlyInput(split)


class _TrainOnlyInput:
    def __init__(self, split: Any) -> None:
        self._split = split

    def __getattr__(self, name: str) -> Any:
        return getattr(self._split, name)

    def contexts(self, stage: str, users: np.ndarray) -> list[Any]:
        out = self._split.contexts(stage, users)
        if stage != "test":
            return out
        return [replace(c, history=self._split.train_seqs[u], times=self._split.train_times[u])
                for c, u in zip(out, users.tolist(), strict=True)]


def metrics(scores: np.ndarray, split: Any, stage: str) -> dict[str, float]:
    """APEX's full-ranking metrics of precomputed scores (the candidates/exclusions of `stage`)."""
    from ml_core.evaluation import evaluate

    out = evaluate(ScoreTable(scores), split, stage, full_only=True)
    return {k: round(float(v), 5) if isinstance(v, float) else v for k, v in out.items()}


# ---- fitting the peers ----------------------------------------------------------------------------

@dataclass
class TrialResult:
    params: dict[str, Any]
    valid: dict[str, float]
    test: dict[str, dict[str, float]]
    fit_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def fit_implicit(peer: Peer, params: dict[str, Any], split: Any, seed: int) -> TrialResult:
    """One implicit fit in this process; scores = user factors . item factors."""
    from threadpoolctl import threadpool_limits

    train = split.train.matrix().tocsr()
    with threadpool_limits(1):
        if peer.key == "als":
            from implicit.cpu.als import AlternatingLeastSquares as cls
        else:
            from implicit.cpu.bpr import BayesianPersonalizedRanking as cls
        model = cls(**params, random_state=seed, num_threads=1)
        start = time.perf_counter()
        model.fit(train, show_progress=False)
        seconds = time.perf_counter() - start
        items = np.asarray(model.item_factors)
        train_only = np.asarray(model.user_factors) @ items.T
        if peer.key == "als":
            plus_valid = train.tolil()
            has = np.flatnonzero(split.valid_item >= 0)
            for u in has.tolist():
                plus_valid[u, split.valid_item[u]] = 1.0
            users = np.arange(train.shape[0])
            with_valid = np.asarray(model.recalculate_user(users, plus_valid.tocsr())) @ items.T
        else:
            with_valid = train_only
    return TrialResult(params, metrics(train_only, split, "valid"),
                       {"a": metrics(with_valid, split, "test"), "b": metrics(train_only, split, "test")},
                       round(seconds, 2))


def fit_recbole(peer: Peer, params: dict[str, Any], split_dir: Path, split: Any, seed: int, *,
                quick: bool, work: Path) -> TrialResult:
    """One RecBole fit in the peers virtualenv; APEX's evaluator ranks the score matrices it writes."""
    rb_params = dict(params)
    if "dims_dnn" in rb_params:
        rb_params["dims_dnn"] = [int(rb_params["dims_dnn"])]
    out = work / f"trial-{peer.key}-{os.getpid()}"  # concurrent runs for other peers use their own folders
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(VENV / "bin" / "python"), str(REPO / "benchmarks" / "peers_runner.py"), "--split", str(split_dir),
           "--model", peer.model, "--params", json.dumps(rb_params), "--out", str(out), "--seed", str(seed)]
    if quick:
        cmd += ["--epochs", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(["nice", "-n", "19", *cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{peer.key} runner failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    record = json.loads((out / "result.json").read_text())
    valid = np.load(out / "valid.npy")
    result = TrialResult(params, metrics(valid, split, "valid"),
                         {"a": metrics(np.load(out / "test_a.npy"), split, "test"),
                          "b": metrics(np.load(out / "test_b.npy"), split, "test")},
                         record["fit_seconds"], {"versions": record["versions"], "recbole_config": record["config"],
                                                 "epochs": record["epochs"]})
    shutil.rmtree(out, ignore_errors=True)
    return result


def suggest(trial: Any, space: dict[str, tuple]) -> dict[str, Any]:
    params = {}
    for name, spec in space.items():
        kind = spec[0]
        if kind == "cat":
            params[name] = trial.suggest_categorical(name, spec[1])
        elif kind == "int":
            params[name] = trial.suggest_int(name, spec[1], spec[2])
        else:
            params[name] = trial.suggest_float(name, spec[1], spec[2], log=kind == "log")
    return params


def tune_peer(peer: Peer, split: Any, split_dir: Path, *, trials: int, seed: int, quick: bool,
              work: Path) -> dict[str, Any]:
    """Trial 1 = the library's defaults, then TPE (seeded) on APEX's validation NDCG@10; the best trial's row."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=_apex_tuning()[1])
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(peer.defaults)
    best: TrialResult | None = None
    history, start = [], time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        params = suggest(trial, peer.space)
        try:
            if peer.library == "implicit":
                result = fit_implicit(peer, params, split, seed)
            else:
                result = fit_recbole(peer, params, split_dir, split, seed, quick=quick, work=work)
        except (RuntimeError, ValueError) as exc:  # a configuration the library rejects fails its trial only
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            history.append({"params": params, "error": str(exc)[-300:]})
            log.warning("%s trial %d %s failed: %s", peer.key, trial.number, params, str(exc)[-300:])
            continue
        study.tell(trial, result.valid["ndcg@10"])
        history.append({"params": params, "val_ndcg@10": result.valid["ndcg@10"], "fit_seconds": result.fit_seconds})
        log.info("%s trial %d %s: val NDCG@10 %.4f (fit %.1f s)", peer.key, trial.number, params,
                 result.valid["ndcg@10"], result.fit_seconds)
        if best is None or result.valid["ndcg@10"] > best.valid["ndcg@10"]:
            best = result
    if best is None:
        raise RuntimeError(f"{peer.key}: every trial failed: {history}")
    return {"implementation": f"{peer.library} {peer.model}", "family": peer.family, "apex": peer.apex,
            "config": best.params, "valid": best.valid, "test": best.test, "fit_seconds": best.fit_seconds,
            "tuning_seconds": round(time.perf_counter() - start, 1), "trials": len(history), "history": history,
            "versions": best.extra.get("versions") or _implicit_versions(), "note": peer.note,
            "library_config": best.extra.get("recbole_config"), "epochs": best.extra.get("epochs")}


def _apex_tuning() -> tuple[int, int]:
    """APEX's trial budget and TPE start-up trials (ml_core.tuning), so both sides search alike."""
    try:
        from ml_core.tuning import DEFAULT_TRIALS, TPE_STARTUP_TRIALS
    except ImportError:  # pragma: no cover - before ml_core.tuning existed
        return 20, 6
    return DEFAULT_TRIALS, TPE_STARTUP_TRIALS


def _implicit_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("implicit", "numpy", "scipy")}


def ensure_venv() -> None:
    """Create var/peers-venv with RecBole and its pinned stack, or bring an existing one to the pins."""
    python = VENV / "bin" / "python"
    if not python.exists():
        log.info("creating %s", VENV)
        subprocess.run(["nice", "-n", "19", shutil.which("python3") or "python3", "-m", "venv", str(VENV)], check=True)
    probe = ("from importlib.metadata import version; import sys; "
             "print(' '.join(f'{p}=={version(p)}' for p in sys.argv[1:]))")
    names = [p.split("==")[0] for p in VENV_PINS]
    found = subprocess.run([str(python), "-c", probe, *names], capture_output=True, text=True).stdout.split()
    if [f.split("+")[0] for f in found] != VENV_PINS:
        log.info("installing %s into %s", " ".join(VENV_PINS), VENV)
        subprocess.run(["nice", "-n", "19", str(python), "-m", "pip", "install", "-q", "--find-links", "/opt/wheels",
                        *VENV_PINS], check=True)


# ---- APEX's own models under both protocols -------------------------------------------------------

def apex_row(name: str, split: Any, *, quick: bool, seed: int) -> dict[str, Any]:
    """APEX's model from its trained artifact when that matches this split, else a fit of the configuration
    `train` would fit (the dataset's stored tuning choice, or the defaults)."""
    from ml_core import tuning
    from ml_core.cli import artifacts_root
    from ml_core.evaluation import evaluate
    from ml_core.interface import FitOptions
    from ml_core.registry import MODELS, load_model

    dataset_dir = artifacts_root(None) / split.full.name
    folder = dataset_dir / name
    entry, model = {}, None
    if (folder / "metrics.json").exists():
        entry = json.loads((folder / "metrics.json").read_text())
        if entry.get("data_snapshot") == split.train.snapshot() and bool(entry.get("quick")) <= quick:
            model = load_model(folder)
            source = f"loaded from the trained artifact {folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder}"
    if model is None:
        cls = MODELS[name]
        config, record = tuning.load_choice(dataset_dir / "tuned", cls)
        options = FitOptions(seed=seed, progress=False, max_epochs=2 if quick else None)
        model, report, _ = tuning.fit_config(cls, config, split, options)
        entry = {"hyperparameters": tuning.config_dict(config), "train_seconds": round(report.seconds, 2),
                 "trials": (record or {}).get("trials") or [{}], "quick": quick}
        source = ("fitted here with " + ("its stored tuned configuration" if record else "its default configuration")
                  + (" (2 epochs)" if quick else ""))
    keep = ("hr@10", "ndcg@10", "mrr@10", "n_users", "n_tied_users", "ndcg@10_untied")
    pick = lambda out: {k: v for k, v in out.items() if k in keep}  # noqa: E731
    trials = entry.get("trials")
    return {"implementation": f"APEX {name}", "family": name, "apex": name, "config": entry.get("hyperparameters"),
            "valid": pick(evaluate(model, split, "valid", full_only=True)),
            "test": {"a": pick(evaluate(model, split, "test", full_only=True)),
                     "b": pick(evaluate(model, train_only_input(split), "test", full_only=True))},
            # an untuned model (its defaults: one configuration) has no trial history in its metrics
            "fit_seconds": entry.get("train_seconds"),
            "trials": max(len(trials) if isinstance(trials, list) else int(trials or 0), 1),
            "source": source, "quick": bool(entry.get("quick", quick))}


# ---- the page ---------------------------------------------------------------------------------------

def _fmt(value: Any, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _table(rows: list[dict[str, Any]], apex: dict[str, dict[str, Any]], protocol: str) -> list[str]:
    lines = ["| family | peer | NDCG@10 | HR@10 | trials | fit s | APEX model | NDCG@10 | HR@10 | trials | fit s | run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        mine = apex.get(row["apex"])
        t = row["test"][protocol]
        a = mine["test"][protocol] if mine else {}
        run = "quick" if row["quick"] or (mine or {}).get("quick") else "full"
        lines.append(f"| {row['family']} | {row['implementation']} | {_fmt(t['ndcg@10'])} | {_fmt(t['hr@10'])} | "
                     f"{row['trials']} | {_fmt(row['fit_seconds'], 1)} | {row['apex']} | {_fmt(a.get('ndcg@10'))} | "
                     f"{_fmt(a.get('hr@10'))} | {(mine or {}).get('trials', '–')} | "
                     f"{_fmt((mine or {}).get('fit_seconds'), 1)} | {run} |")
    return lines


def _short(config: Any) -> str:
    """A configuration as compact JSON, floats to 4 significant digits."""
    if isinstance(config, dict):
        config = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in config.items()}
    return json.dumps(config, sort_keys=True)


def write_page(store: dict[str, Any], path: Path) -> None:
    """docs/PEERS.md from every stored row: per dataset and protocol, peer vs APEX; then configurations."""
    rows = list(store["rows"].values())
    quick = any(r["quick"] for r in rows)
    lines = ["# Peers: established implementations on APEX's split and evaluator", ""]
    if quick:
        lines += ["> **Rows marked `quick` are a smoke run (1–2 trials; RecBole 1 epoch, APEX 2 epochs): they prove",
                  "> the machinery, they are not the tuned figures.** Rows marked `full` ran the peer's trials as",
                  "> listed (the `trials` column) and APEX's model with full training.", ""]
    lines += ["Written by `benchmarks/peers.py` (commands below). Every peer is fitted on `ml_core`'s chronological",
              "leave-one-out split (RecBole through exported files, in its own virtualenv) and returns full score",
              "matrices; `ml_core.evaluation.evaluate` computes every metric (same candidates and exclusions,",
              "pessimistic ties, test users of the split), never the library's own evaluator. Each peer's first",
              "trial is its library's documented defaults; the rest are Optuna TPE (seed 42, APEX's start-up",
              "trials) on validation NDCG@10, APEX's trial budget (`ml_core.tuning.DEFAULT_TRIALS`) unless the",
              "`trials` column says fewer. `fit s` is the selected trial's wall time on a shared",
              "2-core machine (load varies; compare orders of magnitude only). The APEX side is the configuration",
              "`python -m ml_core train` fits for the dataset (its stored tuning choice, else its defaults: 1 trial),",
              "or its trained artifact when one matches the split.", "",
              "Two protocols, never mixed in one table:", "",
              *[f"- **({k})** {v}" for k, v in PROTOCOLS.items()], "",
              "Candidates are the same under both: every item except the user's train items and validation item.",
              "MF peers (ALS, BPR) face APEX's nearest model, LightGCN (BPR-trained embeddings; LightGCN with zero",
              "layers is BPR-MF); APEX has no plain MF.", ""]
    for dataset in sorted({r["dataset"] for r in rows}):
        here = [r for r in rows if r["dataset"] == dataset]
        apex = {r["apex"]: r for r in here if r["implementation"].startswith("APEX ")}
        peers = sorted((r for r in here if not r["implementation"].startswith("APEX ")),
                       key=lambda r: (r["family"], r["implementation"]))
        n_users = next(iter(here))["test"]["a"].get("n_users")
        lines += [f"## {dataset} ({n_users} test users)", ""]
        for protocol, text in PROTOCOLS.items():
            lines += [f"### ({protocol}) {text}", "", *_table(peers, apex, protocol), ""]
        lonely = [r for r in apex.values() if r["apex"] not in {p["apex"] for p in peers}]
        if lonely:
            lines += ["APEX models without a peer row here: " + ", ".join(
                f"{r['apex']} (a) {_fmt(r['test']['a']['ndcg@10'])} / (b) {_fmt(r['test']['b']['ndcg@10'])}"
                for r in lonely), ""]
    lines += ["## Commands that wrote these rows", "", *[f"- `{c}`" for c in sorted({r["command"] for r in rows})], "",
              "## Configurations, versions, commands", ""]
    for key in sorted(store["rows"]):
        r = store["rows"][key]
        lines.append(f"- **{key}** ({'quick' if r['quick'] else 'full'}, {r['measured_at']}): "
                     f"selected `{_short(r.get('config'))}`"
                     + (f"; validation NDCG@10 {_fmt(r['valid']['ndcg@10'])}" if r.get("valid") else "")
                     + (f"; {r['source']}" if r.get("source") else "")
                     + (f"; {r['epochs']} epochs run" if r.get("epochs") else "")
                     + (f"; RecBole config `{_short(r['library_config'])}`"
                        if r.get("library_config") else "")
                     + (f"; versions {', '.join(f'{k} {v}' for k, v in sorted(r['versions'].items()))}"
                        if r.get("versions") else "")
                     + (f"; {r['note']}" if r.get("note") else "")
                     + f"; command `{r['command']}`")
    lines += ["", "The RecBole virtualenv (`var/peers-venv`, created by the script when missing) pins "
              + ", ".join(f"`{p}`" for p in VENV_PINS) + " (RecBole 1.2.1 predates numpy 2 and scipy's dok_matrix rework); "
              "implicit runs in the project's own virtualenv.", ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--models", default="all", help=f"comma list of {', '.join(PEERS)}, apex, apex_<model> (default all)")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per peer (default: APEX's budget, ml_core.tuning.DEFAULT_TRIALS; --quick: 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 trials, 1 RecBole epoch, APEX 2 epochs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--page-only", action="store_true", help="rewrite docs/PEERS.md from docs/peers.json")
    args = parser.parse_args(argv)
    if args.page_only:
        write_page(json.loads(RESULTS.read_text()), PAGE)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    trials = args.trials or (2 if args.quick else _apex_tuning()[0])
    wanted = list(PEERS) + ["apex"] if args.models == "all" else [m.strip() for m in args.models.split(",")]
    unknown = [m for m in wanted if m not in PEERS and m != "apex" and m.removeprefix("apex_") not in APEX_MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; valid: {', '.join(PEERS)}, apex, "
                     + ", ".join(f"apex_{m}" for m in APEX_MODELS))
    command = "nice -n 19 .venv/bin/python benchmarks/peers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    run_datasets(args.datasets.split(","), wanted, trials=trials, quick=args.quick, seed=args.seed,
                 command=command.strip())
    return 0


def run_datasets(datasets: list[str], wanted: list[str], *, trials: int, quick: bool, seed: int,
                 command: str) -> None:
    """Fit every wanted peer (and, for `apex`, APEX's counterparts) per dataset, store each row, rewrite the page.

    `apex` alone means every counterpart; beside peers, the counterparts of those peers only;
    `apex_<name>` adds one APEX model.
    """
    import torch

    from ml_core.data import load_dataset
    from ml_core.evaluation import leave_one_out

    torch.set_num_threads(1)
    peers = [m for m in wanted if m in PEERS]
    if any(PEERS[m].library == "recbole" for m in peers):
        ensure_venv()
    apex = (sorted({PEERS[m].apex for m in peers}) if peers else APEX_MODELS) if "apex" in wanted else []
    apex += [m.removeprefix("apex_") for m in wanted if m.startswith("apex_") and m.removeprefix("apex_") not in apex]
    for dataset in datasets:
        split = leave_one_out(load_dataset(dataset), seed=seed)
        split_dir = export_split(split, WORK / dataset / "split")
        stamp = {"command": command, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "dataset": dataset, "snapshot": split.full.snapshot()}
        for name in peers:
            row = tune_peer(PEERS[name], split, split_dir, trials=trials, seed=seed, quick=quick, work=WORK / dataset)
            store_row({**row, **stamp, "quick": quick})
        for name in apex:
            row = apex_row(name, split, quick=quick, seed=seed)
            store_row({**row, **stamp, "quick": quick or bool(row.get("quick"))})


def store_row(row: dict[str, Any]) -> None:
    """Replace this dataset's row for the implementation in docs/peers.json (under a lock, so runs for
    other models can write beside it) and rewrite docs/PEERS.md from every stored row."""
    import fcntl

    log.info("%s %s: test (a) NDCG@10 %.4f, (b) %.4f", row["dataset"], row["implementation"],
             row["test"]["a"]["ndcg@10"], row["test"]["b"]["ndcg@10"])
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / "results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        store = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"rows": {}}
        store["rows"][f"{row['dataset']}/{row['implementation']}"] = row
        RESULTS.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")
        write_page(store, PAGE)


if __name__ == "__main__":
    sys.exit(main())
