"""Machines: register, JWT, API keys (shown once, hashed, revocable) and calling the API with them."""

from __future__ import annotations

import hashlib

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import api_key_revoke

pytestmark = pytest.mark.django_db


def test_a_machine_registers_verifies_then_gets_tokens_and_calls_the_api(client, django_capture_on_commit_callbacks):
    import re

    api = APIClient()
    with django_capture_on_commit_callbacks(execute=True):
        registered = api.post("/v1/auth/register", {"username": "robot", "email": "robot@example.com",
                                                    "password": "a-long-unguessable-passphrase"}, format="json")
    assert registered.status_code == 201, registered.content
    body = registered.json()
    assert not {"access", "refresh"} & body.keys()  # no credentials before the address is verified
    assert body["verification_required"] is True and "Verify your e-mail address" in body["detail"]
    credentials = {"username": "robot", "password": "a-long-unguessable-passphrase"}
    refused = api.post("/v1/auth/token", credentials, format="json")
    assert refused.status_code == 403 and "Verify your e-mail address" in refused.json()["detail"]

    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+)", mail.outbox[-1].body).group(1)
    assert client.post(link).status_code == 302  # the person behind it verifies the address

    token = api.post("/v1/auth/token", credentials, format="json")
    assert token.status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")
    me = api.get("/v1/auth/me")
    assert me.status_code == 200 and me.json()["username"] == "robot"

    refreshed = APIClient().post("/v1/auth/token/refresh", {"refresh": token.json()["refresh"]}, format="json")
    assert refreshed.status_code == 200 and refreshed.json()["access"]


