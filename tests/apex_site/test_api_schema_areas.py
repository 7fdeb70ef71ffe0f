"""The API a third party can adopt (issue 20): the schema's areas, typed answers, documented errors with examples,
no internal notes; JSON errors on every /v1 path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from tests.factories import MovieFactory

pytestmark = pytest.mark.django_db

AREAS = ["Accounts", "Catalog", "Search", "Recommendations", "Events", "Billing", "Experiments", "Platform"]
ERROR_BODIES = ("#/components/schemas/Error", "#/components/schemas/ValidationError")
# what a note for developers looks like: to-dos, issue numbers, source files, docs paths, internal modules
INTERNAL = re.compile(r"\bTODO\b|\bFIXME\b|\bXXX\b|\bissues?\b|#\d|\.py\b|\bdocs/|manage\.py|\bnoqa\b|"
                      r"\b(apex_site|ml_core|simplejwt|selectors|services)\b|``", re.IGNORECASE)


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory, django_db_blocker) -> dict:  # noqa: ANN001
    """The schema as `manage.py spectacular` writes it (validated against the OpenAPI 3 spec)."""
    path: Path = tmp_path_factory.mktemp("schema") / "openapi.json"
    with django_db_blocker.unblock():
        call_command("spectacular", "--format", "openapi-json", "--file", str(path), "--validate", "--fail-on-warn")
    return json.loads(path.read_text())


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


def _component(schema: dict, node: dict) -> tuple[str, dict]:
    ref = node.get("$ref") or node.get("items", {}).get("$ref")
    assert ref, node
    name = ref.rsplit("/", 1)[1]
    return name, schema["components"]["schemas"][name]


def _is_authenticated(op: dict) -> bool:
    security = op.get("security") or []
    return bool(security) and {} not in security


def _documented_errors(op: dict) -> dict[str, dict]:
    return {code: response for code, response in op["responses"].items()
            if response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
            in ERROR_BODIES}


def test_every_operation_is_tagged_with_one_area_and_the_areas_are_described_in_order(schema: dict) -> None:
    assert [tag["name"] for tag in schema["tags"]] == AREAS
    assert all(tag["description"] for tag in schema["tags"])
    for method, path, op in _operations(schema):
        assert len(op["tags"]) == 1 and op["tags"][0] in AREAS, (method, path, op["tags"])
    tags = {(m, p): op["tags"][0] for m, p, op in _operations(schema)}
    assert tags["GET", "/v1/recommendations/id/{movie_id}"] == "Recommendations"
    assert tags["GET", "/v1/search/ai"] == "Search" and tags["POST", "/v1/events/batch"] == "Events"


def test_every_success_answer_is_a_typed_component(schema: dict) -> None:
    for method, path, op in _operations(schema):
        ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert ok, (method, path)
        for code, response in ok.items():
            if code == "204":
                assert "content" not in response
                continue
            name, component = _component(schema, response["content"]["application/json"]["schema"])
            typed = component.get("properties") or "$ref" in component.get("additionalProperties", {})
            assert component.get("type") == "object" and typed, (method, path, name)


def test_every_error_is_documented_with_the_shared_body_and_examples(schema: dict) -> None:
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"] and set(error["properties"]) == {"detail", "code"}
    for method, path, op in _operations(schema):
        documented = _documented_errors(op)
        expected = {"400"} if op.get("parameters") or op.get("requestBody") else set()
        if _is_authenticated(op):
            expected |= {"401", "403", "429"}
        if re.search(r"\{\w+_id\}", path):
            expected.add("404")
        assert expected <= set(documented), (method, path, expected - set(documented))
        for code, response in documented.items():
            examples = response["content"]["application/json"].get("examples")
            assert examples, (method, path, code)
            for example in examples.values():
                body = example["value"]
                if code != "400" or "detail" in body:
                    assert isinstance(body["detail"], str) and body["detail"] and body["code"], (method, path)


def test_no_description_carries_a_note_for_developers(schema: dict) -> None:
    texts = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("description", "summary") and isinstance(value, str):
                    texts.append((where, value))
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "")
    assert len(texts) > 100
    leaks = [(where, text[:120]) for where, text in texts if INTERNAL.search(text)]
    assert not leaks, leaks


def test_public_endpoints_that_run_a_model_say_so_and_name_their_limit(schema: dict) -> None:
    for path in ("/v1/recommendations/id/{movie_id}", "/v1/recommendations/id/{movie_id}/enriched",
                 "/v1/recommendations/id/{movie_id}/visual", "/v1/recommendations/knowledge-graph/{movie_id}",
                 "/v1/search/ai", "/v1/search/visual"):
        op = schema["paths"][path]["get"]
        assert {} in op["security"], path  # no credentials needed
        assert "**Public**" in op["description"] and "/min per address" in op["description"], path
        assert "429" in op["responses"], path
    assert "quota" in schema["paths"]["/v1/recommendations/id/{movie_id}"]["get"]["description"]


def test_the_documented_examples_are_the_bodies_the_api_sends(schema: dict) -> None:
    def example(path: str, method: str, code: str, name: str) -> dict:
        return schema["paths"][path][method]["responses"][code]["content"]["application/json"]["examples"][name]["value"]

    client = Client()
    assert client.get("/v1/auth/me").json() == example("/v1/auth/me", "get", "401", "NoCredentials")
    keyed = client.get("/v1/auth/me", HTTP_AUTHORIZATION="Api-Key apex_nope").json()
    assert keyed == example("/v1/auth/me", "get", "401", "BadAPIKey")
    not_found = client.get("/v1/experiments/12345").json()  # unauthenticated first: 401 with the same shape
    assert set(not_found) == {"detail", "code"}
    movie = MovieFactory(title="Alien", year=1979)
    missing = client.get(f"/v1/recommendations/id/{movie.id + 1}").json()
    assert set(missing) == {"detail", "code"} and missing["code"] == "not_found"
    bad = client.get(f"/v1/recommendations/id/{movie.id}", {"k": "101"}).json()
    assert bad == example("/v1/recommendations/id/{movie_id}", "get", "400", "InvalidField")


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/v1/no-such-thing", 404),
    ("get", "/v1", 404),
    ("get", "/v1/movies/not-a-number", 404),
    ("get", "/v1/recommendations/id/abc/enriched", 404),
    ("get", "/v1/recommendations/id/1/nope/deeper", 404),
    ("post", "/v1/no-such-thing", 404),
    ("delete", "/v1/search/ai/extra", 404),
    ("put", "/v1/movies", 405),
])
def test_every_v1_path_answers_json_errors_even_unknown_ones(settings, debug: bool, method: str, path: str,
                                                              status: int) -> None:
    settings.DEBUG = debug
    response = getattr(Client(raise_request_exception=False), method)(path)
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body["detail"], str) and body["code"] in {"not_found", "method_not_allowed"}
