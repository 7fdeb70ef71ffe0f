"""Writes for serving: create and activate ensemble weights (hot reload everywhere), mirror artifact manifests."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .models import EnsembleWeights, ModelArtifact

log = logging.getLogger(__name__)


def _validate_weights(weights: Any) -> dict[str, float]:
    if not isinstance(weights, dict) or not weights:
        raise ValidationError({"weights": "a non-empty object of model name -> weight"})
    clean = {}
    for name, value in weights.items():
        try:
            w = float(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError({"weights": f"weight of {name!r} is not a number"}) from exc
        if not w >= 0 or w == float("inf"):
            raise ValidationError({"weights": f"weight of {name!r} must be a finite number >= 0"})
        clean[str(name)] = w
    if sum(clean.values()) <= 0:
        raise ValidationError({"weights": "at least one weight must be positive"})
    return clean


@transaction.atomic
def ensemble_weights_create(*, version: str, weights: dict[str, float], dr_value: float | None = None,
                            dr_stderr: float | None = None, source: str = "dr", notes: str = "",
                            activate: bool = False) -> EnsembleWeights:
    """Store a weights version (optionally activating it)."""
    row = EnsembleWeights.objects.create(version=version, weights=_validate_weights(weights), dr_value=dr_value,
                                         dr_stderr=dr_stderr, source=source, notes=notes)
    if activate:
        ensemble_weights_activate(weights_id=row.id)
        row.refresh_from_db()
    return row


@transaction.atomic
def ensemble_weights_activate(*, weights_id: int) -> EnsembleWeights:
    """Make one row the active weights (deactivating the rest atomically); workers swap after commit."""
    row = EnsembleWeights.objects.select_for_update().get(pk=weights_id)
    _validate_weights(row.weights)
    EnsembleWeights.objects.filter(is_active=True).exclude(pk=row.pk).update(is_active=False)
    row.is_active, row.activated_at = True, timezone.now()
    row.save(update_fields=["is_active", "activated_at", "updated_at"])
    version = row.version
    transaction.on_commit(lambda: _publish(version))
    return row


def _publish(version: str) -> None:
    from . import serving

    serving.publish_weights_version(version)
    log.info("ensemble weights %s activated and published", version)


@transaction.atomic
def model_artifact_sync(*, bundle_dir: Path) -> list[ModelArtifact]:
    """One ModelArtifact row per model/ONNX/retrieval folder of the bundle (its manifest's checksum and metrics)."""
    from ml_core.serving import sha256_file

    bundle_dir = Path(bundle_dir)
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    ensemble = json.loads((bundle_dir / "ensemble.json").read_text())
    version = manifest["version"]
    singles = (ensemble.get("metrics") or {}).get("singles_test", {})
    rows = []
    for folder, tier in (("models", "1,2"), ("onnx", "2")):
        for sub in sorted(p for p in (bundle_dir / folder).glob("*") if p.is_dir()):
            own = sub / "manifest.json"
            name = sub.name if folder == "models" else f"onnx/{sub.name}"
            rows.append(ModelArtifact.objects.update_or_create(name=name, version=version, defaults={
                "sha256": sha256_file(own) if own.exists() else "", "tier": tier, "path": str(sub),
                "metrics": singles.get(sub.name, {})})[0])
    rating = bundle_dir / "rating" / "manifest.json"
    if rating.exists():  # the explicit-rating predictor: numpy only, served by every tier
        rows.append(ModelArtifact.objects.update_or_create(name="rating", version=version, defaults={
            "sha256": sha256_file(rating), "tier": "1,2,3", "path": str(rating.parent),
            "metrics": json.loads(rating.read_text()).get("metrics") or {}})[0])
    rows.append(ModelArtifact.objects.update_or_create(name="bundle", version=version, defaults={
        "sha256": sha256_file(bundle_dir / "manifest.json"), "tier": "1,2,3", "path": str(bundle_dir),
        "metrics": (ensemble.get("metrics") or {}).get("test", {})})[0])
    return rows


@transaction.atomic
def serving_bundle_register(*, bundle_dir: Path) -> dict[str, Any]:
    """Mirror a freshly built bundle in the database: its weights row (created and activated once) and artifact rows.

    Idempotent: a bundle already registered (its ``bundle`` artifact row exists, as after
    ``build_serving_artifacts``) keeps whatever weights are active now (an admin may have chosen others since);
    artifact rows are updated in place. One transaction, so a crash leaves the bundle unregistered, not half.
    """
    bundle_dir = Path(bundle_dir)
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    ensemble = json.loads((bundle_dir / "ensemble.json").read_text())
    version = manifest["version"]
    weights_version, activated = ensemble["weights_version"], False
    if not ModelArtifact.objects.filter(name="bundle", version=version).exists():
        if EnsembleWeights.objects.filter(version=weights_version).exists():  # two builds in one second
            weights_version = f"{weights_version}.{version}"
        selection = ensemble.get("selection") or {}
        ensemble_weights_create(version=weights_version, weights=ensemble["weights"],
                                dr_value=selection.get("dr_value"), dr_stderr=selection.get("dr_stderr"),
                                source="dr", notes=f"{ensemble.get('dataset', '')}, bundle {version}", activate=True)
        activated = True
    artifacts = model_artifact_sync(bundle_dir=bundle_dir)
    return {"version": version, "weights_version": weights_version, "weights_activated": activated,
            "artifacts": len(artifacts)}
