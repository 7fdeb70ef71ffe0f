"""Who may call what: every /v1 endpoint × anonymous, user, another user, staff and API key.

Routes are collected from the URL resolver, so a new endpoint is covered as soon as it is mounted, and
``test_every_api_route_is_classified`` fails until its expectations are written into EXPECTATIONS below.
Then every route meets forged credentials (JWTs signed with another key or the public development key,
``alg: none``, expired, tampered, refresh-as-access, blacklisted; revoked, unknown and malformed API keys),
which must be refused (401) or ignored (the anonymous answer), and cross-member calls on other people's objects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
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
ANALYST = {**STAFF_ONLY, "api_key": OK}  # staff analysts and API keys; one privacy budget per member
SELF_OR_STAFF = {**AUTHENTICATED, "other_user": 403}  # per-user data addressed by user id: 403 for any other id


@dataclass(frozen=True)
class Expect:
    """Per HTTP method, the policy; ``kwargs`` builds URL arguments from the cast (alice owns objects)."""

    methods: dict[str, dict[str, Any]]
    kwargs: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    missing_kwargs: dict[str, Any] = field(default_factory=dict)  # a non-existent object, for the no-leak check
    others_kwargs: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # bob's object, for cross-member calls
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
                                          missing_kwargs={"key_id": 987654},
                                          others_kwargs=lambda cast: {"key_id": cast["bobs_key"].key.pk}),
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
        {"get": SELF_OR_STAFF}, kwargs=lambda cast: {"user_id": cast["alice"].pk}, missing_kwargs={"user_id": 987654},
        others_kwargs=lambda cast: {"user_id": cast["bob"].pk}),
    "recommendations_api:user-explanations": Expect(
        {"get": SELF_OR_STAFF}, kwargs=lambda cast: {"user_id": cast["alice"].pk}, missing_kwargs={"user_id": 987654},
        others_kwargs=lambda cast: {"user_id": cast["bob"].pk}),
    "recommendations_api:movie-recommendations": Expect({"get": PUBLIC}, kwargs=lambda cast: {"movie_id": 1}),
    "recommendations_api:movie-recommendations-enriched": Expect({"get": PUBLIC},
                                                                  kwargs=lambda cast: {"movie_id": 1}),
    "recommendations_api:knowledge-graph": Expect({"get": PUBLIC}, kwargs=lambda cast: {"movie_id": 1}),
    "recommendations_api:movie-visual": Expect({"get": PUBLIC}, kwargs=lambda cast: {"movie_id": 1}),
    "recommendations_api:search-visual": Expect({"get": PUBLIC}),
    "recommendations_api:offline-metrics": Expect({"get": PUBLIC}),
    "recommendations_api:artifacts-health": Expect({"get": PUBLIC}),
    "recommendations_api:artifacts-reload": Expect({"post": STAFF_ONLY}),
    "recommendations_api:reload-ensemble-weights": Expect({"post": STAFF_ONLY}),
    # events
    "events_api:event-create": Expect({"post": AUTHENTICATED}),
    "events_api:event-batch-create": Expect({"post": AUTHENTICATED}),
    "recommendations_api:event-features": Expect({"get": AUTHENTICATED}),
    "events_api:recommendation-analytics": Expect({"get": ANALYST}),
    # experiments: staff only, refused alike whether the experiment exists or not
    "experiments_api:experiment-detail": Expect({"get": STAFF_ONLY}, kwargs=lambda cast: {"experiment_id": 1},
                                                missing_kwargs={"experiment_id": 987654}),
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
    from accounts.services import api_key_create
    from tests.factories import IssuedApiKey

    return {"alice": alice, "bob": bob, "staff": staff, "key": api_key_for_alice,
            "bobs_key": IssuedApiKey(*api_key_create(user=bob, name="bob's app"))}


def _client(caller: str, cast: dict[str, Any]) -> APIClient:
    client = APIClient()
    user = {"user": cast["alice"], "other_user": cast["bob"], "staff": cast["staff"]}.get(caller)
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    elif caller == "api_key":
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {cast['key'].raw}")
    return client


def _server_error(response: Any) -> bool:
    """A 500, or a 5xx that is not a defined JSON answer (readiness and artifact health report 503 by design,
    billing says 503/502 when Stripe is not configured or unreachable)."""
    if response.status_code == 500:
        return True
    return response.status_code > 500 and not response.get("Content-Type", "").startswith("application/json")


def _check(name: str, method: str, caller: str, cast: dict[str, Any]) -> str | None:
    """Call one route as one caller; None when the answer is the classified one, else what went wrong."""
    expect = EXPECTATIONS[name]
    wanted = expect.methods[method][caller]
    kwargs = expect.kwargs(cast) if expect.kwargs else {}
    client = _client(caller, cast)

    response = getattr(client, method)(reverse(name, kwargs=kwargs), expect.body, format="json")

    status = response.status_code
    if _server_error(response):
        return f"{name} {method} as {caller}: server error {status}"
    if wanted == OK:
        if status in (401, 403):
            return f"{name} {method} as {caller}: refused with {status} {response.content!r}"
        if expect.methods[method] in (OWNED, OWNED_PERSON) and status == 404:
            return f"{name} {method}: the owner cannot reach their own object"
        return None
    if status != wanted:
        return f"{name} {method} as {caller}: expected {wanted}, got {status} {response.content!r}"
    if not response.json().get("detail", ""):
        return f"{name} {method} as {caller}: a {status} must say why"
    if wanted == 401 and not response.has_header("WWW-Authenticate"):
        return f"{name} {method} as {caller}: a 401 must say how to authenticate"
    if wanted in (403, 404) and expect.missing_kwargs:  # someone else's object looks like one that does not exist
        missing = getattr(client, method)(reverse(name, kwargs=expect.missing_kwargs), expect.body, format="json")
        if (missing.status_code, missing.json()) != (wanted, response.json()):
            return f"{name} {method} as {caller}: refusals must not leak existence"
    return None


@pytest.mark.parametrize(("name", "method", "caller"), CASES)
def test_endpoint_answers_each_caller_as_classified(name: str, method: str, caller: str, cast: dict[str, Any]):
    problem = _check(name, method, caller, cast)
    assert problem is None, problem


def test_the_whole_matrix_in_one_pass(cast: dict[str, Any], probe, monkeypatch):  # noqa: ANN001
    """The standing suite's count: every route × method × caller (docs/RELIABILITY.md)."""
    from accounts.models import ApiKey
    from accounts.services import api_key_cache_forget

    _roomy_throttles(monkeypatch)
    problems = []
    for case in CASES:
        if (problem := _check(*case, cast)) is not None:
            problems.append(problem)
        if ApiKey.objects.filter(pk=cast["key"].key.pk, revoked_at__isnull=False).update(revoked_at=None):
            api_key_cache_forget(hashed_keys=[cast["key"].key.hashed_key])  # alice revoked it as "user": undo
    probe.record("authorization matrix", sent=len(CASES), server_errors=sum("server error" in p for p in problems),
                 failures=len(problems), routes=len({name for name, _, _ in CASES}))
    assert not problems, problems


