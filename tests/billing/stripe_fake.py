"""Offline Stripe for tests: the real stripe-python client over a fake HTTP transport serving recorded JSON.

Requests go through stripe-python's own encoding, headers, error mapping and response parsing; only the
socket is replaced. Unknown routes answer Stripe's 404 ``resource_missing`` error so a missing fixture fails loudly.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import stripe

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str, **overrides: Any) -> dict[str, Any]:
    """A recorded Stripe object from tests/billing/fixtures/<name>.json with top-level fields replaced."""
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    data.update(copy.deepcopy(overrides))
    return data


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeStripeHttpClient(stripe.HTTPClient):
    """Routes (method, path regex) to JSON bodies and records every call."""

    routes: list[tuple[str, re.Pattern[str], int, dict[str, Any]]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    name = "apex-fake"

    def __post_init__(self) -> None:
        super().__init__()

    def add(self, method: str, path: str, body: dict[str, Any], status: int = 200) -> None:
        """Serve ``body`` for ``method`` on paths fully matching the regex ``path`` (newest route wins)."""
        self.routes.insert(0, (method.upper(), re.compile(path), status, body))

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, *, _usage: Any = None
                ) -> tuple[str, int, dict[str, str]]:
        parts = urlsplit(url)
        raw = post_data.decode() if isinstance(post_data, bytes) else (post_data or parts.query)
        self.calls.append(Call(method.upper(), parts.path, parse_qs(raw), dict(headers or {})))
        for route_method, pattern, status, body in self.routes:
            if route_method == method.upper() and pattern.fullmatch(parts.path):
                return json.dumps(body), status, {"Request-Id": f"req_fake{len(self.calls):04d}"}
        error = {"error": {"type": "invalid_request_error", "code": "resource_missing",
                           "message": f"No such route in the fake: {method.upper()} {parts.path}"}}
        return json.dumps(error), 404, {"Request-Id": "req_fake_missing"}

    def close(self) -> None:
        return None

    def called(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method.upper() and re.fullmatch(path, c.path)]


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value, computed as Stripe does (HMAC-SHA256 of ``t.payload``)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"
