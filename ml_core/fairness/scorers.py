"""Which model the fairness report ranks with: the trained ensemble when it was trained on this very split, else a
cheap model fitted here within a stated budget.

Tried in order (``model="auto"``):

1. the ensemble of ``python -m ml_core ensemble`` (``<artifacts>/<dataset>/ensemble/metrics.json``: models and DR
   weights; each model in ``<artifacts>/<dataset>/<model>/``);
2. a serving bundle (``ensemble.json`` and ``models/<model>/``), e.g. ``<artifacts>/serving``;
3. EASE fitted on the split's train part, in the configuration ``train --tune`` stored for the dataset (else its
   defaults, lambda 250): one closed-form solve, O(items^3) time and 3 x items^2 x 8 bytes of memory, so it is
   fitted only up to ``EASE_MAX_ITEMS`` items (10,000 items: about 2.4 GB and a minute on two cores);
4. popularity beyond that.

A trained model is used only when its manifest's data snapshot is this split's train part (same rows, same
vocabularies): a model that saw the held-out events would flatter every group.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation import Split
from ..interface import FitOptions, UserContext
from ..ranking import blend, normalise

log = logging.getLogger(__name__)

EASE_MAX_ITEMS = 10_000
MODEL_CHOICES = ("auto", "ensemble", "ease", "popularity")


class ScorerUnavailable(ValueError):
    """The model asked for cannot be used on this split (unknown, or no ensemble trained on it)."""


class BlendScorer:
    """Z-scored scores of several models blended with fixed weights (the ensemble's ``blend``)."""

    def __init__(self, models: dict[str, Any], weights: np.ndarray) -> None:
        self.models, self.weights = models, np.asarray(weights, np.float32)
        self.single = next(iter(models.values())) if len(models) == 1 else None

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        if self.single is not None:
            return np.asarray(self.single.score_batch(contexts), np.float32)
        parts = np.stack([normalise(np.asarray(m.score_batch(contexts), np.float32)) for m in self.models.values()])
        return blend(parts, self.weights)


def choose_scorer(split: Split, *, model: str = "auto", artifacts_dir: Path | None = None,
                  bundle_dir: Path | None = None, seed: int = 42) -> tuple[BlendScorer, dict[str, Any]]:
    """(scorer, what it is: source, models, weights, note, fit seconds) following the order in the module doc."""
    if model not in MODEL_CHOICES:
        raise ScorerUnavailable(f"unknown model {model!r}; expected one of {', '.join(MODEL_CHOICES)}")
    dataset = split.full.name
    if model in ("auto", "ensemble"):
        places = []
        if artifacts_dir is not None:
            places.append(("ensemble", Path(artifacts_dir) / dataset / "ensemble" / "metrics.json",
                           Path(artifacts_dir) / dataset))
        if bundle_dir is not None:
            places.append(("serving bundle", Path(bundle_dir) / "ensemble.json", Path(bundle_dir) / "models"))
        for source, weights_file, model_root in places:
            found = _trained_blend(split, weights_file, model_root)
            if found is not None:
                scorer, names, weights = found
                return scorer, {"source": source, "models": names, "weights": weights, "path": str(weights_file),
                                "note": f"the {source} trained on this split's train part", "fit_seconds": 0.0}
        if model == "ensemble":
            raise ScorerUnavailable(f"no ensemble trained on this split of {dataset} under {artifacts_dir} or {bundle_dir}"
                             " (run `python -m ml_core ensemble`, or use --model ease)")
        log.info("fairness: no trained ensemble for this split of %s; fitting a cheap model", dataset)
    if model in ("auto", "ease") and split.n_items <= EASE_MAX_ITEMS:
        return _fit("ease", split, artifacts_dir, seed,
                    "no ensemble trained on this split was found, so EASE was fitted on the train part here (closed "
                    "form, one solve)")
    note = (f"popularity: {split.n_items} items exceed EASE's budget of {EASE_MAX_ITEMS}" if model != "popularity"
            else "popularity (asked for)")
    return _fit("popularity", split, artifacts_dir, seed, note)


def _fit(name: str, split: Split, artifacts_dir: Path | None, seed: int, note: str
         ) -> tuple[BlendScorer, dict[str, Any]]:
    from ..registry import MODELS
    from ..tuning import config_dict, load_choice

    cls: Any = MODELS[name]
    tuned = Path(artifacts_dir) / split.full.name / "tuned" if artifacts_dir is not None else None
    config, record = load_choice(tuned, cls, snapshot=split.train.snapshot()["sha256"])
    start = time.perf_counter()
    fitted = cls(config)
    fitted.fit(split.train, FitOptions(seed=seed, progress=False))
    seconds = time.perf_counter() - start
    source = "tuned" if record is not None else "defaults"
    return BlendScorer({name: fitted}, np.ones(1)), {
        "source": name, "models": [name], "weights": {name: 1.0}, "config": config_dict(config),
        "config_source": source, "note": note, "fit_seconds": round(seconds, 2)}


def _trained_blend(split: Split, weights_file: Path, model_root: Path
                   ) -> tuple[BlendScorer, list[str], dict[str, float]] | None:
    """The blend stored at ``weights_file`` when every model with a positive weight was trained on this split."""
    from ..artifacts import ArtifactError, verify_artifact
    from ..registry import load_model

    if not weights_file.exists():
        return None
    try:
        stored = json.loads(weights_file.read_text())
        weights = {str(k): float(v) for k, v in stored["weights"].items() if float(v) > 0}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        log.warning("fairness: %s is unreadable (%s)", weights_file, exc)
        return None
    wanted = split.train.snapshot()["sha256"]
    models = {}
    for name in weights:
        try:
            manifest = verify_artifact(model_root / name)
        except ArtifactError as exc:
            log.info("fairness: %s not usable (%s)", model_root / name, exc)
            return None
        if (manifest.get("data_snapshot") or {}).get("sha256") != wanted:
            log.info("fairness: %s was trained on other data than this split's train part", model_root / name)
            return None
        models[name] = load_model(model_root / name)
    if not models:
        return None
    return BlendScorer(models, np.asarray(list(weights.values()))), list(models), weights
