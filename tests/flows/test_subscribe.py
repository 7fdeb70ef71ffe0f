"""Journey: a member upgrades to Pro — account page → Stripe Checkout (recorded fake) → signed webhook → Pro."""

from __future__ import annotations

import re
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.portal import PortalServer
from tests.billing.stripe_fake import fixture

from .conftest import sign_in
from .stripe_server import WEBHOOK_SECRET, StripeServer

pytestmark = pytest.mark.browser

CHECKOUT_PAGE = """<!doctype html><html lang="en"><head><title>Stripe Checkout (recorded)</title></head>
<body><main><h1>Subscribe to APEX Pro</h1><p>$29.00 per month</p>
<a href="{success}">Pay and subscribe</a></main></body></html>"""


def _webhook_endpoint(portal: PortalServer) -> str:
    """The operator's dj-stripe webhook endpoint (signing secret known to the fake); returns its URL path."""
    out = portal.shell(
        "from djstripe.models import WebhookEndpoint\n"
        "e, _ = WebhookEndpoint.objects.get_or_create(id='we_1QApexBrowserJourney01', defaults=dict(\n"
        f"    livemode=False, secret={WEBHOOK_SECRET!r}, url='https://apex.example/stripe/webhook/',\n"
        "    enabled_events=['*'], status='enabled', api_version='2026-05-27.dahlia'))\n"
        "print(e.djstripe_uuid)\n")
    return f"/stripe/webhook/{out.strip().splitlines()[-1]}/"


def test_subscribe_to_pro_through_stripe_checkout(page: Any, base_url: str, portal: PortalServer,
                                                  stripe_server: StripeServer, member: dict[str, str]) -> None:
    webhook = _webhook_endpoint(portal)
    sign_in(page, base_url, member, next_path="/me/")
    page.goto(f"{base_url}/me/")
    expect(page.locator("[data-plan]")).to_have_attribute("data-plan", "free")

    # Stripe's hosted checkout page, answered offline; paying returns to APEX's success URL.
    page.route("https://checkout.stripe.com/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=CHECKOUT_PAGE.format(success=stripe_server.checkout_success_url())))
    page.get_by_role("button", name=re.compile("Upgrade to Pro")).click()
    expect(page).to_have_url(re.compile(r"^https://checkout\.stripe\.com/c/pay/cs_test_"))
    page.get_by_role("link", name="Pay and subscribe").click()
    expect(page).to_have_url(re.compile(r"/billing/\?checkout=success"))

    # Stripe confirms the subscription with a signed webhook; the plan applies at once.
    payload, signature = stripe_server.signed_event("customer.subscription.created", fixture("subscription"))
    request = urllib.request.Request(f"{base_url}{webhook}", data=payload.encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Stripe-Signature": signature})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    page.goto(f"{base_url}/me/")
    expect(page.locator("[data-plan]")).to_have_attribute("data-plan", "pro")
    expect(page.get_by_role("button", name="Manage subscription")).to_be_visible()
