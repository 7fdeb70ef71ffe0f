"""ASGI entry point: HTTP through Django, websockets through Channels (session auth).

Django returns a request's database connections (with ``DB_POOL``: to the pool) on ``request_finished``,
which it sends when the response is closed. An exception escaping its handler skipped that, and the
connection stayed checked out for good: a ``request_started`` receiver failing after a query, a debug
page that could not be encoded (a lone surrogate), a ``request_finished`` receiver failing before the
connections were closed. ``PoolSafeASGIHandler`` then sends ``request_finished`` itself, to every receiver,
in the request's own thread (where its connections live), and re-raises (issue 14).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponseBase

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apex_site.settings")
logger = logging.getLogger(__name__)


MAX_IDLE_THREADS = 64


class PoolSafeASGIHandler(ASGIHandler):
    """Django's ASGI handler; a request that fails still gives its connections back, and gets an answer.

    Each request's synchronous code (middleware, DRF, the views) runs on one thread, as Django requires; Django
    starts a new thread for every request (asgiref's ``ThreadSensitiveContext()``) and joins it afterwards,
    which cost about as much CPU as a plain view. Here the request borrows an idle single-thread executor (a
    new one only when every thread is busy) and returns it, as a threaded WSGI server reuses its threads
    (issue 19). One request still runs on one thread at a time; concurrency is unchanged.
    """

    def __init__(self) -> None:
        # Django's ASGI handler builds the middleware chain in async mode; most middleware (Django's own, allauth,
        # ours) is synchronous, so a request then crosses between the event loop and threads several times
        # (sync_to_async around the chain, async_to_sync back into Django's async core, sync_to_async again for
        # the view). Built in sync mode, the whole chain and the view run in one call on the request's thread.
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._idle: list[ThreadPoolExecutor] = []

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        """The synchronous chain (BaseHandler.get_response) in one hop to the request's thread."""
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)  # type: ignore[no-any-return]

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Mapping[str, Any]]],
                       send: Callable[[Mapping[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(max_workers=1,
                                                                          thread_name_prefix="apex-request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle) < MAX_IDLE_THREADS:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    async def handle(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Mapping[str, Any]]],
                     send: Callable[[Mapping[str, Any]], Awaitable[None]]) -> None:
        started = False

        async def tracking_send(message: Mapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await super().handle(scope, receive, tracking_send)
        except Exception:
            # Inside Django's ThreadSensitiveContext: sync receivers run in the request's thread.
            await request_finished.asend_robust(sender=self.__class__)
            logger.exception("request failed outside Django's error handling: %s %r", scope.get("method"),
                             scope.get("path"))
            if started:
                raise
            await _send_server_error(send, api=str(scope.get("path", "")).startswith(API_PREFIX))
        except BaseException:  # cancelled (client gone, server stopping): release, then let it through
            await request_finished.asend_robust(sender=self.__class__)
            raise


async def _send_server_error(send, *, api: bool) -> None:  # noqa: ANN001
    if api:
        body, content_type = b'{"detail": "Server error.", "code": "server_error"}', b"application/json"
    else:
        body, content_type = b"Server error", b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 500,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _django_http_app() -> PoolSafeASGIHandler:
    import django

    django.setup(set_prefix=False)
    return PoolSafeASGIHandler()


django_asgi_app = _django_http_app()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from .errors import API_PREFIX  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
