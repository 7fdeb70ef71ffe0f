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

if TYPE_CHECKING:  # DRF loads this module while it defines APIView (the default throttle): no views import here
    from rest_framework.request import Request
    from rest_framework.views import APIView


class BurstThrottle(ClientIpThrottleMixin, SimpleRateThrottle):  # get_ident: the real client address
    """Short-window rate limit (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["burst"], e.g. 120/min)."""

    scope = "burst"
    # set by SimpleRateThrottle.__init__ from the rate (None without one); the DRF stubs leave them out
    num_requests: int | None
    duration: int | None

    @property  # type: ignore[override]
    def cache(self):  # noqa: ANN201 - Django's BaseCache
        return counting_cache()

    def get_cache_key(self, request: Request, view: APIView) -> str:
        api_key = request_api_key(request)
        if api_key is not None:
            ident = f"key:{api_key.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
