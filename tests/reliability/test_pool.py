"""Every error path gives its connection back to the pool (issue 14, item 3).

A real uvicorn server (DB_POOL=true, a pool of 4) on the test database is sent every kind of failing request:
404/405/400/401/403/413/429, 500s raised after the view checked a connection out (sync and async, /v1 and
portal, DEBUG on and off), NUL, lone surrogates, invalid UTF-8, malformed JSON, a client that walks away
mid-request or mid-body, a streamed response, and websockets refused for bad auth or a bad origin. Then the
pool must be back to idle: nothing checked out, nobody waiting.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.events.processes import database_url, wait_for

from .pool_server import POOL_MAX_SIZE, PoolServer

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
PASSWORD = "Pool-Leak-Probe-2026"
DELIBERATE_500 = ("/v1/test-boom", "/v1/test-aboom", "/test-boom", "/v1/test-surrogate-boom", "/test-surrogate-boom",
                  "/test-start-fails")
PORTAL = ("404 portal", "400 host portal", "403 csrf", "500 /test-boom", "500 /test-surrogate-boom",
          "500 /test-start-fails", "bad request line")


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def server(request, tmp_path, settings) -> Iterator[PoolServer]:  # noqa: ANN001
    from allauth.account.models import EmailAddress

    from tests.factories import UserFactory

    user = UserFactory(username="pooluser", email="pooluser@example.com")
    user.set_password(PASSWORD)
    user.save()
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    srv = PoolServer(database_url=database_url(), redis_url=settings.REDIS_URL, log=tmp_path / "server.log",
                     debug=request.param)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def _raw(port: int, data: bytes, *, read: bool = True, close_after_s: float | None = None) -> bytes:
    """Send raw bytes; read the answer, or walk away after ``close_after_s``."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        if close_after_s is not None:
            sock.settimeout(close_after_s)
            try:
                sock.recv(1)
            except TimeoutError:
                pass
            return b""
        chunks = []
        while read:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def _hammer_http(srv: PoolServer) -> list[tuple[str, int, str]]:
    """(probe, status, content type) for every failing HTTP request."""
    results: list[tuple[str, int, str]] = []
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        def send(name: str, method: str, path: str, **kwargs: object) -> httpx.Response | None:
            try:
                response = client.request(method, path, **kwargs)
            except httpx.TransportError:  # the server dropped the connection: no answer at all
                results.append((name, 0, ""))
                return None
            results.append((name, response.status_code, response.headers.get("content-type", "")))
            return response

        token = send("token", "POST", "/v1/auth/token", json={"username": "pooluser", "password": PASSWORD})
        assert token is not None and token.status_code == 200, token and token.text
        auth = {"Authorization": f"Bearer {token.json()['access']}"}
        send("404 api", "GET", "/v1/no-such-thing")
        send("404 portal", "GET", "/no-such-page/")
        send("405", "POST", "/v1/schema")
        send("405 delete", "DELETE", "/v1/auth/token")
        send("400 host", "GET", "/v1/movies", headers={"Host": "evil.example"})
        send("400 host portal", "GET", "/", headers={"Host": "evil.example"})
        send("400 malformed json", "POST", "/v1/auth/token", content=b'{"username": ',
             headers={"Content-Type": "application/json"})
        send("400 deep json", "POST", "/v1/auth/token", content=b"[" * 10_000 + b"]" * 10_000,
             headers={"Content-Type": "application/json"})
        send("400 lone surrogate", "POST", "/v1/auth/token", content=b'{"username": "\\ud800", "password": "x"}',
             headers={"Content-Type": "application/json"})
        send("400 invalid utf-8", "POST", "/v1/auth/token", content=b'{"username": "\xed\xa0\x80"}',
             headers={"Content-Type": "application/json"})
        send("400 nul", "POST", "/v1/events", json={"movie_id": 1, "kind": "click", "idempotency_key": "a\x00b"},
             headers=auth)
        send("400 nul query", "GET", "/v1/movies?q=a%00b")
        send("401", "GET", "/v1/auth/me")
        send("401 forged", "GET", "/v1/auth/me", headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."})
        send("403 csrf", "POST", "/accounts/login/", data={"login": "x", "password": "y"})
        send("413", "POST", "/v1/auth/token", content=b"username=" + b"x" * 30_000,
             headers={"Content-Type": "application/x-www-form-urlencoded"})
        send("400 domain rule", "POST", "/v1/events", headers=auth,
             json={"movie_id": 1, "kind": "click", "idempotency_key": "k-window", "occurred_at": "9999-12-31T00:00:00Z"})
        for i in range(8):
            send("429", "POST", "/v1/auth/register", json={"username": f"u{i}", "email": "bad", "password": "x"})
        for path in DELIBERATE_500:
            for _ in range(2):
                send("500 " + path, "POST", path, content=b'{"name": "\xed\xa0\x80"}',
                     headers={"Content-Type": "application/json"})
        send("stream", "GET", "/v1/test-stream")
    # what httpx will not send: a client that leaves mid-request and mid-body, a broken request line
    for _ in range(3):
        _raw(srv.port, b"GET /v1/test-slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", close_after_s=0.3)
        _raw(srv.port, b"POST /v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 1000\r\n\r\n{\"user", close_after_s=0.2)
    answer = _raw(srv.port, b"GET /v1/\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    results.append(("bad request line", int(answer.split(b" ")[1]) if answer.startswith(b"HTTP/") else 0, ""))
    return results


async def _hammer_websockets(srv: PoolServer) -> list[tuple[str, int, str]]:
    ws_url = srv.url.replace("http://", "ws://") + "/ws/recommendations/"
    cases = [
        ("ws bogus session", {"Origin": srv.url, "Cookie": "sessionid=no-such-session-" + "x" * 20}),
        ("ws anonymous", {"Origin": srv.url}),
        ("ws bad origin", {"Origin": "http://evil.example", "Cookie": "sessionid=abc"}),
    ]
    results = []
    for name, headers in cases:
        for _ in range(3):
            code = 0
            try:
                async with websockets.connect(ws_url, additional_headers=headers, open_timeout=20) as ws:
                    await asyncio.wait_for(ws.recv(), timeout=20)
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else 1006  # a socket refused before accept gets 403 instead
            except websockets.InvalidStatus as exc:
                code = exc.response.status_code
            results.append((name, code, ""))
    return results


def test_every_error_path_returns_its_connection_to_the_pool(server: PoolServer, probe) -> None:  # noqa: ANN001
    results = _hammer_http(server) + asyncio.run(_hammer_websockets(server))

    statuses = Counter(status for _, status, _ in results)
    unexpected_5xx = [(name, status) for name, status, _ in results
                      if (status >= 500 and not name.startswith("500 ")) or status == 0]
    not_json = [(name, status) for name, status, content_type in results
                if name not in PORTAL and not name.startswith("ws") and status >= 400 and "json" not in content_type]

    def idle() -> dict | None:
        stats = server.pool_stats()
        return stats if stats["checked_out"] == 0 and stats["waiting"] == 0 else None

    try:
        final = wait_for(idle, timeout=15, interval=0.5, what="the pool to be idle again")
        leaked = 0
    except AssertionError:
        final = server.pool_stats()
        leaked = final["checked_out"]
    probe.record("pool after every error path", sent=len(results), server_errors=len(unexpected_5xx),
                 failures=leaked + len(not_json), leaked=leaked, pool_max_size=POOL_MAX_SIZE,
                 statuses=json.dumps(dict(sorted(statuses.items()))))
    assert leaked == 0, f"{leaked} connection(s) never returned to the pool: {final}"
    assert unexpected_5xx == [] and not_json == []
    for needed in (400, 401, 403, 404, 405, 413, 429, 500):
        assert statuses[needed], f"no {needed} among {sorted(statuses.items())}"
    # and the pool still serves: more requests than it has connections, one after another
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(POOL_MAX_SIZE * 3):
            assert client.get("/v1/no-such-thing").status_code == 404
            assert client.get("/v1/platform/readiness").status_code in (200, 503)
