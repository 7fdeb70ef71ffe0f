"""/v1 errors are JSON {"detail", "code"} in every mode; the portal keeps HTML pages (issue 14, item 2)."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
BOOM_URLS = "tests.apex_site.error_urls"


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request, settings):  # noqa: ANN001, ANN201
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def _json_error(response, status: int, code: str) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    return body


def test_unknown_api_path_is_a_json_404(client, debug):
    response = client.get("/v1/no-such-thing")
    _json_error(response, 404, "not_found")
    assert response["X-Content-Type-Options"] == "nosniff"  # the JSON keeps the security headers


def test_wrong_method_is_a_json_405_with_allow(client, debug):
    response = client.post("/v1/schema")
    _json_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_unauthenticated_call_gets_a_code(client, debug):
    body = _json_error(client.get("/v1/auth/me"), 401, "not_authenticated")
    assert "credentials" in body["detail"]


def test_malformed_json_is_a_json_400(client, debug):
    response = client.post("/v1/auth/token", data=b'{"username": ', content_type="application/json")
    _json_error(response, 400, "parse_error")


def test_unknown_host_is_a_json_400(client, debug):
    body = _json_error(client.get("/v1/movies", HTTP_HOST="evil.example"), 400, "disallowed_host")
    assert "evil" not in body["detail"]


def test_oversized_body_is_a_json_413(client, debug, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post("/v1/auth/token", data="username=" + "x" * 5000,
                           content_type="application/x-www-form-urlencoded")
    _json_error(response, 413, "request_too_large")


@pytest.mark.urls(BOOM_URLS)
def test_server_error_is_json_without_a_traceback(client, debug):
    response = client.post("/v1/test-boom", data=b'{"name": "\xed\xa0\x80 lone surrogate"}',
                           content_type="application/json")
    body = _json_error(response, 500, "server_error")
    assert body == {"detail": "Server error.", "code": "server_error"}


def test_portal_errors_stay_html(client, debug):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
