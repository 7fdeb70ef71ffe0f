"""Abuse controls (issue 14): the real client address, sign-in backoff that spares the owner, key caps."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from accounts.adapters import AccountAdapter
from apex_site.client_ip import client_ident, client_ip
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
ATTACKER, OWNER, PROXY = "198.51.100.66", "203.0.113.10", "10.0.0.2"


@pytest.fixture
def slow_backoff(settings):  # noqa: ANN001, ANN201
    """Waits of a minute and more, so a locked lane stays locked for the whole test (no timed assertions)."""
    settings.AUTH_BACKOFF = {"free_per_account_ip": 5, "free_per_ip": 20, "free_per_account": 20,
                             "base_s": 60.0, "max_s": 900.0, "window_s": 3600.0}
    return settings.AUTH_BACKOFF


def _request(remote: str, forwarded: str | None = None):  # noqa: ANN202
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


def _token(username: str, password: str, remote: str, forwarded: str | None = None):  # noqa: ANN202
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return APIClient().post("/v1/auth/token", {"username": username, "password": password}, format="json",
                            REMOTE_ADDR=remote, **extra)


# --- the real client address -----------------------------------------------------------------------------
def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(_request(ATTACKER, "1.2.3.4")) == ATTACKER
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(_request(ATTACKER, "1.2.3.4")) == ATTACKER  # the peer is not ours: its header is a lie


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.1"]
    assert client_ip(_request(PROXY, f"6.6.6.6, {OWNER}, 10.0.0.9, 192.0.2.1")) == OWNER
    assert client_ip(_request(PROXY, f"{OWNER}:4711")) == OWNER
    assert client_ip(_request(PROXY, "not-an-address, 10.0.0.9")) == "10.0.0.9"  # the last hop we can vouch for
    assert client_ip(_request(PROXY)) == PROXY
    assert client_ident(_request(PROXY, "2001:db8:1:2:3:4:5:6")) == "2001:db8:1:2::/64"


def test_a_spoofed_forwarded_for_does_not_buy_more_password_guesses(db, monkeypatch):
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/min"})
    codes = [_token("nobody", f"guess{i}", ATTACKER, forwarded=f"10.9.8.{i}").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]


def test_clients_behind_a_trusted_proxy_are_counted_apart(db, settings, monkeypatch):
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "2/min"})
    settings.TRUSTED_PROXIES = [PROXY]
    assert [_token("nobody", "x", PROXY, forwarded=ATTACKER).status_code for _ in range(3)] == [401, 401, 429]
    assert _token("nobody", "x", PROXY, forwarded=OWNER).status_code == 401  # another client: its own count


def test_allauth_rate_limits_see_the_same_client_address(settings):
    settings.TRUSTED_PROXIES = [PROXY]
    assert AccountAdapter().get_client_ip(_request(PROXY, OWNER)) == OWNER
    assert AccountAdapter().get_client_ip(_request(ATTACKER, OWNER)) == ATTACKER


# --- /v1/auth/token: backoff per account × address, per address, per account from unknown addresses ----------
def test_guesses_back_off_but_the_owner_at_another_address_still_gets_a_token(alice, slow_backoff):
    assert [_token("alice", f"guess{i}", ATTACKER).status_code for i in range(5)] == [401] * 5

    locked = _token("alice", PASSWORD, ATTACKER)  # even the right password is not evaluated while backing off
    assert locked.status_code == 429 and int(locked["Retry-After"]) >= 59
    assert "Too many failed sign-in attempts" in locked.json()["detail"]
    assert _token("ALICE", PASSWORD, ATTACKER).status_code == 429  # another spelling is the same account

    owner = _token("alice", PASSWORD, OWNER)
    assert owner.status_code == 200 and owner.json()["access"]


def test_a_success_clears_the_lane_and_the_owner_keeps_their_own_failures(alice, slow_backoff):
    for i in range(4):
        assert _token("alice", f"typo{i}", OWNER).status_code == 401
    assert _token("alice", PASSWORD, OWNER).status_code == 200
    assert [_token("alice", f"typo{i}", OWNER).status_code for i in range(5)] == [401] * 5  # counted from zero


def test_many_addresses_on_one_account_back_off_except_where_the_owner_signed_in(alice, slow_backoff):
    slow_backoff["free_per_account"] = 3
    assert _token("alice", PASSWORD, OWNER).status_code == 200  # the owner's address is now known
    botnet = [f"198.51.100.{i}" for i in range(1, 5)]
    assert [_token("alice", "guess", ip).status_code for ip in botnet] == [401, 401, 401, 429]
    assert _token("alice", PASSWORD, "198.51.100.99").status_code == 429  # an unknown address waits
    assert _token("alice", PASSWORD, OWNER).status_code == 200  # the owner does not


def test_one_address_spraying_many_accounts_backs_off(db, slow_backoff):
    slow_backoff["free_per_ip"] = 3
    assert [_token(f"victim{i}", "123456", ATTACKER).status_code for i in range(4)] == [401, 401, 401, 429]
    assert _token("victim9", "123456", OWNER).status_code == 401  # other addresses are not affected


# --- the portal (allauth) and the admin ---------------------------------------------------------------------
def _portal_login(login: str, password: str, remote: str) -> tuple[int, str]:
    client = Client(REMOTE_ADDR=remote)
    response = client.post("/accounts/login/", {"login": login, "password": password})
    return response.status_code, response.content.decode()


def test_portal_guesses_from_elsewhere_do_not_lock_the_member_out(alice, slow_backoff):
    for i in range(6):
        assert _portal_login("alice", f"guess{i}", ATTACKER)[0] == 200  # the form again, with an error
    status, body = _portal_login("alice", PASSWORD, ATTACKER)
    assert status == 200 and "Too many failed login attempts" in body
    assert _portal_login("alice", PASSWORD, OWNER)[0] == 302  # the member, from their own address, gets in


def test_admin_login_backs_off_per_account_and_address(staff, slow_backoff):
    staff.is_superuser = True
    staff.save()
    for i in range(5):
        response = Client(REMOTE_ADDR=ATTACKER).post("/admin/login/", {"username": "staff", "password": f"g{i}"})
        assert response.status_code == 200 and "correct username and password" in response.content.decode()
    locked = Client(REMOTE_ADDR=ATTACKER).post("/admin/login/", {"username": "staff", "password": PASSWORD})
    assert locked.status_code == 200 and "Too many failed sign-in attempts" in locked.content.decode()
    owner = Client(REMOTE_ADDR=OWNER).post("/admin/login/", {"username": "staff", "password": PASSWORD})
    assert owner.status_code == 302


# --- no API credentials before verification; a cap on keys --------------------------------------------------
def test_an_unverified_account_gets_no_token_and_no_key(plans):
    from rest_framework_simplejwt.tokens import RefreshToken

    dave = UserFactory(username="dave", verified_email=False)
    refused = _token("dave", PASSWORD, OWNER)
    assert refused.status_code == 403 and "Verify your e-mail address" in refused.json()["detail"]

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(dave).access_token}")
    key = api.post("/v1/auth/api-keys", {"name": "bot"}, format="json")
    assert key.status_code == 403 and "Verify your e-mail address" in key.json()["detail"]
    assert not dave.api_keys.exists()


def test_a_member_holds_at_most_the_configured_number_of_active_keys(alice, settings):
    settings.API_KEYS_MAX_PER_USER = 3
    api = APIClient()
    api.force_authenticate(alice)
    assert [api.post("/v1/auth/api-keys", {"name": f"k{i}"}, format="json").status_code
            for i in range(3)] == [201] * 3

    refused = api.post("/v1/auth/api-keys", {"name": "one too many"}, format="json")
    assert refused.status_code == 409 and "3 active API keys" in refused.json()["detail"]
    assert alice.api_keys.count() == 3

    assert api.delete(f"/v1/auth/api-keys/{alice.api_keys.first().pk}").status_code == 204
    assert api.post("/v1/auth/api-keys", {"name": "replacement"}, format="json").status_code == 201


def test_the_key_page_explains_the_cap_instead_of_failing(client, alice, settings):
    settings.API_KEYS_MAX_PER_USER = 1
    client.force_login(alice)
    assert client.post("/account/api-keys/", {"name": "first"}).status_code == 200
    second = client.post("/account/api-keys/", {"name": "second"})
    assert second.status_code == 200 and "1 active API keys" in second.content.decode()
    assert alice.api_keys.count() == 1


def test_an_operator_may_issue_keys_past_the_cap(alice, settings):
    from accounts.services import api_key_create

    settings.API_KEYS_MAX_PER_USER = 1
    api_key_create(user=alice, name="own")
    api_key_create(user=alice, name="partner", by_operator=True)
    assert alice.api_keys.count() == 2


def test_a_refresh_token_needs_an_existing_verified_account(plans):
    from rest_framework_simplejwt.tokens import RefreshToken

    dave, erin = UserFactory(username="dave", verified_email=False), UserFactory(username="erin")
    unverified, deleted = RefreshToken.for_user(dave), RefreshToken.for_user(erin)
    erin.delete()
    refused = APIClient().post("/v1/auth/token/refresh", {"refresh": str(unverified)}, format="json")
    assert refused.status_code == 403 and "Verify your e-mail address" in refused.json()["detail"]
    assert APIClient().post("/v1/auth/token/refresh", {"refresh": str(deleted)}, format="json").status_code == 401


@pytest.mark.parametrize("login", ["nul\x00byte", "lone\ud800surrogate", "x" * 300])
def test_sign_in_names_that_cannot_be_accounts_never_reach_the_database(db, login, django_assert_num_queries):
    from accounts.lockout import signin_account

    with django_assert_num_queries(0):
        assert signin_account(login=login).startswith("login:")


def test_a_bad_trusted_proxies_entry_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    from apex_site.client_ip import trusted_networks

    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "the load balancer"]
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES"):
        trusted_networks()


def test_a_cache_failure_never_locks_anyone_out(db, settings):
    """Redis unreachable (a closed port stands in for it): the attempt goes ahead, decided by the password alone."""
    from accounts.lockout import signin_begin, signin_succeeded

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/0"}}
    attempt = signin_begin(request=_request(OWNER), login="alice")
    assert attempt.counted == []
    signin_succeeded(attempt=attempt)  # and recording the success does not raise either
