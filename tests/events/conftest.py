"""Fixtures for the events tests: a few movies with genres, and the embedded (no-Redis) online state reset."""

from __future__ import annotations

import pytest

from tests.factories import MovieFactory


@pytest.fixture
def movies(db):  # noqa: ANN001, ANN201
    """Five movies with genres (ids 900_000+)."""
    genres = [["Sci-Fi", "Action"], ["Drama"], ["Comedy", "Romance"], ["Sci-Fi"], ["Drama", "Crime", "Thriller"]]
    return [MovieFactory(genres=g) for g in genres]


@pytest.fixture(autouse=True)
def _fresh_online_state(request, settings, tmp_path):  # noqa: ANN001, ANN202
    """A fresh in-process learner per test, without a serving bundle (whatever var/artifacts holds);
    tests not marked ``services`` run the embedded (no-stream) path."""
    from recommendations import serving as serving_adapter
    from recommendations.online.learner import learner_reset as online_reset

    if "services" not in request.keywords:
        settings.REDIS_URL = ""
    settings.ML_ARTIFACTS_DIR = tmp_path / "no-artifacts"
    serving_adapter.reset_engine()
    online_reset()
    yield
    online_reset()
    serving_adapter.reset_engine()
