"""Checkout → signed webhook → plan active, through the real stripe client and dj-stripe's webhook view."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from billing.selectors import plan_for_user

from .stripe_fake import fixture

pytestmark = pytest.mark.django_db

CUSTOMER = "cus_RApexAlice0001"
SUBSCRIPTION = "sub_1QApexAlicePro000000001"


def _serve_customer_and_subscription(fake_stripe, alice, **sub_overrides):  # noqa: ANN001, ANN202
    customer = fixture("customer", email=alice.email, metadata={"djstripe_subscriber": str(alice.pk)})
    fake_stripe.add("POST", "/v1/customers", customer)
    fake_stripe.add("GET", f"/v1/customers/{CUSTOMER}", customer)
    subscription = fixture("subscription", **sub_overrides)
    fake_stripe.add("GET", f"/v1/subscriptions/{SUBSCRIPTION}", subscription)
    return subscription


def test_checkout_returns_the_stripe_redirect_for_the_pro_price(alice, fake_stripe):
    _serve_customer_and_subscription(fake_stripe, alice)
    fake_stripe.add("POST", "/v1/checkout/sessions", fixture("checkout_session"))
    api = APIClient()
    api.force_authenticate(alice)

    response = api.post("/v1/billing/checkout", {"plan": "pro"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    (call,) = fake_stripe.called("POST", "/v1/checkout/sessions")
    assert call.params["line_items[0][price]"] == ["price_1QApexPro000000000000000"]
    assert call.params["customer"] == [CUSTOMER]
    assert call.params["mode"] == ["subscription"]
    assert call.params["metadata[apex_plan]"] == ["pro"]
    assert call.headers["Authorization"].startswith("Bearer sk_test_")


def test_signed_subscription_webhook_puts_the_account_on_pro_at_once(alice, fake_stripe, stripe_webhook):
    subscription = _serve_customer_and_subscription(fake_stripe, alice)
    from billing.services import billing_customer_get_or_create

    billing_customer_get_or_create(user=alice)
    assert plan_for_user(user=alice).code == "free"

    response = stripe_webhook.send("customer.subscription.created", subscription)

    assert response.status_code == 200, response.content
    assert plan_for_user(user=alice).code == "pro"
