"""Site-wide middleware: JSON errors under ``/v1`` and the security headers of every response.

Both run sync or async (no thread hop under uvicorn) and sit first in MIDDLEWARE, so they see every
response, including the ones Django makes from exceptions raised in the middleware below them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from .errors import ApiExceptionReporter, api_error_body, api_error_response, is_api_request

GetResponse = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]
REPLACED_HEADERS = {"content-type", "content-length", "content-disposition", "content-language"}


class _Middleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        is_async = iscoroutinefunction(self)  # not in the condition: its TypeGuard would narrow away the class
        if is_async:
            return self.__acall__(request)
        self.before(request)
        return self.after(request, self.get_response(request))  # type: ignore[arg-type]

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        self.before(request)
        return self.after(request, await self.get_response(request))  # type: ignore[misc]

    def before(self, request: HttpRequest) -> None:
        pass

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        return response


class ApiJsonErrorsMiddleware(_Middleware):
    """Any ``/v1`` response with status >= 400 that is not JSON becomes ``{"detail", "code"}``, DEBUG or not.

    Covers what no view sees: unknown paths, 405s of plain Django views, DisallowedHost, oversized or
    unparseable bodies, and uncaught exceptions (Django's debug pages with DEBUG on, its handlers without).
    """

    def before(self, request: HttpRequest) -> None:
        if is_api_request(request):
            # With DEBUG on, Django renders its traceback page through this class: skip the rendering.
            request.exception_reporter_class = ApiExceptionReporter  # type: ignore[attr-defined]

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.status_code < 400 or not is_api_request(request):
            return response
        if "json" in response.get("Content-Type", ""):
            return _with_code(request, response)
        replacement = api_error_response(request, response.status_code)
        for header, value in response.items():  # Allow, Retry-After, WWW-Authenticate, security headers...
            if header.lower() not in REPLACED_HEADERS:
                replacement[header] = value
        replacement.cookies = response.cookies
        return replacement


def _with_code(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """A JSON ``{"detail": ...}`` error some view or middleware made gets its ``code`` from the status."""
    if getattr(response, "streaming", True):
        return response
    try:
        data = json.loads(response.content)  # type: ignore[attr-defined]
    except ValueError:
        return response
    if isinstance(data, dict) and "detail" in data and "code" not in data:
        data["code"] = api_error_body(request, response.status_code)[1]["code"]
        response.content = json.dumps(data)  # type: ignore[attr-defined]
        if "Content-Length" in response:
            response["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
    return response


class SecurityHeadersMiddleware(_Middleware):
    """Content-Security-Policy and Permissions-Policy on every response (a view's own CSP is kept).

    ``/docs`` (Swagger UI from its CDN) has its own policy. With DEBUG on, Django's technical error
    pages (inline styles and scripts) get ``'unsafe-inline'``; production pages never do.
    """

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if request.path_info == "/docs" or request.path_info.startswith("/docs/"):
            policy = settings.CONTENT_SECURITY_POLICY_DOCS
        else:
            policy = settings.CONTENT_SECURITY_POLICY
            if settings.DEBUG and response.status_code >= 400:
                policy = policy.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
                    "style-src 'self'", "style-src 'self' 'unsafe-inline'")
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        if settings.PERMISSIONS_POLICY and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = settings.PERMISSIONS_POLICY
        return response
