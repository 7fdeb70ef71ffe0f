"""Seed Free, Pro and Enterprise (prices and quotas as of this migration; sync_plans updates them later)."""

import os

from django.db import migrations

PLANS = [
    # code, name, price_cents, recommendation_quota, event_quota, price env var, sort_order
    ("free", "Free", 0, 1_000, 10_000, "", 0),
    ("pro", "Pro", 2_900, 100_000, 1_000_000, "STRIPE_PRICE_PRO", 1),
    ("enterprise", "Enterprise", 29_900, 2_000_000, 20_000_000, "STRIPE_PRICE_ENTERPRISE", 2),
]


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for code, name, price, recs, events, env, order in PLANS:
        Plan.objects.update_or_create(code=code, defaults={
            "name": name, "price_cents": price, "recommendation_quota": recs, "event_quota": events,
            "sort_order": order, "stripe_price_id": os.environ.get(env, "") if env else ""})


def unseed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    Plan.objects.filter(code__in=[p[0] for p in PLANS], accounts__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
