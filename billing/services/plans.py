"""Keep the Plan table in step with the catalogue in code and the Stripe price ids in settings."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from ..models import AccountPlan, Plan
from ..plans import PLAN_DEFINITIONS
from .usage import usage_forget_over_quota

logger = logging.getLogger(__name__)


@transaction.atomic
def plans_sync() -> list[Plan]:
    """Upsert Free/Pro/Enterprise from PLAN_DEFINITIONS; price ids from STRIPE_PRICE_* when set."""
    plans = []
    for definition in PLAN_DEFINITIONS:
        values = {"name": definition.name, "price_cents": definition.price_cents,
                  "recommendation_quota": definition.recommendation_quota, "event_quota": definition.event_quota,
                  "sort_order": definition.sort_order}
        price_id = getattr(settings, definition.price_env, "") if definition.price_env else ""
        if price_id:
            values["stripe_price_id"] = price_id
        plan, created = Plan.objects.update_or_create(code=definition.code, defaults=values)
        logger.info("plan %s %s (price %s)", plan.code, "created" if created else "updated",
                    plan.stripe_price_id or "-")
        plans.append(plan)
    return plans


def account_plan_set(*, user: User, plan: Plan, subscription_id: str = "", status: str = "",
                     current_period_end: datetime | None = None) -> AccountPlan:
    """Put an account on a plan now; the new quota applies to the very next call."""
    account_plan, _ = AccountPlan.objects.update_or_create(user=user, defaults={
        "plan": plan, "stripe_subscription_id": subscription_id, "status": status,
        "current_period_end": current_period_end})
    usage_forget_over_quota(user_id=user.pk)  # now, and again once committed (a refusal may land in between)
    transaction.on_commit(lambda: usage_forget_over_quota(user_id=user.pk))
    logger.info("user %s now on plan %s (subscription %s, %s)", user.pk, plan.code, subscription_id or "-",
                status or "-")
    return account_plan
