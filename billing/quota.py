"""Declarative quotas for API views of other apps: ``class RecommendApi(QuotaMixin, APIView): quota_kind = ...``."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.selectors import request_api_key

from .services import usage_consume
from .throttles import BurstThrottle


class QuotaMixin:
    """Add the burst throttle and count one ``quota_kind`` call per authenticated request (429 past quota).

    The call is counted once authentication, permissions and throttles have passed, before the handler
    runs, so a refused request never reaches it. Anonymous requests are not metered; require auth.
    """

    quota_kind: str | None = None
    quota_methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")

    def get_throttles(self) -> list[BaseThrottle]:
        throttles = list(super().get_throttles())  # type: ignore[misc]
        if not any(isinstance(t, BurstThrottle) for t in throttles):
            throttles.append(BurstThrottle())
        return throttles

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if self.quota_kind and request.method in self.quota_methods and request.user.is_authenticated:
            usage_consume(user=request.user, api_key=request_api_key(request), kind=self.quota_kind)
