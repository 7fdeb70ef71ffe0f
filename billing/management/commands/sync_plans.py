"""``manage.py sync_plans``: upsert Free/Pro/Enterprise and their Stripe price ids from the environment."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from billing.services import plans_sync


class Command(BaseCommand):
    help = "Create or update the plans from billing/plans.py; Stripe price ids from STRIPE_PRICE_PRO/ENTERPRISE."

    def handle(self, *args: Any, **options: Any) -> None:
        for plan in plans_sync():
            quota = f"{plan.recommendation_quota} recs, {plan.event_quota} events / month"
            self.stdout.write(f"{plan.code:<11} {plan.price_cents / 100:>7.2f} {plan.currency.upper()}  "
                              f"{quota}  price={plan.stripe_price_id or '(none)'}")