def _roomy_throttles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hundreds of calls from one test address: the anonymous and burst limits are not what is probed here."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "100000/min", "anon_model": "100000/min",
                                                              "burst": "100000/min"})


# --- forged and revoked credentials ---------------------------------------------------------------------------
DEV_KEY = "dev-only-insecure-key-never-use-in-production"  # public: it is in settings.py
SERVER_KEY = "a-server-side-secret-that-nobody-outside-knows-" + "k" * 16


@pytest.fixture
def server_jwt_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """Sign and verify JWTs with a real secret (as in production), so the development key is a forgery."""
    from rest_framework_simplejwt.state import token_backend

    monkeypatch.setattr(token_backend, "signing_key", SERVER_KEY)
    monkeypatch.setitem(token_backend.__dict__, "prepared_signing_key", token_backend._prepare_key(SERVER_KEY))
    return SERVER_KEY


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(payload: dict[str, Any], key: str | None, alg: str = "HS256") -> str:
    """A JWT built by hand, as an attacker would: any header, any payload, any key (or none)."""
    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload, default=str).encode())
    if key is None:
        return f"{head}.{body}."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    return f"{head}.{body}.{_b64(hmac.new(key.encode(), f'{head}.{body}'.encode(), digest).digest())}"


def _forged(cast: dict[str, Any]) -> dict[str, str]:
    """Authorization headers that must never authenticate anyone: name → header."""
    from django.contrib.auth import get_user_model

    from accounts.services import api_key_create, api_key_revoke

    staff_claims = dict(RefreshToken.for_user(cast["staff"]).access_token.payload)
    alice_token = str(RefreshToken.for_user(cast["alice"]).access_token)
    head, _, signature = alice_token.split(".")
    tampered = {**json.loads(base64.urlsafe_b64decode(alice_token.split(".")[1] + "==")),
                "user_id": staff_claims["user_id"]}
    blacklisted = RefreshToken.for_user(cast["staff"])
    blacklisted.blacklist()
    gone = get_user_model().objects.create_user("mallory", "mallory@example.com", "x", is_active=False)
    revoked, revoked_raw = api_key_create(user=cast["alice"], name="revoked", by_operator=True)
    api_key_revoke(user=cast["alice"], key_id=revoked.pk)
    now = int(time.time())
    return {
        "jwt signed with another key": f"Bearer {_jwt(staff_claims, 'attacker-chosen-key')}",
        "jwt signed with the public development key": f"Bearer {_jwt(staff_claims, DEV_KEY)}",
        "jwt alg none": f"Bearer {_jwt(staff_claims, None, alg='none')}",
        "jwt alg None": f"Bearer {_jwt(staff_claims, None, alg='None')}",
        "jwt alg HS512 with the server key": f"Bearer {_jwt(staff_claims, SERVER_KEY, alg='HS512')}",
        "jwt expired": f"Bearer {_jwt({**staff_claims, 'iat': now - 900, 'exp': now - 60}, SERVER_KEY)}",
        "jwt tampered user id": f"Bearer {head}.{_b64(json.dumps(tampered).encode())}.{signature}",
        "jwt of a user who does not exist": f"Bearer {_jwt({**staff_claims, 'user_id': '987654'}, SERVER_KEY)}",
        "jwt of a deactivated user": f"Bearer {_jwt({**staff_claims, 'user_id': str(gone.pk)}, SERVER_KEY)}",
        "refresh token used as access token": f"Bearer {RefreshToken.for_user(cast['staff'])}",
        "blacklisted refresh token": f"Bearer {blacklisted}",
        "Bearer without a token": "Bearer",
        "Bearer garbage": "Bearer not.a.jwt",
        "Bearer with spaces": "Bearer a b",
        "revoked api key": f"Api-Key {revoked_raw}",
        "unknown api key": "Api-Key apx_00000000_" + "x" * 43,
        "Api-Key without a key": "Api-Key",
        "Api-Key with spaces": f"Api-Key {cast['key'].raw} extra",
        "Api-Key garbage": "Api-Key garbage",
        "Api-Key not UTF-8": "Api-Key apx_\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8_x",
    }


