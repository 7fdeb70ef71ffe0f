"""Reads: plans, the plan an account is on, and this period's usage."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from .models import AccountPlan, Plan, UsageCounter, UsageKind
from .plans import FREE_CODE, PLAN_DEFINITIONS

OPERATOR_SETUP = ("set STRIPE_TEST_SECRET_KEY (or STRIPE_LIVE_SECRET_KEY with STRIPE_LIVE_MODE=true), then "
                  "STRIPE_PRICE_PRO / STRIPE_PRICE_ENTERPRISE and run `manage.py sync_plans`")


def billing_available() -> bool:
    """True when Stripe is configured on this server (an API key for the current mode): paid plans can be bought."""
    from django.conf import settings
    from djstripe.settings import djstripe_settings

    return bool(djstripe_settings.get_default_api_key(livemode=settings.STRIPE_LIVE_MODE))


def usage_period(now: datetime | None = None) -> tuple[date, datetime]:
    """(first day of this UTC month, start of next month): quotas reset at the boundary."""
    now = (now or timezone.now()).astimezone(UTC)
    start = date(now.year, now.month, 1)
    nxt = date(now.year + (now.month == 12), now.month % 12 + 1, 1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=UTC)


def plan_free() -> Plan:
    """The Free plan, created from its definition if the catalogue was never synced."""
    definition = next(d for d in PLAN_DEFINITIONS if d.code == FREE_CODE)
    plan, _ = Plan.objects.get_or_create(code=FREE_CODE, defaults={
        "name": definition.name, "price_cents": definition.price_cents, "sort_order": definition.sort_order,
        "recommendation_quota": definition.recommendation_quota, "event_quota": definition.event_quota})
    return plan


def plan_list() -> QuerySet[Plan]:
    return Plan.objects.all()


def plan_get_by_code(*, code: str) -> Plan | None:
    return Plan.objects.filter(code=code).first()


def plan_for_user(*, user: User) -> Plan:
    """The plan the account is on now; accounts without a row are on Free (one query: every metered call reads it)."""
    own = Exists(AccountPlan.objects.filter(user=user, plan=OuterRef("pk")))
    plan = Plan.objects.annotate(own=own).filter(Q(own=True) | Q(code=FREE_CODE)).order_by("-own").first()
    return plan if plan is not None else plan_free()


def plan_and_usage_for(*, user: User, kind: str, period: date) -> tuple[Plan, int]:
    """The account's plan and its count of ``kind`` this period in the database: the quota counter's seeds, in
    one query (the first metered call of a member in a counter's lifetime pays it).

    Written as SQL: built by the ORM (an Exists, a Subquery and an OR), compiling the query cost a metered first
    request more CPU than anything else it did (issue 19's profile)."""
    sql = (f"SELECT p.*, (SELECT u.count FROM {UsageCounter._meta.db_table} u WHERE u.user_id = %s "
           "AND u.api_key_id IS NULL AND u.kind = %s AND u.period = %s LIMIT 1) AS used_now "
           f"FROM {Plan._meta.db_table} p LEFT JOIN {AccountPlan._meta.db_table} a "
           "ON a.plan_id = p.id AND a.user_id = %s WHERE a.user_id IS NOT NULL OR p.code = %s "
           "ORDER BY CASE WHEN a.user_id IS NULL THEN 1 ELSE 0 END LIMIT 1")
    found = list(Plan.objects.raw(sql, [user.pk, kind, period, user.pk, FREE_CODE]))
    if not found:  # no plan rows yet (a database before plans_sync)
        return plan_free(), UsageCounter.objects.filter(user=user, api_key=None, kind=kind, period=period
                                                        ).values_list("count", flat=True).first() or 0
    return found[0], int(found[0].used_now or 0)  # type: ignore[attr-defined]


def account_plan_get(*, user: User) -> AccountPlan | None:
    return AccountPlan.objects.select_related("plan").filter(user=user).first()


def plan_next_up(*, plan: Plan) -> Plan | None:
    """The cheapest plan above this one, for upgrade hints."""
    return Plan.objects.filter(sort_order__gt=plan.sort_order).order_by("sort_order").first()


def usage_summary(*, user: User, now: datetime | None = None) -> dict[str, Any]:
    """This period's usage per kind against the plan's quota, with a per-API-key breakdown.

    Counts still pending in Redis are added to the rows first, so the numbers are exact (when Redis is
    down they stay pending and the rows may be behind by the calls of the last flush interval).
    """
    from .usage_counter import CounterUnavailable, usage_flush

    try:
        usage_flush(user_id=user.pk)
    except CounterUnavailable:
        pass
    start, end = usage_period(now)
    plan = plan_for_user(user=user)
    rows = UsageCounter.objects.filter(user=user, period=start).select_related("api_key")
    totals = {kind.value: 0 for kind in UsageKind}
    by_key: dict[int, dict[str, Any]] = {}
    for row in rows:
        key = row.api_key  # joined above (None for the account's own total)
        if key is None:
            totals[row.kind] = row.count
        else:
            entry = by_key.setdefault(key.pk, {"id": key.pk, "prefix": key.prefix, "name": key.name,
                                               **{kind.value: 0 for kind in UsageKind}})
            entry[row.kind] = row.count
    usage = {}
    for kind in UsageKind:
        limit = plan.quota_for(kind.value)
        used = totals[kind.value]
        usage[kind.value] = {"used": used, "limit": limit,
                             "remaining": None if limit is None else max(limit - used, 0)}
    return {"plan": plan.code, "plan_name": plan.name, "period_start": start.isoformat(),
            "period_end": end.isoformat().replace("+00:00", "Z"), "usage": usage,
            "api_keys": sorted(by_key.values(), key=lambda e: e["id"])}
