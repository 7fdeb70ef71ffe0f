"""Per-route latency recording for ``/v1/platform/slo`` (rolling window, per process)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.http import HttpRequest, HttpResponse

_lock = threading.Lock()
_windows: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=settings.SLO_WINDOW))


def _route_of(request: HttpRequest) -> str | None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    return "/" + match.route.lstrip("^").rstrip("$") if match.route else match.view_name


class LatencyMiddleware:
    """Record wall time per resolved route; static files and unknown routes are skipped."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        route = _route_of(request)
        if route is not None:
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            with _lock:
                _windows[f"{request.method} {route}"].append(elapsed_ms)
        return response


def slo_report() -> dict:
    """p50/p95/p99 per route over the rolling window, compared with the configured targets."""
    targets = settings.SLO_TARGETS_MS
    with _lock:
        snapshot = {route: list(values) for route, values in _windows.items() if values}
    routes = {}
    for route, values in sorted(snapshot.items()):
        p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
        observed = {"p50": p50, "p95": p95, "p99": p99}
        routes[route] = {
            "count": len(values),
            **{k: round(v, 3) for k, v in observed.items()},
            "meets_targets": all(observed[k] <= targets[k] for k in targets),
        }
    return {"window": settings.SLO_WINDOW, "targets_ms": targets, "routes": routes}


def slo_reset() -> None:
    with _lock:
        _windows.clear()