def test_forged_and_revoked_credentials_are_refused_on_every_route(cast, server_jwt_key, probe, monkeypatch):  # noqa: ANN001
    """Every header above on every route and method: 401, or ignored (the anonymous answer); never more."""
    _roomy_throttles(monkeypatch)
    control = APIClient()
    control.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(cast['staff']).access_token}")
    assert control.get(reverse("accounts_api:profile-detail")).status_code == 200  # the server key itself works

    forged = _forged(cast)
    anonymous: dict[tuple[str, str], int] = {}
    sent, server_errors, problems = 0, 0, []
    for name, methods in sorted(ROUTES.items()):
        expect = EXPECTATIONS[name]
        url = reverse(name, kwargs=expect.kwargs(cast) if expect.kwargs else {})
        for method in methods:
            for label, header in forged.items():
                response = getattr(APIClient(), method)(url, expect.body, format="json", HTTP_AUTHORIZATION=header)
                sent += 1
                status = response.status_code
                if _server_error(response):
                    server_errors += 1
                    problems.append(f"{name} {method} with {label}: server error {status}")
                    continue
                if status == 401:
                    if not response.has_header("WWW-Authenticate"):
                        problems.append(f"{name} {method} with {label}: 401 without WWW-Authenticate")
                    continue
                if (name, method) not in anonymous:  # the endpoint does not read credentials: same as nobody
                    anonymous[(name, method)] = getattr(APIClient(), method)(url, expect.body,
                                                                             format="json").status_code
                if status != anonymous[(name, method)]:
                    problems.append(f"{name} {method} with {label}: {status}, anonymous gets "
                                    f"{anonymous[(name, method)]} {response.content[:200]!r}")
    probe.record("forged credentials", sent=sent, server_errors=server_errors, failures=len(problems),
                 credentials=len(forged), routes=len(ROUTES))
    assert not problems, problems


