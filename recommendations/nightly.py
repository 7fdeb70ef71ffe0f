"""The nightly job: export new events to bronze, rebuild the lakehouse, retrain from gold, ask serving to reload, then
re-select the blend weights by DR on the last week of served lists (``weights_from_logs.py``).

Every step is idempotent, so a failed night is fixed by running it again: the export
advances a watermark kept in the export file names (written atomically), bronze skips
files it already holds, silver/gold are rebuilt, retraining reuses models already trained on the same gold
data, the serving bundle is swapped in whole, and reload registers a bundle once and publishes its version.
Each step leaves a :class:`PipelineRun` row (visible in admin) with its rows, timing and error.
"""

from __future__ import annotations

import json
import logging
import os
import re
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.utils import timezone as dj_timezone

from .models import PipelineRun

if TYPE_CHECKING:
    from lakehouse.config import LakehouseConfig

log = logging.getLogger(__name__)

STEPS = ("export", "bronze", "silver", "gold", "retrain", "reload", "weights")
EXPORT_NAME = re.compile(r"^events-(\d{8}T\d{12}Z)-(\d{8}T\d{12}Z)\.jsonl$")
STAMP = "%Y%m%dT%H%M%S%fZ"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ExportResult:
    """One export: the file written (None when no new events), its row count and the covered window."""

    path: Path | None
    rows: int
    since: datetime
    until: datetime


def export_watermark(*, directory: Path) -> datetime:
    """End of the newest export window found in the folder (the epoch when there is none)."""
    ends = [m.group(2) for p in directory.glob("events-*.jsonl") if (m := EXPORT_NAME.match(p.name))]
    return max((datetime.strptime(e, STAMP).replace(tzinfo=UTC) for e in ends), default=EPOCH)


def _event_row(event: Any) -> dict[str, Any]:
    """One event in the bronze export schema (lakehouse.tables.EVENT_EXPORT_SCHEMA)."""
    return {
        "event_id": str(event.pk),
        "user_id": event.user_id,
        "movie_id": event.movie_id,
        "kind": event.kind,
        "value": event.value,
        "created_at": event.occurred_at.astimezone(UTC).isoformat(),
        "propensity": event.propensity,
    }


