"""Billing pages: subscription and usage, and the redirects to Stripe Checkout and the portal."""

from __future__ import annotations

import pytest

from billing.services import usage_consume

from .stripe_fake import fixture

pytestmark = pytest.mark.django_db


def test_the_billing_page_shows_plan_usage_and_plans(client, alice, api_key_for_alice, stripe_configured):
    usage_consume(user=alice, api_key=api_key_for_alice.key, kind="recommendations", amount=7)
    client.force_login(alice)

    body = client.get("/billing/").content.decode()

    assert "<strong>Free</strong>" in body
    assert "<td>7</td>" in body and "1,000" in body  # used, and the Free quota
    assert api_key_for_alice.key.prefix in body
    assert 'action="/billing/checkout/pro/"' in body


def test_subscribe_button_redirects_to_stripe_checkout(client, alice, fake_stripe):
    fake_stripe.add("POST", "/v1/customers", fixture("customer"))
    fake_stripe.add("POST", "/v1/checkout/sessions", fixture("checkout_session"))
    client.force_login(alice)

    response = client.post("/billing/checkout/pro/")

    assert response.status_code == 302
    assert response["Location"].startswith("https://checkout.stripe.com/c/pay/")


def test_billing_pages_need_a_login(client, db):
    assert client.get("/billing/")["Location"].startswith("/accounts/login/")
    assert client.post("/billing/checkout/pro/").status_code == 302
