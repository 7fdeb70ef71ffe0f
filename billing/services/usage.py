"""Metering: count calls per account and API key and refuse them past the plan's monthly quota."""

from __future__ import annotations

import logging
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from rest_framework.exceptions import Throttled

from ..exceptions import QuotaExceeded
from ..models import Plan, UsageCounter, UsageKind
from ..selectors import plan_and_usage_for, plan_for_user, plan_next_up, usage_period
from ..usage_counter import Burst, CounterUnavailable, counter_consume, counter_forget

if TYPE_CHECKING:
    from accounts.models import ApiKey

logger = logging.getLogger(__name__)

# Only "over quota" is cached, briefly: it can only be stale towards refusing for OVER_QUOTA_TTL_S
# after a plan change in another process (this process clears it at once), never towards allowing.
OVER_QUOTA_TTL_S = 60


def _over_key(user_id: int, kind: str, period: object) -> str:
    return f"billing:over:{user_id}:{kind}:{period}"


def usage_consume(*, user: User, api_key: ApiKey | None = None, kind: str, amount: int = 1,
                  burst: Burst | None = None) -> bool:
    """Count ``amount`` calls of ``kind`` for the account (and key), or raise QuotaExceeded (429) and count none.

    With a Redis URL the count is one round trip to Redis (billing.usage_counter), which also checks
    ``burst`` when given (raising Throttled) and returns True; otherwise, or while Redis is down, the
    database rows are counted directly and False is returned (the caller then checks the burst itself).
    """
    if kind not in UsageKind.values:
        raise ValueError(f"unknown usage kind {kind!r}; expected one of {UsageKind.values}")
    if amount < 1:
        raise ValueError("amount must be at least 1")
    now = timezone.now()
    period, resets_at = usage_period(now)
    try:
        _consume_in_redis(user=user, api_key=api_key, kind=kind, amount=amount, burst=burst, period=period,
                          resets_at=resets_at, now=now)
        return True
    except CounterUnavailable:
        pass
    _consume_in_database(user=user, api_key=api_key, kind=kind, amount=amount, period=period,
                         resets_at=resets_at, now=now)
    return False


def _consume_in_redis(*, user: User, api_key: ApiKey | None, kind: str, amount: int,
                      burst: Burst | None, period: date, resets_at: datetime, now: datetime) -> None:
    api_key_id = getattr(api_key, "pk", None)
    consume = partial(counter_consume, user_id=user.pk, api_key_id=api_key_id, kind=kind, period=period,
                      amount=amount, burst=burst)
    outcome = consume()
    if outcome is None:  # first call of the period (or after the counter expired): seed it from the database
        plan, used = plan_and_usage_for(user=user, kind=kind, period=period)
        outcome = consume(seeds=(used, plan.quota_for(kind)))
        if outcome is None:  # cannot happen with both seeds given; never let a call through uncounted
            raise CounterUnavailable("the quota counter was not seeded")
    if outcome.counted:
        return
    if outcome.wait_s is not None:
        raise Throttled(wait=outcome.wait_s)
    raise _quota_exceeded(plan=plan_for_user(user=user), kind=kind, used=outcome.used, resets_at=resets_at,
                          now=now, amount=amount)


def _consume_in_database(*, user: User, api_key: ApiKey | None, kind: str, amount: int,
                         period: date, resets_at: datetime, now: datetime) -> None:
    if cache.get(_over_key(user.pk, kind, period)):
        plan = plan_for_user(user=user)
        raise _quota_exceeded(plan=plan, kind=kind, used=None, resets_at=resets_at, now=now)
    plan = plan_for_user(user=user)
    limit = plan.quota_for(kind)
    counters = UsageCounter.objects.filter(user=user, kind=kind, period=period)
    inside_another = connection.in_atomic_block  # e.g. the events' recording transaction: its COMMIT stays durable
    with transaction.atomic():
        if not inside_another:
            _asynchronous_commit()
        # the common case is one UPDATE per counter; the rows are created by the period's first call
        if not _increment(counters.filter(api_key=None), amount, limit):
            total, _ = UsageCounter.objects.get_or_create(user=user, api_key=None, kind=kind, period=period)
            if not _increment(UsageCounter.objects.filter(pk=total.pk), amount, limit):
                used = UsageCounter.objects.filter(pk=total.pk).values_list("count", flat=True).first() or 0
                if limit is not None and used >= limit:  # fully used: later calls may skip the database
                    cache.set(_over_key(user.pk, kind, period), True, OVER_QUOTA_TTL_S)
                raise _quota_exceeded(plan=plan, kind=kind, used=used, resets_at=resets_at, now=now, amount=amount)
        if api_key is not None and not _increment(counters.filter(api_key=api_key), amount, None):
            per_key, _ = UsageCounter.objects.get_or_create(user=user, api_key=api_key, kind=kind, period=period)
            _increment(UsageCounter.objects.filter(pk=per_key.pk), amount, None)


def _asynchronous_commit() -> None:
    """PostgreSQL: this transaction's COMMIT does not wait for the WAL flush (the fsync was most of a
    metered request's database time). A server crash can lose the last fraction of a second of counts,
    never half a transaction; the quota check itself stays atomic."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _increment(rows: QuerySet[UsageCounter], amount: int, limit: int | None) -> int:
    """Add ``amount`` to the rows, only where it keeps them within ``limit``: check and increment in one
    UPDATE, so concurrent calls cannot both pass. Returns the number of rows updated."""
    if limit is not None:
        rows = rows.filter(count__lte=limit - amount)
    return rows.update(count=F("count") + amount)


def usage_forget_over_quota(*, user_id: int) -> None:
    """Drop the cached refusals after a plan change, so a new quota applies at once."""
    period, _ = usage_period()
    cache.delete_many([_over_key(user_id, kind, period) for kind in UsageKind.values])
    try:
        counter_forget(user_id=user_id, kinds=list(UsageKind.values))
    except CounterUnavailable:
        pass  # Redis down: the cached limits expire within usage_counter.LIMIT_TTL_S


def _quota_exceeded(*, plan: Plan, kind: str, used: int | None, resets_at: datetime, now: datetime,
                    amount: int = 1) -> QuotaExceeded:
    limit = plan.quota_for(kind) or 0
    used = limit if used is None else used
    label = UsageKind(kind).label.lower()
    resets = resets_at.isoformat().replace("+00:00", "Z")
    asked = "" if amount == 1 else f" This request needs {amount:,}."
    detail = (f"Monthly quota exceeded: the {plan.name} plan includes {limit:,} {label} per month "
              f"and {used:,} are used this period.{asked} The quota resets at {resets}.")
    upgrade_to = plan_next_up(plan=plan)
    if upgrade_to is not None:
        upgrade = (f"Upgrade to {upgrade_to.name} for {upgrade_to.quota_for(kind) or 0:,} {label} per month: "
                   f"visit /billing/ or POST /v1/billing/checkout with {{\"plan\": \"{upgrade_to.code}\"}}.")
    else:
        upgrade = "You are on the largest plan; contact us to raise the limit."
    logger.info("quota exceeded: user plan=%s kind=%s used=%s limit=%s", plan.code, kind, used, limit)
    body = {"detail": detail, "code": "quota_exceeded", "kind": kind, "plan": plan.code, "limit": limit,
            "used": used, "resets_at": resets, "upgrade": upgrade,
            "upgrade_plan": upgrade_to.code if upgrade_to else None}
    return QuotaExceeded(body, wait_s=max(int((resets_at - now).total_seconds()), 1))
