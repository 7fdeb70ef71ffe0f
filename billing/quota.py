"""Declarative quotas for API views of other apps: ``class RecommendApi(QuotaMixin, APIView): quota_kind = ...``."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.selectors import request_api_key

from .services import usage_consume
from .throttles import BurstThrottle
from .usage_counter import Burst, counter_enabled


class QuotaMixin:
    """Add the burst throttle and count one ``quota_kind`` call per authenticated request (429 past quota).

    The call is counted once authentication, permissions and throttles have passed, before the handler
    runs, so a refused request never reaches it. Anonymous requests are not metered; require auth.
    With the quota counter in Redis the burst throttle of a metered request is checked in the same round
    trip as the quota (billing.usage_counter); otherwise DRF checks it first, as for any view.
    """

    quota_kind: str | None = None
    quota_methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")

    def get_throttles(self) -> list[BaseThrottle]:
        throttles = list(super().get_throttles())  # type: ignore[misc]
        if not any(isinstance(t, BurstThrottle) for t in throttles):
            throttles.append(BurstThrottle())
        return throttles

    def _metered(self, request: Request) -> bool:
        return bool(self.quota_kind and request.method in self.quota_methods and request.user.is_authenticated)

    def check_throttles(self, request: Request) -> None:
        if not (self._metered(request) and counter_enabled()):
            super().check_throttles(request)  # type: ignore[misc]
            return
        # the burst throttle is left to initial(), in the quota's round trip; any other throttle runs here
        waits = [t.wait() for t in self.get_throttles()
                 if not isinstance(t, BurstThrottle) and not t.allow_request(request, self)]
        if waits:
            self.throttled(request, max((w for w in waits if w is not None), default=None))  # type: ignore[attr-defined]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if not self._metered(request):
            return
        burst = None
        throttle = next((t for t in self.get_throttles() if isinstance(t, BurstThrottle)), None)
        if counter_enabled() and throttle is not None and throttle.rate is not None:
            throttle.key = throttle.get_cache_key(request, self)
            burst = Burst(key=f"billing:{throttle.key}", limit=throttle.num_requests, window_s=throttle.duration)
        in_redis = usage_consume(user=request.user, api_key=request_api_key(request), kind=self.quota_kind,
                                 burst=burst)
        if burst is not None and not in_redis:
            # Redis is down (the database counted the call): DRF's throttle decides, counting per process
            # while Redis is down (apex_site.cache.counting_cache)
            if not throttle.allow_request(request, self):
                self.throttled(request, throttle.wait())  # type: ignore[attr-defined]
