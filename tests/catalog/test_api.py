"""Catalog API: filters, pagination, 404, keyword search, schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from .movies import create_classics

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def classics():  # noqa: ANN201
    return create_classics()


def test_movies_are_listed_most_rated_first_with_pagination(api: APIClient, classics: list) -> None:
    page = api.get("/v1/movies", {"page_size": 3}).json()

    assert page["count"] == 8
    assert [m["title"] for m in page["results"]] == ["Star Wars: Episode IV - A New Hope", "Toy Story", "Alien"]
    assert page["results"][0]["poster_url"] == "https://image.tmdb.org/t/p/w342/poster.jpg"
    second = api.get(page["next"]).json()
    assert [m["title"] for m in second["results"]] == ["Titanic", "Heat", "Finding Nemo"]


@pytest.mark.parametrize(("params", "expected"), [
    ({"genre": "sci-fi"}, {"Star Wars: Episode IV - A New Hope", "Alien"}),
    ({"genre": "War", "year": 1997}, {"Life Is Beautiful"}),
    ({"year_min": 1995, "year_max": 1997}, {"Toy Story", "Heat", "Titanic", "Life Is Beautiful"}),
    ({"text": "nemo"}, {"Finding Nemo"}),
    ({"min_rating": 3.6}, {"Star Wars: Episode IV - A New Hope", "Toy Story", "Alien", "Titanic", "Heat"}),
])
def test_movie_filters(api: APIClient, classics: list, params: dict, expected: set) -> None:
    response = api.get("/v1/movies", params)

    assert response.status_code == 200
    assert {m["title"] for m in response.json()["results"]} == expected


def test_bad_filters_get_400_naming_the_field(api: APIClient) -> None:
    response = api.get("/v1/movies", {"year": "nineteen", "min_rating": 9})

    assert response.status_code == 400
    assert set(response.json()) == {"year", "min_rating"}
    assert api.get("/v1/movies", {"year_min": 2000, "year_max": 1990}).json() == {
        "year_min": ["year_min must not be after year_max"]}


def test_movie_detail_and_unknown_movie(api: APIClient, classics: list) -> None:
    detail = api.get("/v1/movies/260").json()

    assert detail["title"] == "Star Wars: Episode IV - A New Hope"
    assert detail["genres"] == ["Action", "Adventure", "Sci-Fi"] and "jedi" in detail["keywords"]
    assert api.get("/v1/movies/424242").status_code == 404


def test_keyword_search_ranks_title_matches_first(api: APIClient, classics: list) -> None:
    results = api.get("/v1/search", {"q": "star wars"}).json()["results"]

    assert results[0]["movie"]["id"] == 260


def test_keyword_search_finds_overview_and_keyword_words(api: APIClient, classics: list) -> None:
    ship = [r["movie"]["title"] for r in api.get("/v1/search", {"q": "the ship"}).json()["results"]]
    space = [r["movie"]["title"] for r in api.get("/v1/search", {"q": "space"}).json()["results"]]

    assert ship[0] == "Titanic"
    assert set(space) == {"Star Wars: Episode IV - A New Hope", "Alien"}


def test_search_needs_a_query(api: APIClient) -> None:
    response = api.get("/v1/search")

    assert response.status_code == 400 and "q" in response.json()


def test_catalog_endpoints_are_in_the_openapi_schema(api: APIClient) -> None:
    schema = api.get("/v1/schema", {"format": "json"}).json()

    assert {"/v1/movies", "/v1/movies/{movie_id}", "/v1/search", "/v1/search/ai"} <= set(schema["paths"])
    names = {p["name"] for p in schema["paths"]["/v1/movies"]["get"]["parameters"]}
    assert {"genre", "year", "year_min", "year_max", "text", "min_rating", "page"} <= names
