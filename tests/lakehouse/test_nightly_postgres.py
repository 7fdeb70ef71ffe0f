"""Issue #9: `manage.py run_lakehouse` against a live PostgreSQL with real event rows (export -> bronze -> gold)."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from lakehouse import tables as T
from recommendations import nightly
from recommendations.models import PipelineRun
from tests.factories import MovieFactory, UserFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
MOVIES = (1, 2, 3, 6)  # in the first 300 movies of ml-latest-small (the slice)


@pytest.fixture
def lake(settings, tmp_path: Path) -> Path:  # noqa: ANN001
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL pointing at PostgreSQL")
    settings.LAKEHOUSE_ROOT = tmp_path / "lake"
    settings.LAKEHOUSE_EVENTS_DIR = tmp_path / "events"
    settings.EVENTS_EXPORT_LAG_S = 0
    return tmp_path


@pytest.fixture
def site_events(db):  # noqa: ANN001, ANN201
    """Two members' events as the site writes them: a rating, a click, a watch and a logged impression."""
    from events.models import Event

    movies = {m: MovieFactory(id=m) for m in MOVIES}
    ann, ben = UserFactory(), UserFactory()
    when = timezone.now() - timedelta(hours=2)
    rows = [
        (ann, 1, "rating", 4.5, None),
        (ann, 2, "click", None, None),
        (ben, 3, "watch", 0.9, None),
        (ben, 6, "impression", None, 0.25),
    ]
    return [
        Event.objects.create(
            user=user,
            movie=movies[m],
            kind=kind,
            value=value,
            propensity=propensity,
            idempotency_key=f"k{i}",
            occurred_at=when + timedelta(minutes=i),
        )
        for i, (user, m, kind, value, propensity) in enumerate(rows)
    ]


def _run(steps: str) -> str:
    out = StringIO()
    call_command("run_lakehouse", "--steps", steps, stdout=out)
    return out.getvalue()


def test_the_export_step_reads_postgres_events_once(lake: Path, site_events) -> None:  # noqa: ANN001
    from events.models import Event

    assert "export   succeeded           4 rows" in _run("export")
    files = list((lake / "events").glob("events-*.jsonl"))
    assert len(files) == 1
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert [r[T.EVENT_ID] for r in rows] == [str(e.pk) for e in site_events]
    first = site_events[0]
    assert rows[0] == {
        T.EVENT_ID: str(first.pk),
        T.USER_ID: first.user_id,
        T.MOVIE_ID: 1,
        T.KIND: "rating",
        T.VALUE: 4.5,
        T.CREATED_AT: first.occurred_at.isoformat(),
        T.PROPENSITY: None,
    }
    assert rows[3][T.PROPENSITY] == 0.25 and rows[0][T.CREATED_AT].endswith("+00:00")
    assert "export   succeeded           0 rows" in _run("export")  # the watermark moved past them
    Event.objects.create(
        user=first.user, movie=first.movie, kind="click", idempotency_key="late", occurred_at=timezone.now()
    )
    assert "export   succeeded           1 rows" in _run("export")
    assert list(PipelineRun.objects.filter(step="export").values_list("rows", flat=True).order_by("started_at")) == [
        4,
        0,
        1,
    ]


@pytest.mark.spark
def test_postgres_events_reach_gold_through_the_nightly_command(
    lake: Path,
    site_events,
    settings,
    spark,  # noqa: ANN001
    ml_small_slice: Path,
    monkeypatch,
) -> None:
    from lakehouse.pipeline import run_pipeline
    from ml_core.gold import interactions_from_gold

    monkeypatch.setenv("LAKEHOUSE_TMDB_DIR", str(lake / "no-tmdb"))
    monkeypatch.setenv("LAKEHOUSE_REFERENCE_DATASET", str(ml_small_slice))
    settings.LAKEHOUSE_DATASETS = [str(ml_small_slice)]
    settings.APEX_DATASET = ml_small_slice.name  # the site's movie ids are this dataset's
    output = _run("export,bronze,silver")
    assert [line.split()[:2] for line in output.splitlines()] == [
        ["export", "succeeded"],
        ["bronze", "succeeded"],
        ["silver", "succeeded"],
    ]
    bronze = PipelineRun.objects.get(step="bronze").detail["tables"]
    assert bronze[T.BRONZE_EVENTS]["rows"] == 4
    # the gold step of the command stops Spark (a worker must not keep an idle JVM); the shared test session
    # must live on, so gold runs here on the same config the command used
    run_pipeline(nightly.lakehouse_config(), spark=spark, layers=["gold"])
    gold = interactions_from_gold(settings.LAKEHOUSE_ROOT, ml_small_slice.name)
    site: dict[int, set[int]] = {}
    for u, i in zip(gold.users.tolist(), gold.items.tolist(), strict=True):
        raw_user = int(gold.user_vocab.raw_ids[u])
        if raw_user >= T.EVENT_USER_OFFSET:  # site members arrive with their ids offset
            site.setdefault(raw_user - T.EVENT_USER_OFFSET, set()).add(int(gold.item_vocab.raw_ids[i]))
    ann, ben = site_events[0].user_id, site_events[2].user_id
    assert site == {ann: {1, 2}, ben: {3}}  # rating, click and watch train; the impression does not
    silver = PipelineRun.objects.get(step="silver").detail["tables"]
    assert len(gold) == silver[T.SILVER_INTERACTIONS]["rows"]  # MovieLens ratings and site events together


