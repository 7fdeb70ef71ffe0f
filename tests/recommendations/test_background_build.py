"""The build after set-up: queued by bin/setup, run after bin/run starts, shown step by step on the status endpoint,
in the admin and as the portal's quiet banner, and hot-swapped into the serving engine when it publishes."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command

from recommendations import background_build as builds
from recommendations import serving as serving_adapter
from recommendations.models import BackgroundBuild
from tests.recommendations.test_build_serving_artifacts import _catalog_from_tiny_data

pytestmark = pytest.mark.django_db

BANNER = "still being built in the background"


@pytest.fixture
def catalog(settings, tmp_path):  # noqa: ANN001, ANN201
    """The tiny catalogue with its ratings, a quick one-model bundle as bin/setup leaves it, served on Tier 1."""
    settings.ML_ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.APEX_SERVING_TIER = "1"
    _catalog_from_tiny_data()
    serving_adapter.reset_engine()
    call_command("build_serving_artifacts", "--quick", "--models", "ease", "--no-onnx", "--log-level", "WARNING")
    yield
    serving_adapter.reset_engine()


def _status(client: Any) -> dict[str, Any]:
    response = client.get("/v1/platform/status")
    assert response.status_code == 200
    return response.json()["background_build"]  # type: ignore[no-any-return]


def _home(client: Any) -> str:
    cache.delete(builds.BANNER_KEY)  # the banner's state is cached for a few seconds per process
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_setup_queues_the_full_six_model_build_with_the_kan_ranker() -> None:
    call_command("background_build", "--queue")
    row = BackgroundBuild.objects.get()
    assert row.status == "queued" and "kan" in row.config["models"] and len(row.config["models"]) == 6
    assert row.steps[0] == builds.SEARCH_STEP and "training kan" in row.steps and row.steps[-1] == builds.BUNDLE_STEP
    call_command("background_build", "--queue")  # set-up run again: one build waits, not two
    assert BackgroundBuild.objects.count() == 1


def test_the_build_runs_step_by_step_and_the_engine_hot_swaps_to_its_bundle(catalog, client, monkeypatch) -> None:  # noqa: ANN001
    engine = serving_adapter.get_engine()
    quick = engine.manifest_version
    assert list(engine.weights) == ["ease"]
    assert _status(client) is None and BANNER not in _home(client)  # nothing queued: no build, no banner

    call_command("background_build", "--queue", "--models", "ease,kan", "--epochs", "1")
    queued = _status(client)
    assert queued["status"] == "queued" and queued["step_index"] == 0 and queued["steps_total"] == 4
    assert BANNER in _home(client)

    seen: dict[str, Any] = {}

    def search_index() -> None:  # the first step, seen from the outside while it runs
        seen["status"], seen["home"] = _status(client), _home(client)

    row = builds.background_build_run(build_id=queued["id"], build_search_index=search_index)
    running = seen["status"]
    assert running["status"] == "running" and running["step"] == builds.SEARCH_STEP
    assert (running["step_index"], running["steps_total"]) == (1, 4) and running["started_at"]
    assert BANNER in seen["home"] and "step 1 of 4" in seen["home"]

    assert row.status == "succeeded", row.error
    done = _status(client)
    assert done["status"] == "succeeded" and done["step_index"] == 4 and done["finished_at"]
    assert set(done["seconds"]) == set(row.steps) and done["bundle_version"] != quick and done["error"] is None
    assert done["peak_rss_mb"] > 0

    # the build ran in another process in the embedded default: its published version never reaches this one,
    # so the engine finds the new bundle on disk while (and once after) the build is active
    cache.delete(serving_adapter.BUNDLE_KEY)
    serving_adapter._disk_seen.update(at=0.0, watching=True)
    swapped = serving_adapter.get_engine()
    assert swapped is engine and engine.manifest_version == done["bundle_version"]
    assert set(engine.weights) == {"ease", "kan"}  # the KAN ranker serves now, with the build's weights
    assert BANNER not in _home(client)


def test_a_failed_build_is_reported_and_the_banner_goes(catalog, client) -> None:  # noqa: ANN001
    row = builds.background_build_queue(models=["ease"], epochs=1)

    def broken() -> None:
        raise RuntimeError("index exploded")

    failed = builds.background_build_run(build_id=row.pk, build_search_index=broken)
    assert failed.status == "failed" and failed.finished_at is not None
    assert failed.error.startswith(f"{builds.SEARCH_STEP}: RuntimeError: index exploded")
    status = _status(client)
    assert status["status"] == "failed" and status["error"] == f"{builds.SEARCH_STEP}: RuntimeError: index exploded"
    assert BANNER not in _home(client)
    with pytest.raises(CommandError, match="index exploded"):  # `--run` on it says so, and runs nothing again
        call_command("background_build", "--run", str(row.pk))


def test_start_runs_the_pending_build_once_and_resumes_one_whose_process_stopped(catalog, settings, monkeypatch) -> None:  # noqa: ANN001
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the embedded default: bin/run's process runs it
    monkeypatch.setattr(builds, "_build_search_index", lambda: None)
    assert builds.background_build_start() == (None, "none")
    row = builds.background_build_queue(models=["ease"], epochs=1, search_index=False)
    BackgroundBuild.objects.filter(pk=row.pk).update(status="running", worker=f"{socket.gethostname()}:{os.getpid()}")
    assert builds.background_build_pending() is None  # running in a live process: leave it alone
    BackgroundBuild.objects.filter(pk=row.pk).update(worker=f"{socket.gethostname()}:999999999")
    pending = builds.background_build_pending()
    assert pending is not None and pending.pk == row.pk  # that process is gone: bin/run starts it again
    found, how = builds.background_build_start()
    assert found is not None and how == "ran" and found.status == "succeeded" and found.steps == ["training ease", builds.BUNDLE_STEP]
    assert builds.background_build_start() == (None, "none")


def test_with_a_broker_the_build_goes_to_its_own_celery_queue(catalog, settings, monkeypatch) -> None:  # noqa: ANN001
    from recommendations import tasks

    sent = []
    monkeypatch.setattr(tasks.run_background_build, "delay", lambda **kw: sent.append(kw))
    settings.CELERY_TASK_ALWAYS_EAGER = False
    row = builds.background_build_queue(models=["ease"], epochs=1)
    assert builds.background_build_start() == (row, "queued") and sent == [{"build_id": row.pk}]
    assert tasks.run_background_build.queue == "builds"


def test_the_admin_lists_the_build_with_its_progress(admin_client) -> None:  # noqa: ANN001
    row = builds.background_build_queue(models=["ease"], epochs=1)
    BackgroundBuild.objects.filter(pk=row.pk).update(status="running", step_index=2, step_label="training ease")
    page = admin_client.get("/admin/recommendations/backgroundbuild/").content.decode()
    assert "step 2 of 3: training ease" in page
