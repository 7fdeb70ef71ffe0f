"""What an arm may change, checked when it is saved, and what it changes in a recommendation request.

Each kind has one config shape (``{}`` everywhere serves the defaults, as a control arm usually does):

======================  ==========================================  =============================================
kind                    config                                      the request then
======================  ==========================================  =============================================
``weights``             ``{"weights": {"sasrec": 0.5, "ease": 0.5}}``  blends the ensemble with these weights
``tier``                ``{"tier": "lite"}`` or ``{"tier": "full"}``   ``lite`` scores as Tier 3 does (FAISS + TF-IDF,
                                                                     no ensemble) on any tier; ``full`` the loaded tier
``exploration``         ``{"temperature": 0.5}`` or ``{"epsilon": 0.1}``  draws the slate with that Plackett-Luce
                                                                     temperature, or epsilon-greedily
``rerank``              ``{"mmr_lambda": 0.9}``                        MMR's relevance/diversity trade-off (1: none)
======================  ==========================================  =============================================

A process loads one tier's scorers, so a tier arm chooses between that tier's ensemble and Tier 3's lite scoring;
it cannot ask a CPU worker for Tier 1's GPU models.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError

KINDS = ("weights", "tier", "exploration", "rerank")
TIERS = ("full", "lite")
MAX_TEMPERATURE = 10.0


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _keys(config: dict[str, Any], allowed: set[str], example: str) -> None:
    extra = sorted(set(config) - allowed)
    if extra or len(config) > 1:
        raise ValidationError({"config": f"Unexpected key(s) {', '.join(extra or sorted(config))}; expected {example}."})


def _weights(weights: Any) -> None:
    from ml_core.builds import ENSEMBLE_MODELS  # the ensemble's model names (imported late: a heavy package)

    if not isinstance(weights, dict) or not weights:
        raise ValidationError({"config": 'weights: an object of model -> weight, e.g. {"sasrec": 0.5, "kan": 0.5}.'})
    unknown = sorted(set(weights) - set(ENSEMBLE_MODELS))
    if unknown:
        raise ValidationError({"config": f"Unknown model(s) {', '.join(unknown)}; the ensemble's models are "
                                         f"{', '.join(ENSEMBLE_MODELS)}."})
    bad = sorted(name for name, value in weights.items() if not _number(value) or value < 0)
    if bad:
        raise ValidationError({"config": f"Weights must be non-negative numbers: {', '.join(bad)}."})
    if sum(weights.values()) <= 0:
        raise ValidationError({"config": "At least one weight must be positive."})


def arm_config_validate(*, kind: str, config: Any) -> None:
    """ValidationError (keyed ``config`` or ``kind``) unless ``config`` has the shape ``kind`` takes."""
    if kind not in KINDS:
        raise ValidationError({"kind": f"Unknown kind {kind!r}; expected one of {', '.join(KINDS)}."})
    if not isinstance(config, dict):
        raise ValidationError({"config": "The config is a JSON object ({} serves the defaults)."})
    if not config:
        return
    if kind == "weights":
        _keys(config, {"weights"}, '{"weights": {...}}')
        _weights(config["weights"])
    elif kind == "tier":
        _keys(config, {"tier"}, '{"tier": "lite"} or {"tier": "full"}')
        if config["tier"] not in TIERS:
            raise ValidationError({"config": f"tier is one of {', '.join(TIERS)}, got {config['tier']!r}."})
    elif kind == "exploration":
        _keys(config, {"temperature", "epsilon"}, '{"temperature": 0.5} or {"epsilon": 0.1} (one of them)')
        name, value = next(iter(config.items()))
        high = MAX_TEMPERATURE if name == "temperature" else 1.0
        if not _number(value) or not 0 <= value <= high:
            raise ValidationError({"config": f"{name} is a number from 0 to {high:g}, got {value!r}."})
    else:
        _keys(config, {"mmr_lambda"}, '{"mmr_lambda": 0.9}')
        value = config["mmr_lambda"]
        if not _number(value) or not 0 <= value <= 1:
            raise ValidationError({"config": f"mmr_lambda is a number from 0 (diversity only) to 1 (relevance "
                                             f"only), got {value!r}."})


def arm_overrides(*, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The recommendation request's parameters this arm sets (``ml_core.serving`` keyword arguments)."""
    if not config:
        return {}
    if kind == "weights":
        return {"weights": {str(k): float(v) for k, v in config["weights"].items()}}
    if kind == "tier":
        return {"lite": config["tier"] == "lite"}
    if kind == "exploration":
        return {k: float(v) for k, v in config.items()}
    return {"mmr_lambda": float(config["mmr_lambda"])}
