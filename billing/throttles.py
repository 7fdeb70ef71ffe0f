"""Burst limits per API key, user or client address, counted in the cache (Redis when REDIS_URL is set).

While Redis is down the counts are kept per process (``apex_site.cache.counting_cache``): the limit then
holds in each process instead of across them, never not at all (docs/BILLING.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.throttling import SimpleRateThrottle

from accounts.selectors import request_api_key
from apex_site.cache import counting_cache
from apex_site.client_ip import ClientIpThrottleMixin

from .usage_counter import Burst, CounterUnavailable, burst_consume, counter_enabled

if TYPE_CHECKING:  # DRF loads this module while it defines APIView (the default throttle): no views import here
    from rest_framework.request import Request
    from rest_framework.views import APIView


class BurstThrottle(ClientIpThrottleMixin, SimpleRateThrottle):  # get_ident: the real client address
    """Short-window rate limit (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["burst"], e.g. 120/min)."""

    scope = "burst"
    # set by SimpleRateThrottle.__init__ from the rate (None without one); the DRF stubs leave them out
    num_requests: int | None
    duration: int | None

    _redis_wait: int | None = None

    @property  # type: ignore[override]
    def cache(self):  # noqa: ANN201 - Django's BaseCache
        return counting_cache()

    def allow_request(self, request: Request, view: APIView) -> bool:
        """With the quota counter in Redis: one INCR in one round trip (the window the quota's own burst check
        uses); otherwise DRF's sliding log in the cache (a get and a set)."""
        if self.rate is None or self.num_requests is None or self.duration is None or not counter_enabled():
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        try:
            self._redis_wait = burst_consume(Burst(key=f"billing:{self.key}", limit=self.num_requests,
                                                   window_s=self.duration))
        except CounterUnavailable:
            return super().allow_request(request, view)
        return self._redis_wait is None

    def wait(self) -> float | None:
        return float(self._redis_wait) if self._redis_wait is not None else super().wait()

    def get_cache_key(self, request: Request, view: APIView) -> str:
        api_key = request_api_key(request)
        if api_key is not None:
            ident = f"key:{api_key.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
