"""Inputs refused at the edge: NUL and lone surrogates (400 naming the field), deep JSON (400), big bodies (413).

Before the strict parser and the input guard, a NUL in a text field reached PostgreSQL (500), a lone
surrogate could not be encoded (500) and 10,000-deep JSON raised RecursionError (500).
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from events.models import Event
from tests.factories import MovieFactory

pytestmark = pytest.mark.django_db

TEXT_FIELDS = ["idempotency_key", "request_id", "external_user", "policy_version"]


@pytest.fixture
def movies(db) -> list:  # noqa: ANN001
    return [MovieFactory(genres=["Drama"]), MovieFactory(genres=["Comedy"])]


@pytest.fixture
def api(alice) -> Client:
    """A client that answers 500s instead of raising them, signed in as alice."""
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    return client


def _event(movie_id: int, **fields: object) -> dict:
    return {"movie_id": movie_id, "kind": "click", "idempotency_key": "guard-1", **fields}


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_a_nul_byte_in_an_event_text_field_is_400_naming_the_field(api, movies, field):
    response = api.post("/v1/events", _event(movies[0].id, **{field: "abc\x00def"}), content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Event.objects.exists()


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_a_nul_byte_in_a_batch_names_the_position_and_field(api, movies, field):
    events = [_event(movies[0].id, idempotency_key="ok"), _event(movies[1].id, **{field: "\x00"})]
    response = api.post("/v1/events/batch", {"events": events}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert f"events.1.{field}" in response.json()
    assert not Event.objects.exists()


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_a_lone_surrogate_in_an_event_text_field_is_400_naming_the_field(api, movies, field):
    body = json.dumps(_event(movies[0].id, **{field: "SURROGATE"})).replace("SURROGATE", "x\\ud800y")
    response = api.post("/v1/events", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Event.objects.exists()


def test_a_lone_surrogate_in_a_key_is_400(api, movies):
    body = json.dumps(_event(movies[0].id))[:-1] + ', "\\udfff": 1}'
    response = api.post("/v1/events", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "surrogate" in json.dumps(response.json())


def test_ten_thousand_deep_json_is_400_not_a_recursion_error(api):
    response = api.post("/v1/events", "[" * 10_000 + "]" * 10_000, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "nested deeper" in response.json()["detail"]


def test_json_just_past_the_depth_limit_is_400_and_a_normal_batch_still_passes(api, movies, settings):
    settings.API_JSON_MAX_DEPTH = 4
    deep = {"events": [_event(movies[0].id, extra={"a": {"b": 1}})]}  # levels: body, list, event, a, b
    assert api.post("/v1/events/batch", deep, content_type="application/json").status_code == 400
    ok = {"events": [_event(movies[0].id, idempotency_key=f"k{i}") for i in range(3)]}
    assert api.post("/v1/events/batch", ok, content_type="application/json").status_code == 202


def test_an_oversized_body_is_413_json(api, movies, settings):  # the JSON 413 is apex_site.errors' mapping
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = {"events": [_event(movies[0].id, idempotency_key=f"k{i}") for i in range(200)]}
    response = api.post("/v1/events/batch", body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert "too large" in response.json()["detail"]
    assert not Event.objects.exists()


def test_a_nul_byte_in_a_query_parameter_is_400_naming_it(api):
    response = api.get("/v1/movies", {"search": "star\x00wars"})
    assert response.status_code == 400, response.content
    assert "search" in response.json()


def test_a_nul_byte_in_a_query_parameter_name_is_400(api):
    response = api.get("/v1/movies?x%00y=1")
    assert response.status_code == 400, response.content


def test_a_nul_byte_in_the_path_is_400(api):
    response = api.get("/v1/movies/abc%00def")
    assert response.status_code == 400, response.content
    assert "path" in response.json()


def test_a_nul_byte_in_a_form_body_is_400_naming_the_field(api, movies):
    response = api.post("/v1/events", {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "a\x00b"})
    assert response.status_code == 400, response.content
    assert "idempotency_key" in response.json()
    assert not Event.objects.exists()


def test_a_multipart_body_without_a_boundary_is_a_plain_400(api, movies, caplog):
    response = api.generic("POST", "/v1/events", b"movie_id=1", content_type="multipart/form-data")
    assert response.status_code == 400, response.content
    assert "multipart" in response.json()["body"][0]
    assert not any(record.exc_info for record in caplog.records)  # a client error, not a logged traceback
    assert not Event.objects.exists()


def test_pages_outside_the_api_get_a_plain_400(client):
    response = client.get("/", {"q": "\x00"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("cookie", ['sessionid="abcdefgh\\000ijkl"', 'csrftoken="a\\000b"; sessionid="\\000abcdefgh"'])
def test_a_cookie_carrying_nul_is_ignored_not_a_server_error(cookie):
    client = Client(raise_request_exception=False)
    response = client.get("/v1/movies", HTTP_COOKIE=cookie)
    assert response.status_code == 200


async def test_the_guard_answers_the_same_under_asgi(async_client):
    response = await async_client.get("/v1/movies", {"search": "a\x00b"})
    assert response.status_code == 400
    assert response.json() == {"search": ["must not contain NUL (\\u0000) characters"]}


def test_text_that_only_looks_like_an_escape_and_real_pairs_are_accepted(api, movies):
    body = _event(movies[0].id, idempotency_key="a\\u0000b", request_id="\U0001f3ac", policy_version="caf\u00e9")
    response = api.post("/v1/events", body, content_type="application/json")  # json.dumps escapes the emoji as a pair
    assert response.status_code == 202, response.content
    assert Event.objects.get().idempotency_key == "a\\u0000b"
