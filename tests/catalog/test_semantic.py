"""Semantic search: the offline MiniLM model + FAISS index built by the command, served by /v1/search/ai."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from catalog import semantic

from .movies import create_classics

pytestmark = pytest.mark.django_db


@pytest.fixture
def artifacts(tmp_path: Path, settings) -> Path:  # noqa: ANN001
    settings.ML_ARTIFACTS_DIR = tmp_path / "artifacts"
    return settings.ML_ARTIFACTS_DIR


def test_missing_index_is_503_with_how_to_build_it(artifacts: Path) -> None:
    response = APIClient().get("/v1/search/ai", {"q": "robots"})

    assert response.status_code == 503
    assert "python manage.py build_search_index" in response.json()["detail"]


def test_semantic_search_finds_a_sensible_neighbour(artifacts: Path) -> None:
    create_classics()
    call_command("build_search_index", "--quiet")

    manifest = json.loads((artifacts / "search" / "manifest.json").read_text())
    assert manifest["movies"] == 8 and manifest["dimension"] == 384 and set(manifest["files"]) == {
        "index.faiss", "ids.npy"}
    client = APIClient()
    robots = client.get("/v1/search/ai", {"q": "space adventure with robots", "limit": 3}).json()["results"]
    ocean = client.get("/v1/search/ai", {"q": "a lost fish in the sea", "limit": 1}).json()["results"]

    ship = client.get("/v1/search/ai", {"q": "romance on a sinking ship", "limit": 1}).json()["results"]

    assert "Star Wars: Episode IV - A New Hope" in [r["movie"]["title"] for r in robots]
    assert ocean[0]["movie"]["title"] == "Finding Nemo"
    assert ship[0]["movie"]["title"] == "Titanic"
    assert robots[0]["score"] > robots[-1]["score"]


def test_a_tampered_index_is_refused(artifacts: Path) -> None:
    create_classics()
    call_command("build_search_index", "--quiet")
    with (artifacts / "search" / "ids.npy").open("ab") as handle:
        handle.write(b"x")
    (artifacts / "search" / "manifest.json").touch()  # new mtime: the process reloads and verifies

    with pytest.raises(semantic.SearchIndexMissing, match="checksum"):
        semantic.load_index()
