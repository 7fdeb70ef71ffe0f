"""The blended ensemble's building blocks, shared by the serving build (ml_core.serving_build) and the
ensemble experiment (ml_core.ensemble): fit (or reuse) each model, score a split, pick blend weights by DR on
validation, evaluate a score matrix with the one protocol."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .evaluation import K, Split, _excluded, beyond_accuracy, rank_metrics, ranks_full, tie_metrics, top_k
from .interface import FitOptions
from .ranking import N_WEIGHT_SAMPLES, blend, normalise, select_weights_dr

log = logging.getLogger("ml_core.ensemble")  # the log these lines always went to

ENSEMBLE_MODELS = ("sasrec", "lightgcn", "kan", "neural_ode", "hyperbolic", "diffusion")


def registered(names: Sequence[str]) -> list[str]:
    """The requested models that the registry knows (missing ones are logged, not fatal)."""
    from .registry import MODELS

    missing = [n for n in names if n not in MODELS]
    if missing:
        log.warning("ensemble: models not registered yet, left out: %s", missing)
    return [n for n in names if n in MODELS]


def fit_or_load(name: str, split: Split, options: FitOptions, directory: Path, *, quick: bool,
                dataset_dir: Path | None = None) -> tuple[Any, dict[str, Any]]:
    """Reuse ``directory`` when it holds this model trained on this split's train data in the configuration
    stored for the dataset (``dataset_dir``/tuned, see :mod:`ml_core.tuning`); else fit that one and export."""
    from .artifacts import ArtifactError, verify_artifact
    from .cli import train_one
    from .registry import MODELS, load_model
    from .tuning import config_dict, load_choice

    snapshot = split.train.snapshot()
    dataset_dir = Path(dataset_dir) if dataset_dir is not None else Path(directory).parent
    cls = MODELS[name]
    wanted = json.dumps(config_dict(load_choice(dataset_dir / "tuned", cls, snapshot=snapshot["sha256"])[0]),
                        sort_keys=True)
    try:
        manifest = verify_artifact(directory)
        metrics = manifest.get("metrics") or {}
        # a field added to the config since the artifact was trained takes today's default (the artifact is
        # reused: a new field whose default changes training, such as HGCF's min_patience, needs a retrain by
        # hand); a field no longer in the config still differs, and refits
        stored = {**config_dict(cls.config_cls()), **(metrics.get("hyperparameters") or {})}
        if ((manifest.get("data_snapshot") or {}).get("sha256") == snapshot["sha256"] and metrics
                and json.dumps(stored, sort_keys=True) == wanted):
            log.info("ensemble: reusing %s from %s", name, directory)
            return load_model(directory), metrics
    except ArtifactError:
        pass
    entry = train_one(name, split, options, directory, quick=quick, dataset_dir=dataset_dir)
    return load_model(directory), entry


def score_tensor(models: dict[str, Any], split: Split, stage: str, users: np.ndarray) -> np.ndarray:
    """(M, B, n_items) normalised scores of each model for the stage's contexts (NaN -> 0 after z-scoring)."""
    contexts = split.contexts(stage, users)
    out = np.empty((len(models), len(users), split.n_items), np.float32)
    for m, model in enumerate(models.values()):
        for start in range(0, len(users), 256):
            raw = np.asarray(model.score_batch(contexts[start : start + 256]), np.float32)
            out[m, start : start + len(raw)] = normalise(raw)
    return out


def evaluate_scores(scores: np.ndarray, split: Split, stage: str, users: np.ndarray) -> dict[str, float]:
    """The protocol's full-ranking metrics (and beyond-accuracy) for a (B, n_items) score matrix."""
    targets = (split.valid_item if stage == "valid" else split.test_item)[users]
    excluded = _excluded(split, stage, users)
    ranks = ranks_full(scores, targets, excluded)
    out = rank_metrics(ranks)
    out.update(tie_metrics(ranks, split.tied(stage)[users], K))  # tied users apart, as for single models
    out.update(beyond_accuracy(top_k(scores, excluded), split.train))
    out["n_users"] = int(len(users))
    return out


def select(norm_valid: np.ndarray, split: Split, users: np.ndarray, *, seed: int, n: int = N_WEIGHT_SAMPLES
           ) -> tuple[np.ndarray, dict[str, Any]]:
    """DR-selected weights on validation, with the DR table and each vector's validation NDCG@10."""
    excluded = _excluded(split, "valid", users).toarray()
    targets = split.valid_item[users]
    popularity = np.bincount(split.train.items, minlength=split.n_items)
    lengths = np.asarray([len(split.train_seqs[u]) for u in users])
    sel = select_weights_dr(norm_valid, targets, excluded, popularity, lengths, n=n, seed=seed)
    per_vector = []
    for w in sel.weights:
        ranks = ranks_full(blend(norm_valid, w), targets, _excluded(split, "valid", users))
        per_vector.append(rank_metrics(ranks)["ndcg@10"])
    ndcgs = np.asarray(per_vector)
    values = np.asarray([e.value for e in sel.estimates])
    corr = float(np.corrcoef(values, ndcgs)[0, 1]) if len(values) > 2 and values.std() > 0 else float("nan")
    best = sel.estimates[sel.best]
    info = {"dr_value": best.value, "dr_stderr": best.stderr, "dr_ips": best.ips, "dr_direct": best.direct,
            "valid_ndcg@10_of_dr_choice": float(ndcgs[sel.best]),
            "valid_ndcg@10_best_of_samples": float(ndcgs.max()),
            "valid_ndcg@10_uniform": float(ndcgs[0]), "dr_vs_valid_ndcg_pearson": corr,
            "n_weight_vectors": int(len(sel.weights)), "propensity_gamma": sel.gamma, "k": sel.k,
            "reward_model_beta": sel.beta}
    return sel.best_weights, info
