"""Declarative quotas for API views of other apps.

Apps above billing mix in ``QuotaMixin`` (``class RecommendApi(QuotaMixin, APIView): quota_kind = ...``). Apps
beside it, which may not import billing (``events``), name ``QuotaThrottle`` in a setting and resolve it with
``import_string``, as DRF does with its throttle classes; the view sets ``quota_kind`` the way DRF's
ScopedRateThrottle reads ``throttle_scope``.
"""

from __future__ import annotations

from typing import Any, cast

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts.selectors import request_api_key, user_signed_in

from .services import usage_consume
from .throttles import BurstThrottle
from .usage_counter import Burst, counter_enabled

QUOTA_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _metered_kind(request: Request, view: APIView, methods: tuple[str, ...] = QUOTA_METHODS) -> str | None:
    kind: str | None = getattr(view, "quota_kind", None)
    return kind if kind and request.method in methods and request.user.is_authenticated else None


def _consume(request: Request, view: APIView, *, kind: str, throttle: BurstThrottle | None) -> bool:
    """Count one ``kind`` call (QuotaExceeded, 429, past quota); False when the burst ``throttle`` then refuses it.

    With the quota counter in Redis the burst throttle is checked in the same round trip as the quota
    (billing.usage_counter). While Redis is down the database counts the call and DRF's throttle decides,
    counting per process (apex_site.cache.counting_cache).
    """
    burst = None
    # a throttle with a rate has both numbers (SimpleRateThrottle.parse_rate); one without has neither
    if counter_enabled() and throttle is not None and throttle.num_requests is not None and throttle.duration is not None:
        throttle.key = throttle.get_cache_key(request, view)
        burst = Burst(key=f"billing:{throttle.key}", limit=throttle.num_requests, window_s=throttle.duration)
    # metered requests are authenticated (_metered_kind)
    in_redis = usage_consume(user=user_signed_in(request=request), api_key=request_api_key(request), kind=kind, burst=burst)
    return throttle is None or burst is None or in_redis or throttle.allow_request(request, view)


class QuotaMixin:
    """Add the burst throttle and count one ``quota_kind`` call per authenticated request (429 past quota).

    The call is counted once authentication, permissions and throttles have passed, before the handler
    runs, so a refused request never reaches it. Anonymous requests are not metered; require auth.
    With the quota counter in Redis the burst throttle of a metered request is checked in the same round
    trip as the quota (billing.usage_counter); otherwise DRF checks it first, as for any view.
    """

    quota_kind: str | None = None
    quota_methods: tuple[str, ...] = QUOTA_METHODS

    def get_throttles(self) -> list[BaseThrottle]:
        throttles = list(super().get_throttles())  # type: ignore[misc]
        if not any(isinstance(t, BurstThrottle) for t in throttles):
            throttles.append(BurstThrottle())
        return throttles

    def _metered(self, request: Request) -> str | None:
        return _metered_kind(request, cast(APIView, self), self.quota_methods)

    def check_throttles(self, request: Request) -> None:
        if not (self._metered(request) and counter_enabled()):
            super().check_throttles(request)  # type: ignore[misc]
            return
        # the burst throttle is left to initial(), in the quota's round trip; any other throttle runs here
        waits = [t.wait() for t in self.get_throttles()
                 if not isinstance(t, BurstThrottle) and not t.allow_request(request, cast(APIView, self))]
        if waits:
            self.throttled(request, max((w for w in waits if w is not None), default=None))  # type: ignore[attr-defined]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        kind = self._metered(request)
        if kind is None:
            return
        throttle = next((t for t in self.get_throttles() if isinstance(t, BurstThrottle)), None)
        if not _consume(request, cast(APIView, self), kind=kind, throttle=throttle):
            self.throttled(request, throttle.wait() if throttle else None)  # type: ignore[attr-defined]


class QuotaThrottle(BaseThrottle):
    """The burst throttle plus one ``view.quota_kind`` call counted per authenticated request (429 past quota).

    For views that are throttled by this class alone (``get_throttles`` returns ``[QuotaThrottle()]``), it
    answers exactly as ``QuotaMixin``: the burst limit first (in the quota's Redis round trip when the counter
    is in Redis), then the quota. ``consume`` counts a whole batch once the view has checked it.
    """

    def __init__(self) -> None:
        self.burst = BurstThrottle()

    def allow_request(self, request: Request, view: APIView) -> bool:
        kind = _metered_kind(request, view)
        if kind is None or not counter_enabled():
            if not self.burst.allow_request(request, view):
                return False
            if kind is None:
                return True
        return _consume(request, view, kind=kind, throttle=self.burst)

    def wait(self) -> float | None:
        return self.burst.wait()

    def consume(self, request: Request, *, kind: str, amount: int) -> None:
        """Count ``amount`` calls of ``kind`` for the request's account and key, or raise QuotaExceeded (429)."""
        usage_consume(user=user_signed_in(request=request), api_key=request_api_key(request), kind=kind, amount=amount)
