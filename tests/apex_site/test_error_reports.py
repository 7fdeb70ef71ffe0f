"""Error reports (the DEBUG page, admin mails) never show a service URL or a password (issue 14, item 2)."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.apex_site.error_urls")]
DATABASE_URL_SEEN = "postgres://apex:s3cr3t-db-pass@db.internal:5432/apex"
REDIS_WITH_PASSWORD = "redis://:r3d1s-pass@cache.internal:6379/0"


@pytest.fixture
def services_with_passwords(settings):  # noqa: ANN001, ANN201
    settings.DEBUG = True
    settings.DATABASE_URL = DATABASE_URL_SEEN
    settings.REDIS_URL = REDIS_WITH_PASSWORD
    settings.CELERY_BROKER_URL = REDIS_WITH_PASSWORD
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [{"address": REDIS_WITH_PASSWORD}]}}}


def test_debug_page_masks_service_urls_and_passwords(services_with_passwords):
    response = Client(raise_request_exception=False).get("/test-boom")
    page = response.content.decode()
    assert response.status_code == 500 and "RuntimeError" in page  # the real debug page, for the portal
    for secret in ("s3cr3t-db-pass", "r3d1s-pass", "db.internal", "cache.internal"):
        assert secret not in page
    assert "DATABASE_URL" in page and "********" in page  # listed, masked


def test_debug_page_survives_a_lone_surrogate(services_with_passwords):
    response = Client(raise_request_exception=False).get("/test-surrogate-boom")
    assert response.status_code == 500 and "ValueError" in response.content.decode()
    assert "\\ud800" in response.content.decode()  # shown escaped; the raw one made the page itself raise


def test_credentials_in_any_url_are_masked_by_value():
    from apex_site.errors import SecretMaskingFilter

    cleansed = SecretMaskingFilter().cleanse_setting("REPLICAS", {"fallback": [REDIS_WITH_PASSWORD]})
    assert cleansed == {"fallback": ["redis://********************@cache.internal:6379/0"]}
