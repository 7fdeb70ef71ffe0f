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


def test_a_badly_signed_webhook_is_refused_and_changes_nothing(alice, fake_stripe, stripe_webhook):
    subscription = _serve_customer_and_subscription(fake_stripe, alice)

    response = stripe_webhook.send("customer.subscription.created", subscription, secret="whsec_wrong")

    assert response.status_code == 400
    assert plan_for_user(user=alice).code == "free"
    assert not fake_stripe.called("GET", f"/v1/subscriptions/{SUBSCRIPTION}")


def test_cancelling_returns_the_account_to_free(alice, fake_stripe, stripe_webhook):
    active = _serve_customer_and_subscription(fake_stripe, alice)
    stripe_webhook.send("customer.subscription.created", active, event_id="evt_1QApexCreated")
    assert plan_for_user(user=alice).code == "pro"

    canceled = fixture("subscription", status="canceled", canceled_at=1764200000, ended_at=1764200000)
    fake_stripe.add("GET", f"/v1/subscriptions/{SUBSCRIPTION}", canceled)
    response = stripe_webhook.send("customer.subscription.deleted", canceled, event_id="evt_1QApexDeleted")

    assert response.status_code == 200
    assert plan_for_user(user=alice).code == "free"


def test_the_canonical_subscription_wins_over_a_stale_event_body(alice, fake_stripe, stripe_webhook):
    """dj-stripe re-fetches the subscription, so a replayed 'active' event after cancellation keeps Free."""
    _serve_customer_and_subscription(fake_stripe, alice, status="canceled")
    stale = fixture("subscription")  # says active

    stripe_webhook.send("customer.subscription.updated", stale)

    assert plan_for_user(user=alice).code == "free"


def test_an_unpaid_checkout_does_not_grant_the_plan(alice, fake_stripe, stripe_webhook):
    incomplete = _serve_customer_and_subscription(fake_stripe, alice, status="incomplete")
    assert stripe_webhook.send("customer.subscription.created", incomplete).status_code == 200
    assert plan_for_user(user=alice).code == "free"


def test_a_second_checkout_is_sent_to_the_portal(bob, fake_stripe):
    api = APIClient()
    api.force_authenticate(bob)
    response = api.post("/v1/billing/checkout", {"plan": "enterprise"}, format="json")
    assert response.status_code == 409
    assert "billing portal" in response.json()["detail"]
    assert not fake_stripe.calls


def test_checkout_needs_a_paid_plan_and_configured_stripe(alice, settings, fake_stripe, caplog):
    api = APIClient()
    api.force_authenticate(alice)
    assert api.post("/v1/billing/checkout", {"plan": "free"}, format="json").status_code == 400
    assert api.post("/v1/billing/checkout", {"plan": "gold"}, format="json").status_code == 400
    settings.STRIPE_TEST_SECRET_KEY = ""
    with caplog.at_level("ERROR", logger="billing.services.subscriptions"):
        unconfigured = api.post("/v1/billing/checkout", {"plan": "pro"}, format="json")
    assert unconfigured.status_code == 503
    assert unconfigured.json()["detail"] == "Paid plans are not available on this server yet."  # no operator notes
    assert "STRIPE_TEST_SECRET_KEY" in caplog.text  # the operator's instructions are in the log


def test_without_stripe_customers_see_a_plain_notice_and_no_dead_buttons(client, alice, settings,
                                                                        django_user_model) -> None:  # noqa: ANN001
    settings.STRIPE_TEST_SECRET_KEY = ""
    client.force_login(alice)
    for page in ("/billing/", "/me/"):
        html = client.get(page).content.decode()
        assert "Paid plans are not available on this server yet." in html
        assert "STRIPE" not in html and "checkout" not in html.lower().split("</header>")[-1].split("<footer")[0]
        assert "Manage billing" not in html and "data-upgrade" not in html
    operator = django_user_model.objects.create_superuser("ops", "ops@example.com", "x")
    client.force_login(operator)
    admin_page = client.get("/admin/billing/plan/", follow=True).content.decode()
    assert "Paid plans cannot be bought yet" in admin_page and "STRIPE_TEST_SECRET_KEY" in admin_page


def test_stripe_errors_become_a_502_with_a_plain_message(alice, fake_stripe):
    fake_stripe.add("POST", "/v1/customers", {"error": {
        "type": "invalid_request_error", "code": "email_invalid", "param": "email",
        "message": "Invalid email address: alice@example.com"}}, status=400)
    api = APIClient()
    api.force_authenticate(alice)
    response = api.post("/v1/billing/checkout", {"plan": "pro"}, format="json")
    assert response.status_code == 502
    assert "payment provider" in response.json()["detail"]


def test_the_portal_returns_a_stripe_url_for_the_callers_customer(alice, fake_stripe):
    _serve_customer_and_subscription(fake_stripe, alice)
    fake_stripe.add("POST", "/v1/billing_portal/sessions", fixture("billing_portal_session"))
    api = APIClient()
    api.force_authenticate(alice)

    response = api.post("/v1/billing/portal", {}, format="json")

    assert response.status_code == 201
    assert response.json()["url"].startswith("https://billing.stripe.com/p/session/")
    (call,) = fake_stripe.called("POST", "/v1/billing_portal/sessions")
    assert call.params["customer"] == [CUSTOMER]
    assert call.params["return_url"] == ["http://testserver/billing/"]
