"""Who may call what: every /v1 endpoint × anonymous, user, another user, staff and API key.

Routes are collected from the URL resolver, so a new endpoint is covered as soon as it is mounted, and
``test_every_api_route_is_classified`` fails until its expectations are written into EXPECTATIONS below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken

CALLERS = ("anonymous", "user", "other_user", "staff", "api_key")
OK = "ok"  # allowed: anything but 401/403 (and 404 for the owner); never a 500

# Policies: the outcome each caller must get.
PUBLIC = dict.fromkeys(CALLERS, OK)
AUTHENTICATED = {**PUBLIC, "anonymous": 401}
PERSON = {**AUTHENTICATED, "api_key": 403}  # account management: a session/JWT, never an API key
STAFF_ONLY = {"anonymous": 401, "user": 403, "other_user": 403, "staff": OK, "api_key": 403}
OWNED = {"anonymous": 401, "user": OK, "other_user": 404, "staff": 404, "api_key": OK}  # alice's object
OWNED_PERSON = {**OWNED, "api_key": 403}
ANALYST = {**STAFF_ONLY, "api_key": OK}  # staff analysts and API keys, each with its own privacy budget
SELF_OR_STAFF = {**AUTHENTICATED, "other_user": 403}  # per-user data addressed by user id: 403 for any other id


@dataclass(frozen=True)
class Expect:
    """Per HTTP method, the policy; ``kwargs`` builds URL arguments from the cast (alice owns objects)."""

    methods: dict[str, dict[str, Any]]
    kwargs: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    missing_kwargs: dict[str, Any] = field(default_factory=dict)  # a non-existent object, for the no-leak check
    body: dict[str, Any] = field(default_factory=dict)


EXPECTATIONS: dict[str, Expect] = {
    "schema": Expect({"get": PUBLIC}),
    "platform:status": Expect({"get": PUBLIC}),
    "platform:readiness": Expect({"get": PUBLIC}),
    "platform:slo": Expect({"get": PUBLIC}),
    # accounts
    "accounts_api:auth-register": Expect({"post": PUBLIC}),
    "accounts_api:auth-token": Expect({"post": PUBLIC}),
    "accounts_api:auth-token-refresh": Expect({"post": PUBLIC}),
    "accounts_api:profile-detail": Expect({"get": AUTHENTICATED, "patch": PERSON}),
    "accounts_api:api-key-list": Expect({"get": PERSON, "post": PERSON}),
    "accounts_api:api-key-revoke": Expect({"delete": OWNED_PERSON}, kwargs=lambda cast: {"key_id": cast["key"].key.pk},
                                          missing_kwargs={"key_id": 987654}),
    # billing
    "billing_api:plan-list": Expect({"get": PUBLIC}),
    "billing_api:checkout-create": Expect({"post": PERSON}),
    "billing_api:portal-create": Expect({"post": PERSON}),
    "billing_api:usage-detail": Expect({"get": AUTHENTICATED}),
    # catalog: public reads
    "catalog_api:movie-list": Expect({"get": PUBLIC}),
    "catalog_api:movie-detail": Expect({"get": PUBLIC}, kwargs=lambda cast: {"movie_id": 1}),
    "catalog_api:search": Expect({"get": PUBLIC}),
    "catalog_api:search-ai": Expect({"get": PUBLIC}),
    # recommendations
    "recommendations_api:user-recommendations": Expect(
        {"get": SELF_OR_STAFF}, kwargs=lambda cast: {"user_id": cast["alice"].pk}, missing_kwargs={"user_id": 987654}),
    "recommendations_api:movie-recommendations": Expect({"get": PUBLIC}, kwargs=lambda cast: {"movie_id": 1}),
    "recommendations_api:movie-recommendations-enriched": Expect({"get": PUBLIC},
                                                                  kwargs=lambda cast: {"movie_id": 1}),
    "recommendations_api:knowledge-graph": Expect({"get": PUBLIC}, kwargs=lambda cast: {"movie_id": 1}),
    "recommendations_api:offline-metrics": Expect({"get": PUBLIC}),
    "recommendations_api:artifacts-health": Expect({"get": PUBLIC}),
    "recommendations_api:artifacts-reload": Expect({"post": STAFF_ONLY}),
    "recommendations_api:reload-ensemble-weights": Expect({"post": STAFF_ONLY}),
    # events
    "events_api:event-create": Expect({"post": AUTHENTICATED}),
    "events_api:event-batch-create": Expect({"post": AUTHENTICATED}),
    "events_api:event-features": Expect({"get": AUTHENTICATED}),
    "events_api:recommendation-analytics": Expect({"get": ANALYST}),
}


def _walk(patterns: list, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str, Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), namespace + (pattern.name or ""), pattern.callback


def _methods(callback: Any) -> list[str]:
    actions = getattr(callback, "actions", None)  # ViewSets routed by a DRF router
    if actions:
        return sorted(actions)
    cls = getattr(callback, "cls", None)
    return [m for m in ("get", "post", "put", "patch", "delete") if cls is not None and hasattr(cls, m)]


def api_routes() -> dict[str, list[str]]:
    """Every DRF endpoint under /v1/: route name → HTTP methods it handles."""
    routes: dict[str, list[str]] = {}
    for route, name, callback in _walk(get_resolver().url_patterns):
        cls = getattr(callback, "cls", None)
        if route.startswith("v1/") and cls is not None and issubclass(cls, APIView):
            routes[name or route] = _methods(callback)
    return routes


ROUTES = api_routes()
CASES = [(name, method, caller) for name, methods in sorted(ROUTES.items()) if name in EXPECTATIONS
         for method in methods for caller in CALLERS]


def test_every_api_route_is_classified():
    unclassified = sorted(name for name in ROUTES if name not in EXPECTATIONS)
    assert not unclassified, f"add these routes to EXPECTATIONS in {__file__}: {unclassified}"
    missing = sorted(f"{name} {method}" for name, methods in ROUTES.items() if name in EXPECTATIONS
                     for method in methods if method not in EXPECTATIONS[name].methods)
    assert not missing, f"classify these methods in EXPECTATIONS: {missing}"


@pytest.fixture
def cast(alice, bob, staff, api_key_for_alice) -> dict[str, Any]:  # noqa: ANN001
    return {"alice": alice, "bob": bob, "staff": staff, "key": api_key_for_alice}


def _client(caller: str, cast: dict[str, Any]) -> APIClient:
    client = APIClient()
    user = {"user": cast["alice"], "other_user": cast["bob"], "staff": cast["staff"]}.get(caller)
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    elif caller == "api_key":
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {cast['key'].raw}")
    return client


@pytest.mark.parametrize(("name", "method", "caller"), CASES)
def test_endpoint_answers_each_caller_as_classified(name: str, method: str, caller: str, cast: dict[str, Any]):
    expect = EXPECTATIONS[name]
    wanted = expect.methods[method][caller]
    kwargs = expect.kwargs(cast) if expect.kwargs else {}
    client = _client(caller, cast)

    response = getattr(client, method)(reverse(name, kwargs=kwargs), expect.body, format="json")

    status = response.status_code
    assert status != 500, f"{name} {method} as {caller}: server error"
    if wanted == OK:
        assert status not in (401, 403), f"{name} {method} as {caller}: refused with {status} {response.content!r}"
        if expect.methods[method] in (OWNED, OWNED_PERSON):
            assert status != 404, f"{name} {method}: the owner cannot reach their own object"
        return
    assert status == wanted, f"{name} {method} as {caller}: expected {wanted}, got {status} {response.content!r}"
    detail = response.json().get("detail", "")
    assert detail, f"{name} {method} as {caller}: a {status} must say why"
    if wanted == 401:
        assert response.has_header("WWW-Authenticate"), "a 401 must say how to authenticate"
    if wanted in (403, 404) and expect.missing_kwargs:  # someone else's object looks like one that does not exist
        missing = getattr(client, method)(reverse(name, kwargs=expect.missing_kwargs), expect.body, format="json")
        assert (missing.status_code, missing.json()) == (wanted, response.json()), "refusals must not leak existence"


@pytest.mark.parametrize("path", ["/admin/", "/admin/accounts/apikey/", "/admin/billing/accountplan/"])
def test_the_django_admin_is_staff_only(client, alice, staff, path):
    assert client.get(path).status_code == 302  # anonymous: to the login page
    client.force_login(alice)
    assert client.get(path).status_code == 302
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    assert client.get(path).status_code == 200
