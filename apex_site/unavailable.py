"""A database that cannot be reached answers 503 with ``Retry-After``, never a 500.

PostgreSQL is the source of truth (events, API keys, quotas), so a request that cannot get a connection
(server down or restarting, ``max_connections`` or the pool exhausted: ``DB_POOL_TIMEOUT_S``, a connection
dropped mid-request, a serialization failure or deadlock) cannot be served; it is refused as *retryable*.
Only ``OperationalError``/``InterfaceError`` count (the driver's "cannot talk to the server now");
``DataError``, ``IntegrityError`` and ``ProgrammingError`` stay errors. docs/REALTIME.md lists the
behaviour per dependency.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with ``Retry-After`` (DATABASE_RETRY_AFTER_S): JSON under ``/v1``, plain text for pages."""
    retry_after = str(int(settings.DATABASE_RETRY_AFTER_S))
    if request.path_info.startswith("/v1"):
        response: HttpResponse = JsonResponse(
            {"detail": "The database is unavailable; retry after the Retry-After header.",
             "code": "service_unavailable"}, status=503)
    else:
        response = HttpResponse("Service temporarily unavailable; please retry shortly.\n", status=503,
                                content_type="text/plain; charset=utf-8")
    response["Retry-After"] = retry_after
    return response


class DatabaseUnavailableMiddleware:
    """Turns a view's ``OperationalError``/``InterfaceError`` into 503 + ``Retry-After`` (sync or async)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:  # noqa: ANN001 - Django's get_response, sync or async
        self.get_response = get_response
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction

        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):  # noqa: ANN204 - a response, or an awaitable of one
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("database unavailable, %s %s answered 503: %s", request.method, request.path,
                       exception.__class__.__name__)
        return database_unavailable_response(request)
