"""The Redis cache backend shares one client (pool) per process instead of one per ASGI request."""

from __future__ import annotations

import contextvars
import os

import pytest
from django.core.cache import caches

from apex_site.cache import SharedRedisCache


def test_backend_instances_share_one_client_and_one_redis_object() -> None:
    a = SharedRedisCache("redis://127.0.0.1:6379/9", {})
    b = SharedRedisCache("redis://127.0.0.1:6379/9", {})
    other = SharedRedisCache("redis://127.0.0.1:6379/10", {})
    assert a._cache is b._cache and a._cache is not other._cache
    assert a._cache.get_client() is b._cache.get_client()
    assert a._cache.get_client().connection_pool is b._cache.get_client(write=True).connection_pool


@pytest.mark.services
def test_each_request_context_gets_a_backend_but_the_same_connection_pool(settings) -> None:  # noqa: ANN001
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL")

    def request() -> object:
        cache = caches["default"]
        cache.set("apex:test:shared", 7, 30)
        assert cache.get("apex:test:shared") == 7
        return cache

    # an ASGI request runs in a context of its own, where Django's handler finds no backend yet
    first, second = contextvars.Context().run(request), contextvars.Context().run(request)
    assert first is not second  # Django's handler made a backend per context ...
    assert first._cache.get_client() is second._cache.get_client()  # ... over one client and pool
