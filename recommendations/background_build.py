"""The build that follows set-up, in the background: the semantic search index, then the full six-model serving
bundle (KAN ranker included), which the serving workers hot-swap to when it is published.

bin/setup builds only what the first page needs (a quick bundle) and queues one :class:`BackgroundBuild`;
bin/run starts it (``manage.py background_build --start``): a Celery task on its own ``builds`` queue with Redis,
this process otherwise (bin/run runs the command in the background at a lower priority). Progress, step k of n,
is kept in the row, so ``/v1/platform/status``, the admin and the portal's banner read the same state from any
process.
"""

from __future__ import annotations

import io
import logging
import os
import resource
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import BackgroundBuild

log = logging.getLogger(__name__)

Status = BackgroundBuild.Status
SEARCH_STEP = "semantic search index"
BUNDLE_STEP = "selecting weights, writing and publishing the bundle"
BANNER_KEY = "apex:background-build:banner"
BANNER_TTL_S = 5  # the portal reads the row at most this often per process


def build_steps(*, models: list[str], search_index: bool) -> list[str]:
    """The labels a build shows, in order."""
    return [*([SEARCH_STEP] if search_index else []), *(f"training {m}" for m in models), BUNDLE_STEP]


def background_build_queue(*, models: list[str] | None = None, epochs: int = 2,
                           search_index: bool = True) -> BackgroundBuild:
    """Record a build to run once the site starts (bin/setup); an older build still queued is replaced."""
    from ml_core.builds import ENSEMBLE_MODELS

    names = list(models or ENSEMBLE_MODELS)
    with transaction.atomic():
        BackgroundBuild.objects.filter(status=Status.QUEUED).delete()
        return BackgroundBuild.objects.create(
            steps=build_steps(models=names, search_index=search_index),
            config={"models": names, "epochs": int(epochs), "search_index": bool(search_index)})


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _worker_gone(worker: str) -> bool:
    """True when ``host:pid`` names a process on this host that no longer runs (a build cut off by a stop)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's worker: it may well still run
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def background_build_pending() -> BackgroundBuild | None:
    """The newest build still to run: queued, or running in a process on this host that has stopped."""
    row = BackgroundBuild.objects.filter(status__in=[Status.QUEUED, Status.RUNNING]).first()
    if row is None or (row.status == Status.RUNNING and not _worker_gone(row.worker)):
        return None
    return row


def background_build_start() -> tuple[BackgroundBuild | None, str]:
    """Start the pending build, if any: ("queued", enqueued on Celery's ``builds`` queue) with a broker, else run
    it here, now ("ran"). (None, "none") when nothing is pending."""
    row = background_build_pending()
    if row is None:
        return None, "none"
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        from .tasks import run_background_build

        run_background_build.delay(build_id=row.pk)
        return row, "queued"
    return background_build_run(build_id=row.pk), "ran"


def _claim(build_id: int) -> BackgroundBuild | None:
    """Mark the build running in this process, unless another process already runs it."""
    with transaction.atomic():
        row = BackgroundBuild.objects.select_for_update().filter(pk=build_id).first()
        if row is None or row.status in (Status.SUCCEEDED, Status.FAILED):
            return None
        if row.status == Status.RUNNING and not _worker_gone(row.worker):
            return None
        row.status, row.worker, row.started_at = Status.RUNNING, _worker(), timezone.now()
        row.step_index, row.step_label, row.error, row.finished_at = 0, "", "", None
        row.save()
        return row


def _advance(row: BackgroundBuild, label: str, seconds: dict[str, float], started: list[float]) -> None:
    """Close the step running (its seconds) and show ``label`` as step k of n."""
    now = time.perf_counter()
    if row.step_label:
        seconds[row.step_label] = round(now - started[0], 1)
    started[0] = now
    index = row.steps.index(label) + 1 if label in row.steps else row.step_index + 1
    row.step_index, row.step_label = index, label
    row.detail = {**row.detail, "seconds": dict(seconds), "peak_rss_mb": peak_rss_mb()}
    row.save(update_fields=["step_index", "step_label", "detail", "updated_at"])
    log.info("background build %s: step %d of %d, %s", row.pk, index, len(row.steps), label)


def background_build_run(*, build_id: int, build_search_index: Callable[[], None] | None = None
                         ) -> BackgroundBuild:
    """Run one build to the end in this process; returns the row (succeeded, or failed with the error).

    ``build_search_index`` replaces the semantic index step (tests); by default ``manage.py build_search_index``.
    """
    from .bundle_build import serving_bundle_build

    row = _claim(build_id)
    if row is None:
        return BackgroundBuild.objects.get(pk=build_id)
    seconds: dict[str, float] = {}
    started = [time.perf_counter()]
    config = row.config
    try:
        if config.get("search_index", True):
            _advance(row, SEARCH_STEP, seconds, started)
            (build_search_index or _build_search_index)()

        def on_step(stage: str) -> None:
            _advance(row, f"training {stage[4:]}" if stage.startswith("fit:") else BUNDLE_STEP, seconds, started)

        summary = serving_bundle_build(models=config.get("models"), quick=True, epochs=int(config.get("epochs", 2)),
                                       on_step=on_step)
        seconds[row.step_label] = round(time.perf_counter() - started[0], 1)
        row.status, row.finished_at = Status.SUCCEEDED, timezone.now()
        row.detail = {**row.detail, "seconds": seconds, "peak_rss_mb": peak_rss_mb(), "bundle_version": summary["version"],
                      "weights_version": summary["weights_version"], "models": summary["models"],
                      "ndcg@10": round(float(summary["metrics"]["test"]["ndcg@10"]), 4)}
        row.save()
        log.info("background build %s done: bundle %s published", row.pk, summary["version"])
    except Exception as exc:  # noqa: BLE001 - any failure is the build's outcome, shown where its progress was
        log.exception("background build %s failed at %s", row.pk, row.step_label)
        row.status, row.finished_at = Status.FAILED, timezone.now()
        row.error = f"{row.step_label or 'start'}: {exc.__class__.__name__}: {exc}\n\n" + "".join(
            traceback.format_exception(exc)[-6:])
        row.save()
    cache.delete(BANNER_KEY)
    return row


def peak_rss_mb() -> int:
    """This process's peak resident memory so far, in MB (the build's, when it runs in its own process)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _build_search_index() -> None:
    call_command("build_search_index", quiet=True, stdout=io.StringIO())


