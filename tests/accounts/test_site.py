"""The Site e-mails and pages name: APEX at SITE_DOMAIN, not Django's example.com."""

from __future__ import annotations

import pytest
from django.contrib.sites.models import Site
from django.core import mail

pytestmark = pytest.mark.django_db


def test_the_site_is_apex_not_example_com(settings) -> None:
    site = Site.objects.get_current()
    assert (site.name, site.domain) == (settings.SITE_NAME, settings.SITE_DOMAIN) == ("APEX", "localhost:8000")


def test_a_password_reset_email_says_apex(client, alice) -> None:  # noqa: ANN001
    alice.email = "alice@example.org"
    alice.save()
    client.post("/accounts/password/reset/", {"email": "alice@example.org"})
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "APEX" in message.subject + message.body and "example.com" not in message.subject + message.body
