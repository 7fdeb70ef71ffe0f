"""People: sign up, verify email, log in, land on onboarding; the API key pages; the old page addresses."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from accounts.models import ApiKey

pytestmark = pytest.mark.django_db


def test_a_person_signs_up_verifies_their_email_logs_in_and_lands_on_onboarding(client, plans):
    signup = client.post("/accounts/signup/", {"username": "dora", "email": "dora@example.com",
                                               "password1": "a-long-unguessable-passphrase",
                                               "password2": "a-long-unguessable-passphrase"})
    assert signup.status_code == 302 and "confirm-email" in signup["Location"]
    assert client.get("/me/").status_code == 302  # not signed in until verified

    (message,) = mail.outbox
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+)", message.body).group(1)
    assert client.post(link).status_code == 302

    login = client.post("/accounts/login/", {"login": "dora", "password": "a-long-unguessable-passphrase"})
    assert login.status_code == 302
    assert client.get("/me/").status_code == 200


def test_after_signup_without_mandatory_verification_people_go_to_onboarding(client, settings, plans):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    signup = client.post("/accounts/signup/", {"username": "eve", "email": "eve@example.com",
                                               "password1": "a-long-unguessable-passphrase",
                                               "password2": "a-long-unguessable-passphrase"})
    assert signup["Location"] == "/onboarding/"


def test_the_old_profile_and_onboarding_addresses_redirect_permanently(client, carol):
    client.force_login(carol)

    profile = client.get("/account/")
    onboarding = client.get("/account/onboarding/?group=Drama")

    assert (profile.status_code, profile["Location"]) == (301, "/me/")
    assert (onboarding.status_code, onboarding["Location"]) == (301, "/onboarding/?group=Drama")
    assert client.get("/account/api-keys/").status_code == 200  # the key pages stay where they were


def test_api_key_page_shows_a_new_key_once_and_revokes_it(client, alice):
    client.force_login(alice)
    created = client.post("/account/api-keys/", {"name": "home server"})
    raw = re.search(r'<pre id="new-api-key">([^<]+)</pre>', created.content.decode()).group(1)
    key = ApiKey.objects.get(user=alice)
    assert raw.startswith(key.prefix)
    assert raw not in client.get("/account/api-keys/").content.decode()

    client.post(f"/account/api-keys/{key.pk}/revoke/")
    key.refresh_from_db()
    assert not key.is_active


def test_nobody_revokes_someone_elses_key_from_the_page(client, bob, api_key_for_alice):
    client.force_login(bob)
    assert client.post(f"/account/api-keys/{api_key_for_alice.key.pk}/revoke/").status_code == 404
    api_key_for_alice.key.refresh_from_db()
    assert api_key_for_alice.key.is_active
