"""Public endpoints that run a model (issue 20): anonymous callers get their own throttle (429 past it); keyed
callers are metered against their plan's quota instead."""

from __future__ import annotations

import pytest
from django.test import Client

from apex_site.client_ip import PublicModelRateThrottle
from billing.selectors import usage_summary

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """The public-model budget at 2 per minute (DRF reads the rates once, into the class)."""
    monkeypatch.setattr(PublicModelRateThrottle, "THROTTLE_RATES", {**PublicModelRateThrottle.THROTTLE_RATES,
                                                                    "anon_model": "2/min"})


def test_anonymous_callers_are_throttled_past_the_public_model_rate(tiny_serving, two_a_minute) -> None:  # noqa: ANN001
    client = Client()
    assert [client.get("/v1/recommendations/id/101", {"k": 3}).status_code for _ in range(2)] == [200, 200]
    refused = client.get("/v1/recommendations/id/101", {"k": 3})
    assert refused.status_code == 429 and refused.json()["code"] == "throttled" and int(refused["Retry-After"]) > 0
    # one budget across the public model endpoints, apart from the general anonymous one
    assert client.get("/v1/recommendations/knowledge-graph/101").status_code == 429
    assert client.get("/v1/movies/101").status_code == 200
    # another address has its own budget
    assert client.get("/v1/recommendations/id/101", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_keyed_callers_are_metered_not_held_to_the_anonymous_rate(tiny_serving, two_a_minute, alice,  # noqa: ANN001
                                                                  api_key_for_alice) -> None:  # noqa: ANN001
    client = Client()
    statuses = [client.get("/v1/recommendations/id/101", {"k": 3}, **api_key_for_alice.headers).status_code
                for _ in range(4)]
    assert statuses == [200] * 4
    usage = usage_summary(user=alice)
    assert usage["usage"]["recommendations"]["used"] == 4
    assert [(k["prefix"], k["recommendations"]) for k in usage["api_keys"]] == [(api_key_for_alice.key.prefix, 4)]


def test_a_keyed_caller_past_the_quota_gets_429(tiny_serving, alice, api_key_for_alice, plans) -> None:  # noqa: ANN001
    plans["free"].recommendation_quota = 2
    plans["free"].save(update_fields=["recommendation_quota"])
    client = Client()
    statuses = [client.get("/v1/recommendations/id/101", {"k": 3}, **api_key_for_alice.headers).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert client.get("/v1/recommendations/id/101", {"k": 3}, **api_key_for_alice.headers).json()["code"] == \
        "quota_exceeded"
