"""Build a serving bundle: fit (or reuse) the ensemble models, select DR weights, build indexes, calibrate gating."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .blending import ENSEMBLE_MODELS, evaluate_scores, fit_or_load, registered, score_tensor, select
from .data import Interactions
from .interface import FitOptions
from .ranking import blend

log = logging.getLogger(__name__)

GATING_QUANTILE = 0.95  # the calibrated threshold sends about 5% of requests to the content fallback
MAX_SELECTION_USERS = 1000


def metadata_from_interactions(data: Interactions) -> dict[int, dict[str, Any]]:
    """Titles, years and genres the dataset files carry, keyed by raw movie id."""
    out = {}
    for i, raw in enumerate(data.item_vocab.raw_ids.tolist()):
        out[int(raw)] = {"title": data.item_titles.get(i, f"movie {raw}"), "year": data.item_years.get(i),
                         "genres": data.item_genres.get(i, [])}
    return out


def build_serving(data: Interactions, metadata: dict[int, dict[str, Any]] | None, out: Path, *,
                  names: Sequence[str] = ENSEMBLE_MODELS, model_root: Path | None = None, quick: bool = False,
                  seed: int = 42, onnx: bool = True, max_epochs: int | None = None,
                  tuned_root: Path | None = None, temperature: float = 0.05, eval_users: int | None = None,
                  on_step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train/reuse the models on the split's train part, pick weights by DR on validation, write the bundle.

    Each model is fitted in the configuration stored for the dataset under ``tuned_root`` (default
    ``model_root``: ``<tuned_root>/tuned/<model>.json``, see :mod:`ml_core.tuning`), or its defaults, for at
    most ``max_epochs`` epochs when given (2 with ``quick``). The bundle is written to a sibling folder and
    swapped in with renames, so a serving engine never reads a half-written bundle. Returns the ensemble summary (weights, DR, test metrics, version).
    ``eval_users``: early stopping, weight selection and the test metrics use a seeded sample of that many users
    (as ``train --eval-users``; the summary's ``n_eval_users`` says how many).
    ``on_step`` is told each stage as it starts: ``fit:<model>`` for each model, then ``bundle`` (weight selection,
    the rating predictor, indexes, exports and the swap).
    """
    from .evaluation import leave_one_out
    from .serving_artifacts import build_bundle, write_bundle_manifest

    start = time.perf_counter()
    out = Path(out)
    metadata = metadata or metadata_from_interactions(data)
    split = leave_one_out(data, seed=seed, eval_users=eval_users)
    names = registered(names)
    # budgets are epochs, never seconds: the bundle does not depend on how busy the machine was
    max_epochs = max_epochs if max_epochs is not None else (2 if quick else None)
    options = FitOptions(seed=seed, progress=False, max_epochs=max_epochs)
    root = model_root or out.parent / f"models-{data.name}"
    step = on_step or (lambda _stage: None)
    models = {}
    for n in names:
        step(f"fit:{n}")
        models[n] = fit_or_load(n, split, options, root / n, quick=quick, dataset_dir=tuned_root or root)[0]
    step("bundle")
    rng = np.random.default_rng(seed)
    vusers, tusers = split.eval_users("valid"), split.eval_users("test")
    if len(vusers) > MAX_SELECTION_USERS:
        vusers = np.sort(rng.choice(vusers, MAX_SELECTION_USERS, replace=False))
        tusers = np.sort(rng.choice(tusers, min(MAX_SELECTION_USERS, len(tusers)), replace=False))
    norm_valid = score_tensor(models, split, "valid", vusers)
    weights, info = select(norm_valid, split, vusers, seed=seed)
    del norm_valid
    norm_test = score_tensor(models, split, "test", tusers)
    metrics: dict[str, dict[str, Any]] = {"test": evaluate_scores(blend(norm_test, weights), split, "test", tusers),
               "singles_test": {n: evaluate_scores(norm_test[m], split, "test", tusers)
                                for m, n in enumerate(models)}}
    del norm_test
    rating, rating_metrics = _fit_rating(data, seed)
    if rating_metrics is not None:
        metrics["rating"] = {name: row["rmse"] for name, row in rating_metrics["test"].items()}
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    ensemble = {"models": list(models), "weights": dict(zip(models, weights.astype(float).round(6).tolist(), strict=False)),
                "weights_version": f"dr-{stamp}", "selection": info, "metrics": metrics,
                "temperature": temperature, "gating_threshold": None, "dataset": data.name,
                "n_eval_users": int(len(tusers)), "eval_users_sampled": split.eval_sample is not None}
    tmp = out.parent / f".{out.name}.building"
    shutil.rmtree(tmp, ignore_errors=True)
    build_bundle(tmp, item_raw_ids=data.item_vocab.to_json(), interactions_items=split.train.items,
                 metadata=metadata, models=models, ensemble=ensemble, data_snapshot=split.train.snapshot(),
                 onnx=onnx, matrix=split.train.matrix(), model_dirs={n: root / n for n in models},
                 rating=rating, rating_metrics=rating_metrics)
    ensemble["gating_threshold"] = calibrate_gating(tmp, split, vusers[:200])
    (tmp / "ensemble.json").write_text(json.dumps({**json.loads((tmp / "ensemble.json").read_text()),
                                                   "gating_threshold": ensemble["gating_threshold"]},
                                                  indent=2, sort_keys=True))
    manifest = write_bundle_manifest(tmp, models=list(models), data_snapshot=split.train.snapshot())
    _swap_in(tmp, out)
    ensemble.update(version=manifest["version"], seconds=round(time.perf_counter() - start, 1),
                    model_dirs={n: str(root / n) for n in models})
    log.info("serving bundle %s written to %s in %.0f s; test NDCG@10 %.4f", manifest["version"], out,
             ensemble["seconds"], metrics["test"]["ndcg@10"])
    return ensemble


def _fit_rating(data: Interactions, seed: int) -> tuple[Any, dict[str, Any] | None]:
    """The explicit-rating predictor on the split's train rows and its test RMSE/MAE; (None, None) without ratings."""
    from .rating import fit_rating_predictor

    if not data.has_ratings:  # implicit events only: every "rating" is 1, nothing to predict
        log.warning("no rating predictor in this bundle: %s has no rating values", data.name)
        return None, None
    try:
        rating, metrics = fit_rating_predictor(data, seed=seed)
    except ValueError as exc:
        log.warning("no rating predictor in this bundle: %s", exc)
        return None, None
    test = metrics["test"]
    log.info("rating predictor: test RMSE %.4f (baseline %.4f, global mean %.4f)", test["model"]["rmse"],
             test["baseline"]["rmse"], test["global_mean"]["rmse"])
    return rating, metrics


def calibrate_gating(directory: Path, split: Any, users: np.ndarray, quantile: float = GATING_QUANTILE) -> float:
    """The disagreement quantile over served lists for validation histories (Tier 1 semantics)."""
    from .serving import Tier, load_engine

    engine = load_engine(directory, Tier.TORCH)
    if not engine.weights:
        return float("inf")
    movie_ids = np.asarray(engine.movie_ids)
    values = []
    for u in users.tolist():
        hist = split.train_seqs[u]
        if not len(hist):
            continue
        result = engine.recommend_user(movie_ids[hist].tolist(), times=split.train_times[u].tolist(),
                                       temperature=0.0)
        if result.disagreement is not None:
            values.append(result.disagreement)
    threshold = float(np.quantile(values, quantile)) if values else float("inf")
    log.info("gating threshold %.4f (q%.2f of %d validation lists)", threshold, quantile, len(values))
    return threshold


def _swap_in(tmp: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
