"""Bad inputs, sent systematically (fields x bad values, parameters, paths, body shapes): never a 5xx.

Each shape has the statuses it may get: NUL and lone surrogates 400, absurd event times 400 (one validation status), oversized
bodies 413; the rest any client error (or 202 where the value happens to be valid for that field).
The counts go to docs/RELIABILITY.md through the ``probe`` fixture.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from catalog.models import Rating
from tests.factories import MovieFactory

pytestmark = pytest.mark.django_db

EVENT_FIELDS = ["movie_id", "kind", "value", "idempotency_key", "occurred_at", "propensity", "position",
                "policy_version", "request_id", "external_user"]
SURROGATE = "\ud800"  # json.dumps writes it as the escape "\ud800", which parses back to a lone surrogate
REFUSED_TEXT = {"nul": "\x00", "nul inside": "ab\x00cd", "surrogate": SURROGATE, "surrogate inside": f"a{SURROGATE}b",
                "low surrogate": "\udfff"}
ODD_VALUES = {"long text": "x" * 5_000, "object": {"a": 1}, "list": [1, 2], "true": True, "negative": -1,
              "huge int": 10**30, "huge float": 1e308, "empty": "", "null": None, "date text": "2026-13-45"}
ABSURD_TIMES = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"]
CLIENT_ERRORS = frozenset(range(400, 500))
GET_PARAMS = {"/v1/movies": ["search", "genre", "sort", "page"], "/v1/search": ["q", "limit"],
              "/v1/search/ai": ["q", "k"], "/v1/events/recommendation-analytics": ["dimension", "epsilon"],
              "/v1/billing/usage": ["period"], "/v1/evaluation/offline-metrics": ["dataset"]}


@dataclass
class Shape:
    """One request to send and the statuses it may get."""

    name: str
    method: str
    path: str
    expected: frozenset[int]
    body: bytes | dict | None = None
    content_type: str = "application/json"
    extra: dict = field(default_factory=dict)


def _json(data: object) -> bytes:
    return json.dumps(data).encode()


def _event_shapes(movie_id: int) -> Iterator[Shape]:
    for i, (fname, (label, bad)) in enumerate((f, v) for f in EVENT_FIELDS
                                              for v in [*REFUSED_TEXT.items(), *ODD_VALUES.items()]):
        event = {"movie_id": movie_id, "kind": "click", "idempotency_key": f"probe-{i}", fname: bad}
        expected = frozenset({400}) if label in REFUSED_TEXT else CLIENT_ERRORS | {202}
        yield Shape(f"event {fname}={label}", "post", "/v1/events", expected, _json(event))
        batch = {"events": [{"movie_id": movie_id, "kind": "click", "idempotency_key": f"probe-b{i}"}, event]}
        yield Shape(f"batch {fname}={label}", "post", "/v1/events/batch", expected, _json(batch))
    for i, when in enumerate([*ABSURD_TIMES, "five years ahead"]):
        if when == "five years ahead":
            when = (timezone.now() + dt.timedelta(days=5 * 365)).isoformat()
        rating = {"movie_id": movie_id, "kind": "rating", "value": 5, "idempotency_key": f"time-{i}", "occurred_at": when}
        yield Shape(f"event occurred_at={when}", "post", "/v1/events", frozenset({400}), _json(rating))


def _parameter_shapes(movie_id: int, user_id: int) -> Iterator[Shape]:
    params = {**GET_PARAMS, f"/v1/recommendations/user/{user_id}": ["limit", "diversity"],
              f"/v1/recommendations/id/{movie_id}": ["limit"], f"/v1/recommendations/knowledge-graph/{movie_id}": ["k"]}
    for path, names in params.items():
        for name in names:
            for label, bad in REFUSED_TEXT.items():
                if "surrogate" not in label:  # a query string cannot carry one: Django decodes it with replacement
                    yield Shape(f"GET {path}?{name}={label}", "get", path, frozenset({400}), extra={"data": {name: bad}})
        yield Shape(f"GET {path}?<NUL name>", "get", f"{path}?a%00b=1", frozenset({400}))
    for path in ["/v1/movies/%00", "/v1/movies/1%00", "/v1/events/%00", "/v1/recommendations/user/%00",
                 "/v1/%00", "/v1/search%00"]:
        yield Shape(f"GET {path}", "get", path, frozenset({400}))
    for cookie in ['sessionid="abcdefgh\\000ijkl"', 'csrftoken="\\000"', 'sessionid="\\000"; csrftoken="\\000"']:
        for path, status in [("/v1/movies", 200), ("/", 200), ("/v1/events/features", 401)]:  # ignored: as if unsent
            yield Shape(f"GET {path} cookie {cookie}", "get", path, frozenset({status}), extra={"HTTP_COOKIE": cookie})
    form = {"movie_id": str(movie_id), "kind": "click", "idempotency_key": "form\x00key"}
    yield Shape("form body with NUL", "post", "/v1/events", frozenset({400}), form,
                content_type="application/x-www-form-urlencoded")
    for path in ["/v1/auth/api-keys", "/v1/billing/checkout", "/v1/auth/token"]:
        for label, bad in REFUSED_TEXT.items():
            body = {"name": bad, "plan": bad, "username": bad, "password": bad}
            yield Shape(f"POST {path} {label}", "post", path, frozenset({400}), _json(body))


def _body_shapes() -> Iterator[Shape]:
    for depth in (33, 1_000, 10_000, 100_000):
        yield Shape(f"JSON {depth} deep", "post", "/v1/events", frozenset({400}), b"[" * depth + b"]" * depth)
        yield Shape(f"JSON object {depth} deep", "post", "/v1/events", frozenset({400}),
                    b'{"a":' * depth + b"1" + b"}" * depth)
    raw = {"invalid UTF-8": b'{"kind": "\xff\xfe"}', "CESU surrogate bytes": b'{"kind": "\xed\xa0\x80"}',
           "not JSON": b"{kind: click", "NaN": b'{"value": NaN}', "scalar": b"1", "empty object": b"{}",
           "list": b"[]", "truncated": b'{"movie_id": 1,', "NUL outside strings": b'{"a": 1}\x00',
           "surrogate key": b'{"\\ud800": 1}', "NUL key": b'{"\\u0000": 1}', "huge number": b'{"movie_id": 1e999}',
           "long int": b'{"movie_id": ' + b"9" * 5_000 + b"}"}
    for name, body in raw.items():
        yield Shape(f"body {name}", "post", "/v1/events", CLIENT_ERRORS, body)
        yield Shape(f"batch body {name}", "post", "/v1/events/batch", CLIENT_ERRORS, body)
    big = _json({"events": [{"movie_id": 1, "kind": "click", "idempotency_key": "k" * 100}] * 30_000})
    yield Shape("body over the size limit", "post", "/v1/events/batch", frozenset({413}), big)
    yield Shape("unsupported content type", "post", "/v1/events", CLIENT_ERRORS, b"<a/>", content_type="text/xml")


def _send(client: Client, shape: Shape) -> int:
    cache.clear()  # the burst throttle and the free plan's quota would answer 429 before the input is read
    if shape.method == "get":
        return client.get(shape.path, **shape.extra).status_code
    if isinstance(shape.body, dict):
        return client.post(shape.path, shape.body).status_code
    return client.post(shape.path, shape.body, content_type=shape.content_type).status_code


def test_bad_inputs_get_client_errors_never_a_server_error(alice, probe):
    movie = MovieFactory(genres=["Drama"])
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    shapes = [*_event_shapes(movie.id), *_parameter_shapes(movie.id, alice.id), *_body_shapes()]
    answers = {shape.name: (_send(client, shape), shape.expected) for shape in shapes}
    server_errors = {name: got for name, (got, _) in answers.items() if got >= 500}
    wrong = {name: got for name, (got, expected) in answers.items() if got < 500 and got not in expected}
    probe.record("bad inputs", sent=len(shapes), server_errors=len(server_errors), failures=len(wrong),
                 refused_4xx=sum(1 for got, _ in answers.values() if 400 <= got < 500))
    assert len(shapes) >= 100
    assert server_errors == {}
    assert wrong == {}
    assert not Rating.objects.filter(user=alice, rated_at__year__gte=timezone.now().year + 1).exists()
    assert not Rating.objects.filter(user=alice, rated_at__year__lt=1995).exists()
