"""Issue #9: the nightly job's reload version reaches serving processes, which reload a changed bundle in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommendations import nightly
from recommendations import serving as serving_adapter

pytestmark = pytest.mark.django_db


@pytest.fixture
def serving(serve_tiny):  # noqa: ANN001, ANN201
    """A private copy of the tiny bundle (these tests rewrite its manifest), Tier 3 (no models to load)."""
    return serve_tiny("3")


def _rewrite_manifest(directory: Path) -> str:
    """What a new build leaves behind: the same layout under a new manifest version."""
    from ml_core.serving_artifacts import write_bundle_manifest

    old = json.loads((directory / "manifest.json").read_text())
    return write_bundle_manifest(directory, models=old["models"], data_snapshot=old["data_snapshot"])["version"]


def test_the_nightly_reload_step_makes_a_running_engine_load_the_new_bundle(serving: Path) -> None:
    loaded = serving_adapter.get_engine()
    before = loaded.manifest_version
    new_version = _rewrite_manifest(serving)
    assert serving_adapter.get_engine().manifest_version == before  # nothing published: the disk is not re-read
    runs = nightly.nightly_run(steps=("reload",))
    assert runs[0].status == "succeeded"
    assert serving_adapter.get_engine() is loaded and loaded.manifest_version == new_version != before


def test_each_published_version_makes_a_process_check_the_disk_at_most_once(serving: Path, monkeypatch) -> None:  # noqa: ANN001
    loaded = serving_adapter.get_engine()
    checks = []
    original = type(loaded).reload_if_changed

    def counting(self):  # noqa: ANN001, ANN202
        checks.append(self.manifest_version)
        return original(self)

    monkeypatch.setattr(type(loaded), "reload_if_changed", counting)
    assert nightly.serving_reload_request(reason="test") == loaded.manifest_version  # nothing changed on disk
    for _ in range(3):
        serving_adapter.get_engine()
    assert checks == []  # the published version is the one loaded: no disk check at all
    new_version = _rewrite_manifest(serving)
    assert nightly.serving_reload_request(reason="test again") == new_version
    for _ in range(3):
        serving_adapter.get_engine()
    assert len(checks) == 1 and loaded.manifest_version == new_version


def test_the_reload_api_and_the_nightly_job_share_one_key(serving: Path) -> None:
    from django.core.cache import cache

    version = nightly.serving_reload_request(reason="test")
    assert cache.get("ml:artifacts:reload-version") == version == cache.get(serving_adapter.BUNDLE_KEY)
    assert serving_adapter.reload_now()["bundle_version"] == cache.get("ml:artifacts:reload-version")
