"""The nightly job's Django side: event export with a watermark, step records, failure then re-run."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from lakehouse import tables as T
from recommendations import nightly
from recommendations.models import PipelineRun
from tests.factories import MovieFactory, UserFactory

pytestmark = pytest.mark.django_db


def _event(user, movie, kind: str = "click", **kw):  # noqa: ANN001, ANN202
    from events.models import Event

    return Event.objects.create(
        user=user,
        movie=movie,
        kind=kind,
        idempotency_key=f"k{Event.objects.count()}",
        occurred_at=timezone.now() - timedelta(hours=1),
        **kw,
    )


def test_export_writes_each_event_once_in_the_bronze_schema(tmp_path: Path, settings) -> None:  # noqa: ANN001
    settings.EVENTS_EXPORT_LAG_S = 0
    user, movie = UserFactory(), MovieFactory(id=1)
    first = _event(user, movie, "rating", value=4.5)
    _event(user, movie, "impression", propensity=0.2)
    exported = nightly.events_export(directory=tmp_path, now=timezone.now())
    assert exported.rows == 2
    rows = [json.loads(line) for line in exported.path.read_text().splitlines()]
    assert set(rows[0]) == set(T.EVENT_EXPORT_COLUMNS)
    assert rows[0] == {
        T.EVENT_ID: str(first.pk),
        T.USER_ID: user.pk,
        T.MOVIE_ID: 1,
        T.KIND: "rating",
        T.VALUE: 4.5,
        T.CREATED_AT: first.occurred_at.isoformat(),
        T.PROPENSITY: None,
    }
    again = nightly.events_export(directory=tmp_path, now=timezone.now())
    assert (again.rows, again.path) == (0, None)
    third = _event(user, movie, "watch", value=0.9)
    newer = nightly.events_export(directory=tmp_path, now=timezone.now())
    assert [json.loads(x)[T.EVENT_ID] for x in newer.path.read_text().splitlines()] == [str(third.pk)]
    assert len(list(tmp_path.glob("events-*.jsonl"))) == 2


def test_a_failed_step_is_recorded_and_a_rerun_succeeds(tmp_path: Path, settings, monkeypatch) -> None:  # noqa: ANN001
    settings.LAKEHOUSE_EVENTS_DIR = tmp_path
    calls = []

    def flaky(*, layers, stop_spark=False):  # noqa: ANN001, ANN202
        calls.append(layers)
        if len(calls) == 1:
            raise RuntimeError("spark went away")
        return {"rows": 42, "tables": {"bronze_events": {"rows": 42}}}

    monkeypatch.setattr(nightly, "lakehouse_build", flaky)
    with pytest.raises(RuntimeError, match="spark went away"):
        nightly.nightly_run(steps=("export", "bronze", "reload"))
    failed = PipelineRun.objects.get(step="bronze")
    assert failed.status == PipelineRun.Status.FAILED and "spark went away" in failed.error
    assert not PipelineRun.objects.filter(step="reload").exists()
    runs = nightly.nightly_run(steps=("export", "bronze", "reload"))
    assert [(r.step, r.status, r.rows) for r in runs] == [
        ("export", "succeeded", 0),
        ("bronze", "succeeded", 42),
        ("reload", "succeeded", 0),
    ]
    assert runs[1].detail == {"tables": {"bronze_events": {"rows": 42}}}


def test_unknown_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown step"):
        nightly.nightly_run(steps=("export", "deploy"))


def test_the_beat_schedule_runs_the_nightly_task(settings) -> None:  # noqa: ANN001
    from recommendations.tasks import run_nightly_pipeline

    entry = settings.CELERY_BEAT_SCHEDULE["nightly-lakehouse"]
    assert entry["task"] == run_nightly_pipeline.name
