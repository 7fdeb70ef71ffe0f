"""``manage.py stripe_local_webhook --secret whsec_…``: accept events forwarded by ``stripe listen``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from djstripe.models import WebhookEndpoint

LOCAL_ID = "we_apex_local_stripe_cli"


class Command(BaseCommand):
    help = "Create or update a dj-stripe WebhookEndpoint whose signing secret is the one `stripe listen` prints."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--secret", required=True, help="the whsec_… secret printed by `stripe listen`")
        parser.add_argument("--base-url", default="http://localhost:8000", help="where this server listens")

    @transaction.atomic
    def handle(self, *args: Any, secret: str, base_url: str, **options: Any) -> None:
        if not secret.startswith("whsec_"):
            raise CommandError("--secret must be the webhook signing secret, starting with whsec_")
        endpoint, created = WebhookEndpoint.objects.update_or_create(id=LOCAL_ID, defaults={
            "livemode": False, "secret": secret, "url": f"{base_url.rstrip('/')}/stripe/webhook/",
            "enabled_events": ["*"], "status": "enabled"})
        path = f"/stripe/webhook/{endpoint.djstripe_uuid}/"
        self.stdout.write(f"{'Created' if created else 'Updated'} local webhook endpoint {endpoint.id}.")
        self.stdout.write(f"Forward events with:\n  stripe listen --forward-to {base_url.rstrip('/')}{path}")
