"""The ASGI handler runs each request's synchronous chain in one hop on a reused thread (apex_site/asgi.py)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from django.http import HttpRequest, JsonResponse
from django.urls import path

seen: list[str] = []
barrier = threading.Barrier(2, timeout=10)


def where(request: HttpRequest) -> JsonResponse:
    seen.append(threading.current_thread().name)  # idents are reused once a thread ends; names are not
    return JsonResponse({"thread": threading.get_ident()})


def meet(request: HttpRequest) -> JsonResponse:
    barrier.wait()  # both requests must be in their views at the same time
    return JsonResponse({"met": True})


urlpatterns = [path("where", where), path("meet", meet)]


async def _get(app: Any, url: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop()
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": url, "raw_path": url.encode(), "query_string": b"",
             "headers": [(b"host", b"testserver")], "scheme": "http", "server": ("testserver", 80),
             "client": ("127.0.0.1", 1234), "asgi": {"version": "3.0"}, "http_version": "1.1", "root_path": ""}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.fixture
def app(settings):  # noqa: ANN001, ANN201
    settings.ROOT_URLCONF = __name__
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SECURE_SSL_REDIRECT = False
    from apex_site.asgi import PoolSafeASGIHandler

    seen.clear()
    return PoolSafeASGIHandler()


def test_the_middleware_chain_is_synchronous(app) -> None:  # noqa: ANN001
    assert not asyncio.iscoroutinefunction(app._middleware_chain)  # one hop to a thread, none back to the loop


def test_requests_reuse_the_request_thread(app) -> None:  # noqa: ANN001
    async def two() -> None:
        for _ in range(2):
            assert (await _get(app, "/where"))[0] == 200

    asyncio.run(two())
    assert len(seen) == 2 and seen[0] == seen[1] != threading.current_thread().name  # Django alone starts a thread per request


def test_concurrent_requests_still_run_at_the_same_time(app) -> None:  # noqa: ANN001
    async def both() -> list[tuple[int, bytes]]:
        return list(await asyncio.gather(_get(app, "/meet"), _get(app, "/meet")))

    assert [status for status, _ in asyncio.run(both())] == [200, 200]
