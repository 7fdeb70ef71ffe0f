"""Keyword search on real PostgreSQL: full-text search with ranking, served by the GIN index."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from rest_framework.test import APIClient

from catalog.models import Movie
from catalog.search import search_vector

from .movies import create_classics

pytestmark = [pytest.mark.services, pytest.mark.django_db]
gin_migration = importlib.import_module("catalog.migrations.0002_movie_search_gin_postgresql")


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL pointing at PostgreSQL")


def test_full_text_search_ranks_and_stems(django_db_setup) -> None:  # noqa: ANN001
    create_classics()
    client = APIClient()

    star = client.get("/v1/search", {"q": "star wars"}).json()["results"]
    ships = client.get("/v1/search", {"q": "ships"}).json()["results"]  # stemmed: matches "ship"
    exclude = client.get("/v1/search", {"q": "space -alien"}).json()["results"]  # websearch syntax

    assert star[0]["movie"]["id"] == 260
    assert ships[0]["movie"]["title"] == "Titanic"
    assert [r["movie"]["id"] for r in exclude] == [260]


def test_the_gin_index_serves_the_search_expression() -> None:
    with connection.schema_editor() as editor:
        gin_migration.create_index(None, editor)
    create_classics()
    from django.contrib.postgres.search import SearchQuery

    query = Movie.objects.annotate(document=search_vector()).filter(document=SearchQuery("space", config="english"))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = query.explain()

    assert gin_migration.INDEX in plan


def test_pg_trgm_chooses_the_typo_candidates() -> None:
    from catalog import fuzzy
    from tests.factories import MovieFactory

    trgm_migration = importlib.import_module("catalog.migrations.0005_pg_trgm_title_index")
    with connection.schema_editor() as editor:
        trgm_migration.create(None, editor)
    create_classics()
    MovieFactory(id=2571, title="The Matrix", rating_count=50)
    MovieFactory(id=2005, title="Matilda", rating_count=60)

    candidates = {title for _, title, _ in fuzzy.candidate_titles("matirx")}
    results = APIClient().get("/v1/search", {"q": "matirx", "mode": "keyword"}).json()["results"]

    assert fuzzy.trigram_available()
    assert "The Matrix" in candidates and "Titanic" not in candidates  # the trigram filter, not every title
    assert [r["movie"]["title"] for r in results] == ["The Matrix"]
