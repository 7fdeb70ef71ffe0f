"""Operators create and revoke API keys in the admin; the secret is shown once, only the hash is kept."""

from __future__ import annotations

import re

import pytest

from accounts.keys import key_hash
from accounts.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff):  # noqa: ANN001, ANN201
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


def test_a_key_added_in_the_admin_is_shown_once_and_stored_hashed(admin_client, alice):
    response = admin_client.post("/admin/accounts/apikey/add/", {"user": alice.pk, "name": "partner"}, follow=True)

    raw = re.search(r"shown once, copy it now\): (apx_\w{8}_[\w-]+)", response.content.decode()).group(1)
    key = ApiKey.objects.get(user=alice)
    assert key.hashed_key == key_hash(raw) and raw.startswith(key.prefix)


def test_the_admin_revokes_selected_keys(admin_client, api_key_for_alice):
    from rest_framework.test import APIClient

    assert APIClient().get("/v1/auth/me", **api_key_for_alice.headers).status_code == 200  # now cached
    admin_client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [api_key_for_alice.key.pk]})
    api_key_for_alice.key.refresh_from_db()
    assert not api_key_for_alice.key.is_active
    assert APIClient().get("/v1/auth/me", **api_key_for_alice.headers).status_code == 401
