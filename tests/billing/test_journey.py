"""The whole journey: sign up, verify, log in, hit the quota, subscribe (checkout → signed webhook), carry on."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from billing.models import Plan
from tests.factories import MovieFactory

from .stripe_fake import fixture

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-unguessable-passphrase"


def _sign_up_and_verify(client: Client) -> None:
    client.post("/accounts/signup/", {"username": "frank", "email": "frank@example.com",
                                      "password1": PASSWORD, "password2": PASSWORD})
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+)", mail.outbox[-1].body).group(1)
    client.post(link)
    assert client.post("/accounts/login/", {"login": "frank", "password": PASSWORD}).status_code == 302


def test_a_person_subscribes_and_the_new_quota_applies_at_once(plans, fake_stripe, stripe_webhook):
    Plan.objects.filter(code="free").update(event_quota=2)
    movie = MovieFactory(title="Alien", genres=["Sci-Fi"])
    browser = Client()
    _sign_up_and_verify(browser)

    # a machine of frank's: a JWT, then an API key made with it
    machine = APIClient()
    token = machine.post("/v1/auth/token", {"username": "frank", "password": PASSWORD}, format="json").json()
    machine.credentials(HTTP_AUTHORIZATION=f"Bearer {token['access']}")
    raw_key = machine.post("/v1/auth/api-keys", {"name": "recommender"}, format="json").json()["key"]
    machine.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")

    def send_click(n: int) -> int:
        return machine.post("/v1/events", {"movie_id": movie.id, "kind": "click", "idempotency_key": f"c{n}"},
                            format="json").status_code

    assert [send_click(1), send_click(2)] == [202, 202]
    refused = machine.post("/v1/events", {"movie_id": movie.id, "kind": "click", "idempotency_key": "c3"},
                           format="json")
    assert refused.status_code == 429 and refused.json()["upgrade_plan"] == "pro"

    # subscribe: the button redirects to Stripe Checkout
    from django.contrib.auth import get_user_model

    frank = get_user_model().objects.get(username="frank")
    customer = fixture("customer", email=frank.email, metadata={"djstripe_subscriber": str(frank.pk)})
    fake_stripe.add("POST", "/v1/customers", customer)
    fake_stripe.add("GET", f"/v1/customers/{customer['id']}", customer)
    fake_stripe.add("POST", "/v1/checkout/sessions", fixture("checkout_session"))
    assert browser.post("/billing/checkout/pro/")["Location"].startswith("https://checkout.stripe.com/")

    # Stripe confirms payment with a signed webhook; dj-stripe re-fetches the subscription
    subscription = fixture("subscription")
    fake_stripe.add("GET", f"/v1/subscriptions/{subscription['id']}", subscription)
    assert stripe_webhook.send("customer.subscription.created", subscription).status_code == 200

    assert send_click(3) == 202
    usage = machine.get("/v1/billing/usage").json()
    assert usage["plan"] == "pro"
    assert usage["usage"]["events"] == {"used": 3, "limit": 1_000_000, "remaining": 999_997}
    assert "Pro" in browser.get("/billing/").content.decode()