# ---- reads: the status endpoint, the admin, the banner --------------------------------------------------------
def background_build_state(row: BackgroundBuild | None = None) -> dict[str, Any] | None:
    """The newest build as plain values (None when set-up never queued one)."""
    row = row if row is not None else BackgroundBuild.objects.first()
    if row is None:
        return None
    return {"id": row.pk, "status": row.status, "step": row.step_label or None, "step_index": row.step_index,
            "steps_total": row.steps_total, "steps": row.steps, "queued_at": row.queued_at,
            "started_at": row.started_at, "finished_at": row.finished_at,
            "bundle_version": row.detail.get("bundle_version"), "seconds": row.detail.get("seconds", {}),
            "peak_rss_mb": row.detail.get("peak_rss_mb"),
            "error": row.error.split("\n", 1)[0] if row.error else None}


def background_build_banner() -> dict[str, Any] | None:
    """What the portal's quiet banner says while a build is queued or running (None otherwise), read from the
    database at most every ``BANNER_TTL_S`` seconds per cache."""
    found = cache.get(BANNER_KEY)
    if found is None:
        row = BackgroundBuild.objects.filter(Q(status=Status.QUEUED) | Q(status=Status.RUNNING)).first()
        found = {"active": False} if row is None else {
            "active": True, "status": row.status, "step": row.step_label, "step_index": row.step_index,
            "steps_total": row.steps_total}
        cache.set(BANNER_KEY, found, BANNER_TTL_S)
    return found if found.get("active") else None
