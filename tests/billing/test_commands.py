"""Management commands: sync_plans and the local webhook endpoint for `stripe listen`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from djstripe.models import WebhookEndpoint

from billing.models import Plan

from .stripe_fake import fixture

pytestmark = pytest.mark.django_db


def test_sync_plans_creates_the_three_plans_with_prices_from_the_environment(settings):
    settings.STRIPE_PRICE_PRO = "price_live_pro"
    settings.STRIPE_PRICE_ENTERPRISE = ""
    out = StringIO()
    call_command("sync_plans", stdout=out)
    assert list(Plan.objects.values_list("code", "stripe_price_id")) == [
        ("free", ""), ("pro", "price_live_pro"), ("enterprise", "")]
    assert "price=price_live_pro" in out.getvalue()


def test_a_local_webhook_endpoint_verifies_events_signed_with_the_cli_secret(alice, fake_stripe, client):
    out = StringIO()
    call_command("stripe_local_webhook", "--secret", "whsec_fromStripeListen123", stdout=out)
    endpoint = WebhookEndpoint.objects.get()
    assert f"/stripe/webhook/{endpoint.djstripe_uuid}/" in out.getvalue()

    from .conftest import WebhookSender

    customer = fixture("customer", metadata={"djstripe_subscriber": str(alice.pk)})
    fake_stripe.add("GET", f"/v1/customers/{customer['id']}", customer)
    sender = WebhookSender(client=client, url=f"/stripe/webhook/{endpoint.djstripe_uuid}/",
                           secret="whsec_fromStripeListen123")
    assert sender.send("customer.updated", customer).status_code == 200


def test_the_local_webhook_command_wants_a_signing_secret():
    with pytest.raises(CommandError, match="whsec_"):
        call_command("stripe_local_webhook", "--secret", "sk_test_oops")