@pytest.mark.spark
def test_the_whole_nightly_command_runs_in_its_own_process(
    lake: Path,
    site_events,
    ml_small_slice: Path,
    settings,
    client,  # noqa: ANN001
) -> None:
    """`manage.py run_lakehouse` as cron/Celery runs it: its own JVM, every step, the test's PostgreSQL;
    the serving bundle it rebuilds from gold is the one a loaded engine serves after the next night's reload."""
    import os
    import subprocess
    import sys

    from django.core.cache import cache
    from django.db import connection as conn

    from ml_core.data import REPO_ROOT
    from recommendations import serving as serving_adapter

    db = conn.settings_dict
    login = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{login}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "LAKEHOUSE_ROOT": str(lake / "lake"),
        "LAKEHOUSE_EVENTS_DIR": str(lake / "events"),
        "LAKEHOUSE_DATASETS": str(ml_small_slice),
        "LAKEHOUSE_REFERENCE_DATASET": str(ml_small_slice),
        "LAKEHOUSE_TMDB_DIR": str(lake / "no-tmdb"),
        "APEX_DATASET": ml_small_slice.name,
        "NIGHTLY_DATASET": ml_small_slice.name,
        "NIGHTLY_MODELS": "popularity,ease",
        "NIGHTLY_SERVING_MODELS": "popularity,ease",
        "NIGHTLY_MAX_EPOCHS": "1",
        "ML_ARTIFACTS_DIR": str(lake / "artifacts"),
        "EVENTS_EXPORT_LAG_S": "0",
        "SPARK_MASTER": "local[2]",
        "SPARK_SHUFFLE_PARTITIONS": "2",
        "SPARK_FAST_JVM": "1",
    }

    def command(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", "run_lakehouse", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    command()
    runs = {r.step: r for r in PipelineRun.objects.all()}
    assert {step: runs[step].status for step in nightly.STEPS} == dict.fromkeys(nightly.STEPS, "succeeded")
    assert runs["export"].rows == 4 and runs["retrain"].rows > 0
    assert (lake / "artifacts" / f"{ml_small_slice.name}-gold" / "ease" / "manifest.json").exists()
    # the reload version reached the shared cache (Redis in CI), where every serving process reads it
    if os.environ.get("REDIS_URL"):
        assert cache.get(serving_adapter.BUNDLE_KEY) == runs["reload"].detail["version"]
    # the retrain step rebuilt the serving bundle from gold; the reload step registered and published it
    from ml_core.serving_artifacts import verify_bundle

    bundle = runs["retrain"].detail["bundle"]
    assert bundle["models"] == ["popularity", "ease"] and bundle["n_interactions"] == runs["retrain"].rows
    assert (
        runs["reload"].detail["version"]
        == bundle["version"]
        == verify_bundle(lake / "artifacts" / "serving")["version"]
    )
    settings.ML_ARTIFACTS_DIR = lake / "artifacts"
    settings.APEX_SERVING_TIER = "3"
    serving_adapter.reset_engine()
    try:
        served = serving_adapter.get_engine()
        assert served.manifest_version == bundle["version"]
        assert client.get("/v1/platform/status").json()["artifacts"]["serving"]["version"] == bundle["version"]
        command("--steps", "retrain,reload")  # the next night, in another process again
        newer = PipelineRun.objects.filter(step="reload").order_by("-started_at")[0].detail["version"]
        assert newer != bundle["version"]
        assert client.get("/v1/platform/status").json()["artifacts"]["serving"]["version"] == newer
        if os.environ.get("REDIS_URL"):  # the published version reaches this process through Redis
            assert serving_adapter.get_engine() is served and served.manifest_version == newer
    finally:
        serving_adapter.reset_engine()
