"""The Redis cache backend fails soft: a dead Redis is a miss, never an error (apex_site/cache.py)."""

from __future__ import annotations

import shutil
import signal

import pytest

import apex_site.cache
from apex_site.cache import SharedRedisCache
from tests.events.processes import free_port


def test_a_dead_redis_is_a_cache_miss_and_writes_are_dropped() -> None:
    cache = SharedRedisCache(f"redis://127.0.0.1:{free_port()}/0", {})  # nothing listens there
    assert cache.available()
    assert cache.get("k", "default") == "default"
    assert not cache.available()  # the breaker opened: the next calls do not even try
    assert cache.get_many(["a", "b"]) == {}
    cache.set("k", 1, 30)
    cache.set_many({"a": 1}, 30)
    assert cache.add("k", 1, 30) is False
    assert cache.delete("k") is False
    cache.delete_many(["a", "b"])
    assert cache.has_key("k") is False


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_a_delete_that_could_not_reach_redis_is_made_when_it_answers_again(monkeypatch) -> None:  # noqa: ANN001
    from tests.reliability.servers import EphemeralRedis

    monkeypatch.setattr(apex_site.cache, "BREAKER_S", 0.0)  # try Redis again on the very next call
    server = EphemeralRedis()
    server.start()
    try:
        cache = SharedRedisCache(server.url, {})
        cache.set("revoked-key", "cached copy", 300)
        server.proc.send_signal(signal.SIGSTOP)  # hung, not gone: its data survives the outage
        try:
            cache.delete("revoked-key")  # times out (2 s); remembered
        finally:
            server.proc.send_signal(signal.SIGCONT)
        assert cache.get("revoked-key") is None  # the remembered delete went first
    finally:
        server.stop()


def test_with_redis_down_the_burst_limit_still_holds_in_each_process(settings, monkeypatch) -> None:  # noqa: ANN001
    from rest_framework.permissions import AllowAny
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory
    from rest_framework.views import APIView

    from billing.throttles import BurstThrottle

    class Limited(APIView):
        permission_classes = [AllowAny]
        throttle_classes = [BurstThrottle]

        def get(self, request):  # noqa: ANN001, ANN202
            return Response({"ok": True})

    settings.CACHES = {"default": {"BACKEND": "apex_site.cache.SharedRedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}  # nothing listens there
    monkeypatch.setattr(apex_site.cache, "_fallback", None)
    monkeypatch.setattr(BurstThrottle, "THROTTLE_RATES", {"burst": "2/min"})
    view = Limited.as_view()
    statuses = [view(APIRequestFactory().get("/limited", REMOTE_ADDR="203.0.113.7")).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
