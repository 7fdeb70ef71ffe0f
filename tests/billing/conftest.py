"""Billing test helpers: the offline Stripe transport and a dj-stripe webhook endpoint with a known secret."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import stripe
from django.test import Client

from .stripe_fake import FakeStripeHttpClient, fixture, sign

STRIPE_TEST_KEY = "sk_test_51QApexOfflineFakeKeyForTests0000000000000000"
WEBHOOK_SECRET = "whsec_apexTestSecretForSignedWebhooks000001"


@pytest.fixture
def fake_stripe(settings, monkeypatch) -> FakeStripeHttpClient:  # noqa: ANN001
    """stripe-python talks to recorded responses; every request is kept in ``.calls``."""
    settings.STRIPE_TEST_SECRET_KEY = STRIPE_TEST_KEY
    client = FakeStripeHttpClient()
    client.add("GET", "/v1/account", fixture("account"))
    client.add("GET", "/v1/products/prod_RApexPro0001", fixture("product"))
    monkeypatch.setattr(stripe, "default_http_client", client)
    return client


@dataclass
class WebhookSender:
    client: Client
    url: str
    secret: str

    def send(self, event_type: str, obj: dict[str, Any], *, secret: str | None = None, event_id: str = "") -> Any:
        """POST a signed event wrapping ``obj`` to dj-stripe's endpoint, as Stripe does."""
        event = fixture("event", type=event_type, data={"object": obj},
                        id=event_id or f"evt_1QApex{abs(hash((event_type, json.dumps(obj)))) % 10**12:012d}")
        payload = json.dumps(event)
        return self.client.post(self.url, data=payload, content_type="application/json",
                                HTTP_STRIPE_SIGNATURE=sign(payload, secret or self.secret))


@pytest.fixture
def stripe_webhook(db, fake_stripe: FakeStripeHttpClient) -> WebhookSender:  # noqa: ANN001
    """A dj-stripe WebhookEndpoint row with a known signing secret, and a sender for signed events."""
    from djstripe.models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(
        id="we_1QApexEndpoint00000001", livemode=False, secret=WEBHOOK_SECRET,
        url="https://apex.example/stripe/webhook/", enabled_events=["*"], status="enabled",
        api_version="2026-05-27.dahlia")
    return WebhookSender(client=Client(), url=f"/stripe/webhook/{endpoint.djstripe_uuid}/", secret=WEBHOOK_SECRET)
