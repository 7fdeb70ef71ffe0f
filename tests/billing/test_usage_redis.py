"""Quota counting in Redis: one round trip per call, flushed to the rows, and the database path when Redis is down."""

from __future__ import annotations

import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from billing import usage_counter
from billing.models import Plan, UsageCounter
from billing.quota import QuotaMixin
from billing.services import account_plan_set, usage_consume
from billing.tasks import flush_usage_counters
from billing.throttles import BurstThrottle

pytestmark = pytest.mark.django_db


class MeteredApi(QuotaMixin, APIView):
    permission_classes = [IsAuthenticated]
    quota_kind = "recommendations"

    def get(self, request):  # noqa: ANN001, ANN201
        return Response({"ok": True})


def _call(user, api_key=None):  # noqa: ANN001, ANN202
    request = APIRequestFactory().get("/metered")
    force_authenticate(request, user=user, token=api_key)
    return MeteredApi.as_view()(request)


@pytest.fixture
def tiny_free_quota(plans):  # noqa: ANN001, ANN201
    Plan.objects.filter(code="free").update(recommendation_quota=3, event_quota=5)


@pytest.fixture
def redis_counter(settings, monkeypatch):  # noqa: ANN001, ANN201
    """The quota counter in the Redis of REDIS_URL (skipped without one)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs REDIS_URL")
    settings.REDIS_URL, settings.BILLING_USAGE_COUNTER = url, "redis"
    monkeypatch.setattr(usage_counter, "_broken_until", 0.0)
    client = usage_counter._client_for(url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def redis_down(settings, monkeypatch):  # noqa: ANN001, ANN201
    """A Redis URL nobody answers on: every counter call fails at connect."""
    settings.REDIS_URL, settings.BILLING_USAGE_COUNTER = "redis://127.0.0.1:1/0", "redis"
    monkeypatch.setattr(usage_counter, "_broken_until", 0.0)


def _rows(user, kind="recommendations"):  # noqa: ANN001, ANN202
    return dict(UsageCounter.objects.filter(user=user, kind=kind).values_list("api_key", "count"))


@pytest.mark.services
def test_a_steady_metered_call_is_one_redis_round_trip_and_no_sql(alice, api_key_for_alice, plans, redis_counter):
    usage_consume(user=alice, api_key=api_key_for_alice.key, kind="recommendations")  # seeds counter and limit
    with CaptureQueriesContext(connection) as queries:
        assert usage_consume(user=alice, api_key=api_key_for_alice.key, kind="recommendations") is True
    assert queries.captured_queries == []
    assert _rows(alice) == {}  # not in the rows until flushed

    assert flush_usage_counters() == 2

    assert _rows(alice) == {None: 2, api_key_for_alice.key.pk: 2}
    assert flush_usage_counters() == 0  # flushed counts are subtracted: never added twice
    assert _rows(alice) == {None: 2, api_key_for_alice.key.pk: 2}


@pytest.mark.services
def test_redis_refuses_past_the_quota_and_the_usage_api_shows_exact_numbers(alice, api_key_for_alice,
                                                                               tiny_free_quota, redis_counter):
    assert [_call(alice, api_key_for_alice.key).status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = _call(alice)
    assert refused.status_code == 429 and refused.data["used"] == 3 and refused.data["code"] == "quota_exceeded"

    usage = APIClient().get("/v1/billing/usage", **api_key_for_alice.headers).json()  # flushes on read

    assert usage["usage"]["recommendations"] == {"used": 3, "limit": 3, "remaining": 0}
    assert [(k["prefix"], k["recommendations"]) for k in usage["api_keys"]] == [(api_key_for_alice.key.prefix, 3)]


@pytest.mark.services
def test_redis_counter_starts_from_the_rows_counted_before(alice, tiny_free_quota, redis_counter, settings):
    settings.BILLING_USAGE_COUNTER = "database"
    assert [_call(alice).status_code for _ in range(2)] == [200, 200]
    settings.BILLING_USAGE_COUNTER = "redis"

    assert [_call(alice).status_code for _ in range(2)] == [200, 429]
    usage_counter.usage_flush(user_id=alice.pk)
    assert _rows(alice) == {None: 3}


@pytest.mark.services
def test_a_plan_change_applies_to_the_next_call_with_redis(alice, plans, tiny_free_quota, redis_counter):
    assert [_call(alice).status_code for _ in range(4)] == [200, 200, 200, 429]
    account_plan_set(user=alice, plan=plans["pro"], subscription_id="sub_x", status="active")
    assert _call(alice).status_code == 200


@pytest.mark.services
def test_the_burst_throttle_is_checked_in_the_same_round_trip(alice, bob, redis_counter, monkeypatch):
    monkeypatch.setattr(BurstThrottle, "THROTTLE_RATES", {"burst": "2/min"})
    responses = [_call(alice) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert int(responses[2]["Retry-After"]) > 0
    assert _call(bob).status_code == 200
    usage_counter.usage_flush(user_id=alice.pk)
    assert _rows(alice) == {None: 2}  # the throttled call was not counted against the quota


def test_redis_down_counts_in_the_database_and_still_refuses_past_the_quota(alice, tiny_free_quota, redis_down):
    assert [_call(alice).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert _rows(alice) == {None: 3}
    assert usage_counter._broken_until > 0  # later calls skip Redis for a few seconds instead of retrying each time


def test_without_redis_the_usage_page_reads_the_rows(alice, api_key_for_alice, tiny_free_quota, settings):
    settings.REDIS_URL = ""
    assert [_call(alice, api_key_for_alice.key).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert flush_usage_counters() == 0
    usage = APIClient().get("/v1/billing/usage", **api_key_for_alice.headers).json()
    assert usage["usage"]["recommendations"]["used"] == 3


class UnmeteredApi(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):  # noqa: ANN001, ANN201
        return Response({"ok": True})


@pytest.mark.services
def test_an_unmetered_call_checks_its_burst_limit_in_one_redis_round_trip(alice, redis_counter, monkeypatch):
    monkeypatch.setattr(BurstThrottle, "THROTTLE_RATES", {"burst": "2/min"})
    sent: list[tuple] = []
    real = type(redis_counter).execute_command
    monkeypatch.setattr(type(redis_counter), "execute_command",
                        lambda self, *args, **kw: sent.append(args) or real(self, *args, **kw))

    def call():  # noqa: ANN202
        request = APIRequestFactory().get("/unmetered")
        force_authenticate(request, user=alice)
        return UnmeteredApi.as_view()(request)

    responses = [call() for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert int(responses[2]["Retry-After"]) > 0
    assert [a[0] for a in sent if a[0] != "SCRIPT LOAD"] == ["EVALSHA"] * 3  # one script per call, no GET + SET
    assert redis_counter.get(f"billing:throttle_burst_user:{alice.pk}") == "3"  # the window the quota shares


@pytest.mark.services
def test_a_first_metered_call_seeds_plan_and_usage_in_one_query(alice, api_key_for_alice, plans, redis_counter):
    account_plan_set(user=alice, plan=plans["pro"], subscription_id="sub_x", status="active")
    UsageCounter.objects.create(user=alice, api_key=None, kind="recommendations",
                                period=usage_counter_period(), count=7)
    with CaptureQueriesContext(connection) as queries:
        assert usage_consume(user=alice, api_key=api_key_for_alice.key, kind="recommendations") is True
    assert len(queries.captured_queries) == 1
    assert redis_counter.get(f"billing:limit:{alice.pk}:recommendations") == str(plans["pro"].recommendation_quota)
    assert int(redis_counter.get(f"billing:usage:{alice.pk}:recommendations:{usage_counter_period().isoformat()}")) == 8


def usage_counter_period():  # noqa: ANN201
    from billing.selectors import usage_period

    return usage_period()[0]