def test_a_blacklisted_refresh_token_mints_no_access_token(cast, server_jwt_key):  # noqa: ANN001
    live, dead = RefreshToken.for_user(cast["alice"]), RefreshToken.for_user(cast["alice"])
    dead.blacklist()
    url = reverse("accounts_api:auth-token-refresh")
    assert APIClient().post(url, {"refresh": str(live)}, format="json").status_code == 200
    assert APIClient().post(url, {"refresh": str(dead)}, format="json").status_code == 401
    forged = _jwt({**dict(live.payload), "user_id": str(cast["staff"].pk)}, DEV_KEY)
    assert APIClient().post(url, {"refresh": forged}, format="json").status_code == 401


# --- cross-member access -------------------------------------------------------------------------------------
CROSS = [(name, method) for name, expect in sorted(EXPECTATIONS.items()) if expect.others_kwargs
         for method in expect.methods]


def test_every_route_with_an_object_of_bobs_has_a_cross_member_case():
    with_objects = sorted(name for name, expect in EXPECTATIONS.items() if expect.kwargs and
                          any(policy in (OWNED, OWNED_PERSON, SELF_OR_STAFF) for policy in expect.methods.values()))
    assert with_objects == sorted({name for name, _ in CROSS}), "give these routes others_kwargs (bob's object)"


@pytest.mark.parametrize(("name", "method"), CROSS)
@pytest.mark.parametrize("caller", ["user", "api_key"])
def test_alice_cannot_reach_bobs_objects(name: str, method: str, caller: str, cast: dict[str, Any]):
    expect = EXPECTATIONS[name]
    response = getattr(_client(caller, cast), method)(reverse(name, kwargs=expect.others_kwargs(cast)), expect.body,
                                                      format="json")
    assert response.status_code in (403, 404), f"{name} {method} as alice's {caller}: {response.status_code}"
    if name == "accounts_api:api-key-revoke":
        cast["bobs_key"].key.refresh_from_db()
        assert cast["bobs_key"].key.is_active


@pytest.mark.parametrize("name", sorted(name for name, expect in EXPECTATIONS.items() if not expect.kwargs and
                                        expect.methods.get("get") in (AUTHENTICATED, PERSON)))
def test_own_data_routes_answer_bob_with_bobs_data_only(name: str, cast: dict[str, Any]):
    response = _client("other_user", cast).get(reverse(name), format="json")
    assert response.status_code == 200, response.content
    body = response.content.decode()
    assert cast["key"].key.prefix not in body and '"alice"' not in body and "alice@example.com" not in body


@pytest.mark.parametrize("path", ["/admin/", "/admin/accounts/apikey/", "/admin/billing/accountplan/"])
def test_the_django_admin_is_staff_only(client, alice, staff, path):
    assert client.get(path).status_code == 302  # anonymous: to the login page
    client.force_login(alice)
    assert client.get(path).status_code == 302
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    assert client.get(path).status_code == 200
