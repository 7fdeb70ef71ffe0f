"""Concurrent metering on PostgreSQL: the conditional UPDATE never lets an account past its quota."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from billing.exceptions import QuotaExceeded
from billing.models import Plan, UsageCounter
from billing.selectors import plan_free
from billing.services import usage_consume
from billing.usage_counter import usage_flush
from tests.factories import UserFactory

QUOTA, THREADS, CALLS = 25, 8, 10


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("counter", ["database", "redis"])
def test_parallel_calls_stop_exactly_at_the_quota(counter, settings):
    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency is only meaningful on PostgreSQL")
    if counter == "redis" and not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    settings.BILLING_USAGE_COUNTER = counter
    plan_free()
    Plan.objects.filter(code="free").update(recommendation_quota=QUOTA)
    user = UserFactory(username="racer")

    def worker(_: int) -> int:
        accepted = 0
        try:
            for _ in range(CALLS):
                try:
                    usage_consume(user=user, kind="recommendations")
                    accepted += 1
                except QuotaExceeded:
                    pass
        finally:
            connections.close_all()
        return accepted

    with ThreadPoolExecutor(THREADS) as pool:
        accepted = sum(pool.map(worker, range(THREADS)))

    assert accepted == QUOTA
    usage_flush(user_id=user.pk)
    assert UsageCounter.objects.get(user=user, api_key=None).count == QUOTA