def events_export(*, directory: Path | None = None, now: datetime | None = None) -> ExportResult:
    """Write events received after the watermark (and before now minus the lag) to one JSON-lines file."""
    directory = Path(directory or settings.LAKEHOUSE_EVENTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    since = export_watermark(directory=directory)
    until = (now or dj_timezone.now()) - timedelta(seconds=settings.EVENTS_EXPORT_LAG_S)
    try:
        event_model = apps.get_model("events", "Event")
    except LookupError:
        log.warning("events app has no Event model: nothing to export")
        return ExportResult(None, 0, since, until)
    events = (
        event_model.objects.filter(created_at__gt=since, created_at__lte=until)
        .order_by("created_at", "pk")
        .only("pk", "user_id", "movie_id", "kind", "value", "occurred_at", "propensity")
    )
    name = f"events-{since.strftime(STAMP)}-{until.strftime(STAMP)}.jsonl"
    tmp = directory / f".{name}.{uuid.uuid4().hex}.tmp"
    rows = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for event in events.iterator(chunk_size=2000):
            fh.write(json.dumps(_event_row(event)) + "\n")
            rows += 1
    if rows == 0:
        tmp.unlink()
        return ExportResult(None, 0, since, until)
    os.replace(tmp, directory / name)  # atomic: the watermark moves only with a complete file
    log.info("exported %d events to %s", rows, directory / name)
    return ExportResult(directory / name, rows, since, until)


def lakehouse_config() -> LakehouseConfig:
    """The lakehouse inputs and root from Django settings (same defaults as ``python -m lakehouse``)."""
    from dataclasses import replace

    from lakehouse.config import LakehouseConfig

    return replace(
        LakehouseConfig.from_env(),
        root=Path(settings.LAKEHOUSE_ROOT),
        events_dir=Path(settings.LAKEHOUSE_EVENTS_DIR),
        datasets=tuple(settings.LAKEHOUSE_DATASETS),
        events_dataset=settings.APEX_DATASET,
    )


def lakehouse_build(*, layers: Sequence[str], stop_spark: bool = False) -> dict[str, Any]:
    """Run lakehouse layers on local Spark (or SPARK_MASTER); per-table rows and seconds.

    ``stop_spark`` ends the session afterwards, so a Celery worker does not keep an idle JVM all day.
    """
    from lakehouse.pipeline import run_pipeline
    from lakehouse.spark import spark_session

    spark = spark_session()
    try:
        result = run_pipeline(lakehouse_config(), spark=spark, layers=layers)
    finally:
        if stop_spark:
            spark.stop()
    return {
        "rows": sum(s.rows for s in result.steps),
        "tables": {s.table: {"rows": s.rows, "seconds": round(s.seconds, 2), "note": s.note} for s in result.steps},
    }


def models_retrain_from_gold(*, dataset: str | None = None, models: str | None = None) -> dict[str, Any]:
    """Retrain the nightly models on the gold tables (checksummed artifacts and offline metrics, ml_core.gold),
    then rebuild the serving bundle from the same gold data (:func:`serving_bundle_from_gold`)."""
    from ml_core.builds import train_from_gold

    dataset = dataset or settings.NIGHTLY_DATASET
    results = train_from_gold(
        settings.LAKEHOUSE_ROOT, dataset, models=models or settings.NIGHTLY_MODELS, out=settings.ML_ARTIFACTS_DIR,
        eval_users=settings.NIGHTLY_EVAL_USERS,
    )
    bundle = serving_bundle_from_gold(dataset=dataset)
    return {
        "rows": bundle["n_interactions"],
        "models": {
            name: {"test": entry["test"], "train_seconds": entry["train_seconds"]} for name, entry in results.items()
        },
        "bundle": bundle,
    }


def serving_bundle_from_gold(*, dataset: str | None = None, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Build the serving bundle (``serving.serving_dir()``) from the gold interactions and the catalog's metadata.

    Models come from ``NIGHTLY_SERVING_MODELS``, each trained for at most ``NIGHTLY_MAX_EPOCHS`` epochs in the
    configuration ``train --tune --dataset <dataset>`` stored (``ML_ARTIFACTS_DIR/<dataset>/tuned/``, else its
    defaults) under
    ``ML_ARTIFACTS_DIR/<dataset>-gold/`` (a model that ``train_from_gold`` just trained on the same data is
    reused, as is everything a failed run already trained). Early stopping, weight selection and the test metrics
    use at most ``NIGHTLY_EVAL_USERS`` seeded users (every user of a smaller set). The bundle is swapped in whole, so serving reads
    either the old one or the new one; its weights and artifact rows are stored by the reload step.
    """
    from ml_core.builds import build_serving, interactions_from_gold_snapshot, metadata_from_interactions

    from . import serving
    from .serving_selectors import serving_metadata_for

    dataset = dataset or settings.NIGHTLY_DATASET
    data, gold_versions = interactions_from_gold_snapshot(settings.LAKEHOUSE_ROOT, dataset)
    metadata = serving_metadata_for(movie_ids=data.item_vocab.raw_ids.tolist(), own=metadata_from_interactions(data))
    summary = build_serving(
        data,
        metadata,
        serving.serving_dir(),
        names=list(names or settings.NIGHTLY_SERVING_MODELS),
        model_root=Path(settings.ML_ARTIFACTS_DIR) / f"{dataset}-gold",
        quick=True,
        max_epochs=settings.NIGHTLY_MAX_EPOCHS,
        tuned_root=Path(settings.ML_ARTIFACTS_DIR) / dataset,
        eval_users=settings.NIGHTLY_EVAL_USERS,
    )
    return {
        "version": summary["version"],
        "dataset": dataset,
        "gold_versions": gold_versions,
        "n_interactions": len(data),
        "models": summary["models"],
        "weights": summary["weights"],
        "weights_version": summary["weights_version"],
        "test": summary["metrics"]["test"],
        "seconds": summary["seconds"],
    }


def serving_reload_request(*, reason: str) -> str:
    """Publish the bundle's manifest version as the artifacts reload version (``serving.BUNDLE_KEY``, the key
    ``POST /v1/artifacts/reload`` also sets): each serving process sees it on its next request and loads that
    bundle when it holds another. Without a bundle on disk a fresh token is published (every process re-checks)."""
    from ml_core.serving import ArtifactError, read_manifest

    from . import serving

    try:
        version = str(read_manifest(serving.serving_dir())["version"])
    except ArtifactError as exc:
        version = f"{dj_timezone.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        log.warning("no serving bundle to reload (%s): publishing %s", exc, version)
    serving.publish_bundle_version(version)
    log.info("serving reload requested (%s): %s", reason, version)
    return version


def serving_reload(*, reason: str) -> dict[str, Any]:
    """The reload step: store the bundle's weights and artifact rows (once per bundle), then publish its version."""
    from . import serving
    from .serving_services import serving_bundle_register

    bundle = None
    if (serving.serving_dir() / "manifest.json").exists():
        bundle = serving_bundle_register(bundle_dir=serving.serving_dir())
    return {"version": serving_reload_request(reason=reason), "bundle": bundle}


def _record(run_id: uuid.UUID, step: str, work: Callable[[], dict[str, Any]]) -> PipelineRun:
    row = PipelineRun.objects.create(run_id=run_id, step=step, started_at=dj_timezone.now())
    try:
        detail = work()
    except Exception as exc:
        row.status, row.error = PipelineRun.Status.FAILED, "".join(traceback.format_exception(exc))[-8000:]
        row.finished_at = dj_timezone.now()
        row.save(update_fields=["status", "error", "finished_at", "updated_at"])
        raise
    row.status, row.rows, row.finished_at = PipelineRun.Status.SUCCEEDED, int(detail.pop("rows", 0)), dj_timezone.now()
    row.detail = json.loads(json.dumps(detail, default=str))
    row.save(update_fields=["status", "rows", "detail", "finished_at", "updated_at"])
    return row


def _weights_from_logs() -> dict[str, Any]:
    """Re-select the blend weights by DR on the last window of served lists (when there are enough)."""
    from .weights_from_logs import ensemble_weights_from_logs

    return ensemble_weights_from_logs()


def nightly_run(*, steps: Sequence[str] = STEPS) -> list[PipelineRun]:
    """Run the steps in order, one PipelineRun row each; the first failure is recorded and re-raised."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}: expected some of {', '.join(STEPS)}")
    run_id, done = uuid.uuid4(), []

    def export() -> dict[str, Any]:
        result = events_export()
        return {"rows": result.rows, "file": str(result.path or ""), "since": result.since, "until": result.until}

    work: dict[str, Callable[[], dict[str, Any]]] = {
        "export": export,
        "bronze": lambda: lakehouse_build(layers=["bronze"]),
        "silver": lambda: lakehouse_build(layers=["silver"]),
        "gold": lambda: lakehouse_build(layers=["gold"], stop_spark=True),
        "retrain": models_retrain_from_gold,
        "reload": lambda: serving_reload(reason=f"nightly run {run_id}"),
        "weights": _weights_from_logs,
    }
    for step in steps:
        done.append(_record(run_id, step, work[step]))
    return done
