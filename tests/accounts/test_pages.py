"""People: sign up, verify email, log in, onboarding, profile and API key pages."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from accounts.models import ApiKey
from accounts.selectors import profile_get
from tests.factories import MovieFactory

pytestmark = pytest.mark.django_db


def test_a_person_signs_up_verifies_their_email_logs_in_and_lands_on_onboarding(client, plans):
    signup = client.post("/accounts/signup/", {"username": "dora", "email": "dora@example.com",
                                               "password1": "a-long-unguessable-passphrase",
                                               "password2": "a-long-unguessable-passphrase"})
    assert signup.status_code == 302 and "confirm-email" in signup["Location"]
    assert client.get("/account/").status_code == 302  # not signed in until verified

    (message,) = mail.outbox
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+)", message.body).group(1)
    assert client.post(link).status_code == 302

    login = client.post("/accounts/login/", {"login": "dora", "password": "a-long-unguessable-passphrase"})
    assert login.status_code == 302
    assert client.get("/account/").status_code == 200


def test_after_signup_without_mandatory_verification_people_go_to_onboarding(client, settings, plans):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    signup = client.post("/accounts/signup/", {"username": "eve", "email": "eve@example.com",
                                               "password1": "a-long-unguessable-passphrase",
                                               "password2": "a-long-unguessable-passphrase"})
    assert signup["Location"] == "/account/onboarding/"


def test_onboarding_lists_popular_movies_by_genre_and_stores_the_picks(client, carol):
    liked = MovieFactory(title="Alien", genres=["Sci-Fi"], rating_count=50)
    MovieFactory(title="Solaris", genres=["Sci-Fi"], rating_count=5)
    MovieFactory(title="Heat", genres=["Crime"], rating_count=30)
    client.force_login(carol)

    page = client.get("/account/onboarding/")
    assert page.status_code == 200
    body = page.content.decode()
    assert body.index("Alien") < body.index("Solaris")  # most rated first
    assert "Crime" in body

    done = client.post("/account/onboarding/", {"favourite_genres": ["Sci-Fi"], "liked_movies": [liked.id]})

    assert done.status_code == 302
    profile = profile_get(user=carol)
    assert profile.onboarding_done and profile.favourite_genres == ["Sci-Fi"]
    assert list(carol.ratings.values_list("movie_id", flat=True)) == [liked.id]


def test_profile_page_saves_favourite_genres(client, carol):
    MovieFactory(genres=["Comedy", "Horror"])
    client.force_login(carol)
    assert "Comedy" in client.get("/account/").content.decode()
    client.post("/account/", {"favourite_genres": ["Horror"]})
    assert profile_get(user=carol).favourite_genres == ["Horror"]


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