def test_with_optional_verification_registration_is_the_documented_unverified_tier(settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    api = APIClient()
    registered = api.post("/v1/auth/register", {"username": "robot", "email": "robot@example.com",
                                                "password": "a-long-unguessable-passphrase"}, format="json")
    assert registered.status_code == 201 and registered.json()["verification_required"] is False
    token = api.post("/v1/auth/token", {"username": "robot", "password": "a-long-unguessable-passphrase"},
                     format="json")
    assert token.status_code == 200


def test_registration_explains_what_is_wrong():
    api = APIClient()
    response = api.post("/v1/auth/register", {"username": "x", "email": "not-an-email", "password": "123"},
                        format="json")
    assert response.status_code == 400
    assert "email" in response.json()

    weak = api.post("/v1/auth/register", {"username": "x", "email": "x@example.com", "password": "123"},
                    format="json")
    assert weak.status_code == 400
    assert "too short" in " ".join(weak.json()["password"])


def test_a_username_cannot_be_registered_twice(alice):
    response = APIClient().post("/v1/auth/register", {"username": "ALICE", "email": "other@example.com",
                                                      "password": "a-long-unguessable-passphrase"}, format="json")
    assert response.status_code == 400
    assert "username" in response.json()


def test_wrong_password_gets_401():
    response = APIClient().post("/v1/auth/token", {"username": "nobody", "password": "nope"}, format="json")
    assert response.status_code == 401


def test_a_new_key_is_shown_once_and_stored_only_as_a_hash(alice):
    api = APIClient()
    api.force_authenticate(alice)

    created = api.post("/v1/auth/api-keys", {"name": "mobile app"}, format="json")

    assert created.status_code == 201
    raw = created.json()["key"]
    stored = ApiKey.objects.get(pk=created.json()["id"])
    assert stored.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {stored.prefix, stored.hashed_key, stored.name}
    listed = api.get("/v1/auth/api-keys").json()
    assert [k["prefix"] for k in listed] == [stored.prefix]
    assert "key" not in listed[0]


def test_a_key_authenticates_and_records_its_last_use(api_key_for_alice):
    api = APIClient()
    response = api.get("/v1/auth/me", **api_key_for_alice.headers)
    assert response.status_code == 200 and response.json()["username"] == "alice"
    from accounts.services import api_key_touch_flush

    api_key_touch_flush()  # written behind: by a later request of this process, or at its exit
    api_key_for_alice.key.refresh_from_db()
    assert api_key_for_alice.key.last_used_at is not None


def test_last_use_is_written_behind_in_one_batch_and_never_moves_back(alice, api_key_for_alice, monkeypatch):
    import datetime as dt

    from accounts import services
    from accounts.models import ApiKey

    services.api_key_touch_flush()
    second, _ = services.api_key_create(user=alice, name="second", by_operator=True)
    first = ApiKey.objects.get(pk=api_key_for_alice.key.pk)
    monkeypatch.setattr(services, "LAST_USED_FLUSH_S", 3600.0)
    services.api_key_touch(key=first)
    services.api_key_touch(key=second)
    assert ApiKey.objects.filter(last_used_at__isnull=False).count() == 0  # nothing written on the request path
    touched = first.last_used_at
    services.api_key_touch(key=first)  # within the resolution: not recorded again
    assert first.last_used_at == touched
    later = touched + dt.timedelta(hours=1)
    ApiKey.objects.filter(pk=first.pk).update(last_used_at=later)  # another process wrote a later use
    assert services.api_key_touch_flush() == 2
    assert ApiKey.objects.get(pk=first.pk).last_used_at == later and ApiKey.objects.get(pk=second.pk).last_used_at
    monkeypatch.setattr(services, "LAST_USED_FLUSH_S", 0.0)  # due: the request that finds it due writes it
    fresh, _ = services.api_key_create(user=alice, name="third", by_operator=True)
    services.api_key_touch(key=fresh)
    assert ApiKey.objects.get(pk=fresh.pk).last_used_at is not None


def test_a_revoked_key_is_refused_with_a_reason(alice, api_key_for_alice):
    assert APIClient().get("/v1/auth/me", **api_key_for_alice.headers).status_code == 200  # now cached
    api = APIClient()
    api.force_authenticate(alice)
    assert api.delete(f"/v1/auth/api-keys/{api_key_for_alice.key.pk}").status_code == 204

    response = APIClient().get("/v1/auth/me", **api_key_for_alice.headers)

    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or revoked API key."
    assert response["WWW-Authenticate"]


@pytest.mark.parametrize("header", ["Api-Key", "Api-Key apx_00000000_wrong", "Api-Key a b", "Api-Key garbage"])
def test_malformed_or_unknown_keys_get_401(db, header):
    response = APIClient().get("/v1/auth/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


def test_someone_elses_key_cannot_be_revoked_and_its_existence_does_not_leak(bob, api_key_for_alice):
    api = APIClient()
    api.force_authenticate(bob)
    theirs = api.delete(f"/v1/auth/api-keys/{api_key_for_alice.key.pk}")
    missing = api.delete("/v1/auth/api-keys/999999")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    api_key_for_alice.key.refresh_from_db()
    assert api_key_for_alice.key.is_active


def test_an_api_key_cannot_mint_more_keys(api_key_for_alice):
    response = APIClient().post("/v1/auth/api-keys", {"name": "sneaky"}, format="json", **api_key_for_alice.headers)
    assert response.status_code == 403
    assert "API keys cannot manage the account" in response.json()["detail"]


def test_profile_genres_are_cleaned_and_saved(carol):
    api = APIClient()
    api.force_authenticate(carol)
    response = api.patch("/v1/auth/me", {"favourite_genres": [" Comedy", "Comedy", "Horror"]}, format="json")
    assert response.status_code == 200
    assert response.json()["favourite_genres"] == ["Comedy", "Horror"]


def test_password_guessing_on_the_token_endpoint_is_throttled(db, monkeypatch):
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/min"})
    api = APIClient()
    codes = [api.post("/v1/auth/token", {"username": "alice", "password": f"guess{i}"}, format="json").status_code
             for i in range(4)]
    assert codes == [401, 401, 401, 429]


def test_a_cached_key_is_served_without_a_query_and_revocation_still_applies_at_once(alice, api_key_for_alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.selectors import api_key_find_active

    assert api_key_find_active(raw=api_key_for_alice.raw) is not None  # loads and caches
    with CaptureQueriesContext(connection) as queries:
        assert api_key_find_active(raw=api_key_for_alice.raw).pk == api_key_for_alice.key.pk
    assert queries.captured_queries == []
    assert api_key_find_active(raw=api_key_for_alice.raw[:-1] + "x") is None  # the cache is keyed by the secret

    api_key_revoke(user=alice, key_id=api_key_for_alice.key.pk)

    assert api_key_find_active(raw=api_key_for_alice.raw) is None


def test_the_cached_key_never_carries_the_password_hash(alice, api_key_for_alice):
    from django.core.cache import cache

    from accounts.selectors import api_key_cache_key, api_key_find_active, key_hash

    assert api_key_find_active(raw=api_key_for_alice.raw) is not None
    cached = cache.get(api_key_cache_key(key_hash(api_key_for_alice.raw)))
    assert cached is not None and "password" in cached.user.get_deferred_fields()
