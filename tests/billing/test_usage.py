"""Metering and quotas: counted per account and key, refused with a clear 429 past the plan's quota."""

from __future__ import annotations

import pytest
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from billing.exceptions import QuotaExceeded
from billing.models import Plan, UsageCounter
from billing.quota import QuotaMixin
from billing.services import account_plan_set, usage_consume
from billing.throttles import BurstThrottle
from billing.usage_counter import usage_flush

pytestmark = pytest.mark.django_db


class MeteredApi(QuotaMixin, APIView):
    permission_classes = [IsAuthenticated]
    quota_kind = "recommendations"

    def get(self, request):  # noqa: ANN001, ANN201
        return Response({"ok": True})


@pytest.fixture
def tiny_free_quota(plans):  # noqa: ANN001, ANN201
    Plan.objects.filter(code="free").update(recommendation_quota=3, event_quota=5)


def _call(user, api_key=None):  # noqa: ANN001, ANN202
    request = APIRequestFactory().get("/metered")
    force_authenticate(request, user=user, token=api_key)
    return MeteredApi.as_view()(request)


def test_calls_past_the_quota_get_429_with_a_reason_and_an_upgrade_hint(alice, tiny_free_quota):
    assert [_call(alice).status_code for _ in range(3)] == [200, 200, 200]

    refused = _call(alice)

    assert refused.status_code == 429
    body = refused.data
    assert body["code"] == "quota_exceeded" and body["plan"] == "free"
    assert body["limit"] == 3 and body["used"] == 3
    assert "Monthly quota exceeded" in body["detail"] and "resets at" in body["detail"]
    assert "Upgrade to Pro" in body["upgrade"] and body["upgrade_plan"] == "pro"
    assert int(refused["Retry-After"]) > 0
    usage_flush(user_id=alice.pk)  # counted in Redis when REDIS_URL is set: add the pending counts to the rows
    assert UsageCounter.objects.get(user=alice, api_key=None, kind="recommendations").count == 3


def test_usage_is_counted_per_account_and_per_key(alice, api_key_for_alice, tiny_free_quota):
    _call(alice, api_key_for_alice.key)
    _call(alice, api_key_for_alice.key)
    _call(alice)

    usage = APIClient().get("/v1/billing/usage", **api_key_for_alice.headers).json()

    assert usage["plan"] == "free"
    assert usage["usage"]["recommendations"] == {"used": 3, "limit": 3, "remaining": 0}
    assert usage["usage"]["events"] == {"used": 0, "limit": 5, "remaining": 5}
    assert [(k["prefix"], k["recommendations"]) for k in usage["api_keys"]] == [(api_key_for_alice.key.prefix, 2)]


def test_a_new_plan_applies_to_the_very_next_call(alice, plans, tiny_free_quota):
    for _ in range(3):
        _call(alice)
    assert _call(alice).status_code == 429

    account_plan_set(user=alice, plan=plans["pro"], subscription_id="sub_x", status="active")

    assert _call(alice).status_code == 200


def test_a_batch_is_all_or_nothing_against_the_quota(alice, tiny_free_quota):
    usage_consume(user=alice, kind="events", amount=4)
    with pytest.raises(QuotaExceeded):
        usage_consume(user=alice, kind="events", amount=2)
    usage_consume(user=alice, kind="events", amount=1)
    usage_flush(user_id=alice.pk)
    assert UsageCounter.objects.get(user=alice, api_key=None, kind="events").count == 5


def test_unknown_kinds_are_a_programming_error(alice):
    with pytest.raises(ValueError, match="unknown usage kind"):
        usage_consume(user=alice, kind="downloads")


def test_enterprise_at_its_limit_is_told_to_contact_us(bob, plans):
    Plan.objects.filter(code="enterprise").update(recommendation_quota=1)
    account_plan_set(user=bob, plan=Plan.objects.get(code="enterprise"))
    usage_consume(user=bob, kind="recommendations")
    with pytest.raises(QuotaExceeded) as refused:
        usage_consume(user=bob, kind="recommendations")
    assert "largest plan" in refused.value.detail["upgrade"]


def test_bursts_are_throttled_per_caller(alice, bob, monkeypatch):
    monkeypatch.setattr(BurstThrottle, "THROTTLE_RATES", {"burst": "2/min"})
    assert [_call(alice).status_code for _ in range(3)] == [200, 200, 429]
    assert _call(bob).status_code == 200  # a different caller has its own budget


def test_plans_are_public_and_mark_the_callers_plan(bob):
    anonymous = APIClient().get("/v1/billing/plans").json()
    assert [p["code"] for p in anonymous["plans"]] == ["free", "pro", "enterprise"]
    assert anonymous["current"] is None
    assert anonymous["plans"][1]["recommendation_quota"] == 100_000 and anonymous["plans"][1]["purchasable"]

    api = APIClient()
    api.force_authenticate(bob)
    assert api.get("/v1/billing/plans").json()["current"] == "pro"


def test_a_metered_call_is_one_plan_read_and_one_update_per_counter(alice, api_key_for_alice, plans, settings):
    from django.db import connection

    settings.BILLING_USAGE_COUNTER = "database"  # the path without Redis (tests/billing/test_usage_redis.py: with)
    from django.test.utils import CaptureQueriesContext

    usage_consume(user=alice, api_key=api_key_for_alice.key, kind="recommendations")  # creates the counters
    with CaptureQueriesContext(connection) as queries:
        usage_consume(user=alice, api_key=api_key_for_alice.key, kind="recommendations")
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert [s for s in statements if s in ("SELECT", "INSERT", "UPDATE")] == ["SELECT", "UPDATE", "UPDATE"]
    counts = dict(UsageCounter.objects.filter(user=alice, kind="recommendations").values_list("api_key", "count"))
    assert counts == {None: 2, api_key_for_alice.key.pk: 2}


def test_a_quota_counted_inside_another_transaction_leaves_its_commit_durable(alice, plans, settings):
    """The database counter commits asynchronously on its own; inside the events' recording transaction it must not
    (SET LOCAL would make the events' COMMIT asynchronous too)."""
    from django.db import connection, transaction

    from billing.services import usage_consume

    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    settings.BILLING_USAGE_COUNTER = "database"
    with transaction.atomic(), connection.cursor() as cursor:
        usage_consume(user=alice, kind="events")
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
