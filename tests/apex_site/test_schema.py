"""The OpenAPI schema says what the API really does (issue 14, item 6): shapes, nullability, errors, limits."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import MovieFactory

pytestmark = pytest.mark.django_db

ERRORS = {"400", "401", "403", "404", "409", "413", "415", "429"}


@pytest.fixture
def schema() -> dict:
    response = APIClient().get("/v1/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _ok_schema(schema: dict, path: str, method: str = "get") -> dict:
    responses = schema["paths"][path][method]["responses"]
    ok = next(code for code in responses if code.startswith("2"))
    ref = responses[ok]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_both_searches_are_documented_as_the_object_they_return(schema: dict) -> None:
    MovieFactory(title="Alien", year=1979)
    body = APIClient().get("/v1/search", {"q": "alien"}).json()
    for path in ("/v1/search", "/v1/search/ai"):
        documented = _ok_schema(schema, path)
        assert documented["type"] == "object", path
        assert set(documented["required"]) == set(body) == {"query", "mode", "results", "corrections",
                                                            "semantic_available"}


def test_a_movie_without_a_collection_is_documented_as_nullable(schema: dict) -> None:
    movie = MovieFactory(title="Alone", year=2001)
    assert APIClient().get(f"/v1/movies/{movie.id}").json()["collection"] is None
    assert _ok_schema(schema, "/v1/movies/{movie_id}")["properties"]["collection"]["nullable"] is True


def test_every_operation_documents_its_errors_with_the_error_component(schema: dict) -> None:
    assert {"Error", "ValidationError"} <= set(schema["components"]["schemas"])
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = set(operation["responses"]) & ERRORS
            assert "400" in errors, (method, path)
            for code in errors:
                ref = operation["responses"][code]["content"]["application/json"]["schema"]
                assert ref["$ref"].endswith(("/Error", "/ValidationError")), (method, path, code)


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("get", "/v1/recommendations/user/{user_id}", {"401", "403", "429"}),
    ("post", "/v1/events", {"400", "401", "404", "409", "413", "429"}),
    ("get", "/v1/movies/{movie_id}", {"404"}),
    ("get", "/v1/movies", {"404"}),  # a page past the last
    ("post", "/v1/auth/token", {"401", "429"}),
    ("delete", "/v1/auth/api-keys/{key_id}", {"401", "403", "404"}),
])
def test_errors_follow_auth_permissions_throttles_and_handlers(schema: dict, method: str, path: str,
                                                                expected: set[str]) -> None:
    assert expected <= set(schema["paths"][path][method]["responses"])


def test_enforced_limits_are_in_the_schema(schema: dict) -> None:
    kg = {p["name"]: p["schema"] for p in schema["paths"]["/v1/recommendations/knowledge-graph/{movie_id}"]["get"]
          ["parameters"]}
    assert (kg["k"]["minimum"], kg["k"]["maximum"]) == (1, 50)
    user = {p["name"]: p for p in schema["paths"]["/v1/recommendations/user/{user_id}"]["get"]["parameters"]}
    assert (user["k"]["schema"]["minimum"], user["k"]["schema"]["maximum"]) == (1, 100)
    assert "year_max" in user["year_min"]["description"]
    movies = {p["name"]: p for p in schema["paths"]["/v1/movies"]["get"]["parameters"]}
    assert "year_max" in movies["year_min"]["description"]
    event = schema["components"]["schemas"]["EventInputRequest"]["properties"]["idempotency_key"]
    assert event["minLength"] == 1


@pytest.mark.parametrize("query", ["sort=", "limit=", "year_min=2000&year_max=1990", "page_size=&sort=title"])
def test_empty_or_contradictory_parameters_are_refused(query: str) -> None:
    path = "/v1/search?q=alien&" if query.startswith("limit") else "/v1/movies?"
    response = APIClient().get(path + query)
    assert response.status_code == 400, response.content
    name = query.split("=")[0]
    assert name in response.json() or name == "page_size"


@pytest.mark.parametrize("k", ["0", "51", "", "ten"])
def test_knowledge_graph_k_outside_1_to_50_is_400(k: str) -> None:
    movie = MovieFactory(title="Alien", year=1979)
    response = APIClient().get(f"/v1/recommendations/knowledge-graph/{movie.id}", {"k": k})
    assert response.status_code == 400 and "k" in response.json()


def test_a_nan_metric_is_served_as_null_not_a_500(settings, tmp_path) -> None:  # noqa: ANN001
    serving = tmp_path / "serving"
    serving.mkdir()
    (serving / "ensemble.json").write_text('{"dataset": "tiny", "weights": {"ease": 1.0}, '
                                           '"metrics": {"rating": {"model": NaN, "baseline": Infinity}}}')
    settings.ML_ARTIFACTS_DIR = tmp_path
    response = APIClient().get("/v1/evaluation/offline-metrics")
    assert response.status_code == 200, response.content
    assert response.json()["tiny"]["ensemble"]["metrics"]["rating"] == {"model": None, "baseline": None}


def test_an_empty_analytics_dimension_is_refused(staff) -> None:  # noqa: ANN001
    client = APIClient()
    client.force_authenticate(staff)
    response = client.get("/v1/events/recommendation-analytics", {"dimension": "", "epsilon": "0.1"})
    assert response.status_code == 400 and "dimension" in response.json(), response.content


def test_one_validation_status_across_the_api(schema: dict) -> None:
    """Every validation failure is 400 (documented in the schema's 400 description); no operation names 422."""
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation.get("responses", {}), (method, path)
