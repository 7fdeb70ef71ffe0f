"""Reads for serving: the active ensemble weights, artifact rows, offline metrics, bundle health."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from .models import EnsembleWeights, ModelArtifact


def ensemble_weights_active() -> EnsembleWeights | None:
    """The one active weights row, or None before any was created."""
    return EnsembleWeights.objects.filter(is_active=True).first()


def model_artifact_list(*, version: str | None = None) -> QuerySet[ModelArtifact]:
    rows = ModelArtifact.objects.all()
    return rows.filter(version=version) if version else rows


def offline_metrics_latest() -> dict[str, Any] | None:
    """The newest model-card metrics: every ``metrics.json`` the train command wrote, plus the bundle's ensemble."""
    root = Path(settings.ML_ARTIFACTS_DIR)
    found: dict[str, Any] = {}
    for path in sorted(root.glob("*/metrics.json")):
        try:
            run = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found[run.get("dataset", path.parent.name)] = {
            "updated_at": run.get("updated_at"),
            "models": {name: {"test": entry.get("test"), "valid": entry.get("valid"),
                              "train_seconds": entry.get("train_seconds")}
                       for name, entry in run.get("models", {}).items()}}
    ensemble_path = root / "serving" / "ensemble.json"
    if ensemble_path.exists():
        ensemble = json.loads(ensemble_path.read_text())
        found.setdefault(ensemble.get("dataset", "serving"), {"models": {}})["ensemble"] = {
            "weights": ensemble.get("weights"), "weights_version": ensemble.get("weights_version"),
            "selection": ensemble.get("selection"), "metrics": ensemble.get("metrics")}
    return _json_safe(found) or None


def _json_safe(value: Any) -> Any:
    """NaN and infinities (a metric of an empty split, a degenerate predictor) as null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def artifacts_health() -> dict[str, Any]:
    """SHA-256 of every bundle file against the manifest, and of every model folder's own manifest."""
    from ml_core.serving import ArtifactError, verify_bundle

    directory = Path(settings.ML_ARTIFACTS_DIR) / "serving"
    try:
        report = verify_bundle(directory)
    except ArtifactError as exc:
        return {"ok": False, "error": str(exc), "mismatches": [], "checked": 0}
    report["path"] = str(directory)
    return report


def serving_metadata_for(*, movie_ids: Any, own: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Movie metadata for a bundle trained on ``movie_ids``: the catalog's (every catalog movie, so content
    retrieval also covers catalogue-only ones) over the dataset's ``own`` titles/genres/years, when the catalog
    shares the dataset's id space (it holds 90% of its movies); else the dataset's own metadata alone."""
    from catalog.selectors import movie_metadata_map

    catalog = movie_metadata_map()
    return {**own, **catalog} if catalog_covers(movie_ids=movie_ids, catalog=catalog) else own


def catalog_covers(*, movie_ids: Any, catalog: dict[int, Any]) -> bool:
    """Whether the catalog shares a dataset's id space: it holds at least 90% of the dataset's movies."""
    known = {int(m) for m in movie_ids}
    return bool(catalog) and len(known & set(catalog)) >= 0.9 * len(known)
