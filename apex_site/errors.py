"""Errors: ``/v1`` answers JSON ``{"detail", "code"}`` in every mode; error reports never show a secret.

- ``api_exception_handler`` (DRF's EXCEPTION_HANDLER) gives DRF's errors a ``code``; field validation
  errors keep their documented shape (field -> messages).
- ``handler400``/``403``/``404``/``500`` (wired in ``apex_site.urls``) answer JSON under ``/v1`` and the
  portal's HTML pages elsewhere; with DEBUG on Django skips them, and ``ApiJsonErrorsMiddleware``
  (``apex_site.middleware``) turns whatever Django made into the same JSON.
- ``EncodableExceptionReporter`` (DEFAULT_EXCEPTION_REPORTER) keeps the debug page encodable.
- ``ApiExceptionReporter`` replaces Django's debug traceback page under ``/v1``: the page never reached the
  client there, and rendering it cost seconds of CPU (and crashed on a lone-surrogate body).
- ``SecretMaskingFilter`` (DEFAULT_EXCEPTION_REPORTER_FILTER) masks service URLs and credentials in URLs,
  which Django's filter shows because it hides settings by name only.
"""

from __future__ import annotations

import re
from collections.abc import ItemsView
from http import HTTPStatus
from typing import Any

from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.safestring import SafeString, mark_safe
from django.views import defaults
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

API_PREFIX = "/v1/"
ERROR_ATTR = "_apex_error"  # the exception behind an error response, kept on the request for its code

# Settings whose name matches are replaced whole (Django's list plus service URLs and hosts); any other
# string that carries credentials in a URL (scheme://user:password@host) has them masked.
HIDDEN_NAMES = re.compile(r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN|LOCATION|BROKER|"
                          r"RESULT_BACKEND|ADDRESS", flags=re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)[^/\s@]*@", flags=re.IGNORECASE)


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX) or request.path_info == API_PREFIX.rstrip("/")


# --- the JSON error body ------------------------------------------------------------------------------
_EXCEPTION_CODES: list[tuple[type[BaseException], int, str, str]] = [
    # (exception, status under /v1, code, detail): the detail never repeats the exception's own text,
    # which can name hosts, settings or the server's internals.
    (DisallowedHost, 400, "disallowed_host", "Invalid Host header."),
    (RequestDataTooBig, 413, "request_too_large", "Request body too large."),
    (TooManyFieldsSent, 400, "too_many_fields", "Too many fields in the request."),
    (TooManyFilesSent, 400, "too_many_files", "Too many files in the request."),
    (SuspiciousOperation, 400, "bad_request", "Bad request."),
    (BadRequest, 400, "bad_request", "Bad request."),
    (Http404, 404, "not_found", "Not found."),
    (PermissionDenied, 403, "permission_denied", "You do not have permission to perform this action."),
]
_STATUS_CODES = {400: "bad_request", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "request_too_large",
                 415: "unsupported_media_type", 429: "throttled", 500: "server_error", 502: "bad_gateway",
                 503: "service_unavailable", 504: "gateway_timeout"}


def api_error_body(request: HttpRequest, status: int) -> tuple[int, dict[str, str]]:
    """The status and ``{"detail", "code"}`` for an error response under ``/v1``."""
    exc = getattr(request, ERROR_ATTR, None)
    if exc is not None and status < 500:
        for kind, mapped_status, code, detail in _EXCEPTION_CODES:
            if isinstance(exc, kind):
                return mapped_status, {"detail": detail, "code": code}
    if status == 405:
        return status, {"detail": f'Method "{request.method}" not allowed.', "code": "method_not_allowed"}
    if status >= 500:
        return status, {"detail": "Server error.", "code": _STATUS_CODES.get(status, "server_error")}
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return status, {"detail": f"{phrase}.", "code": _STATUS_CODES.get(status, "error")}


def api_error_response(request: HttpRequest, status: int) -> JsonResponse:
    status, body = api_error_body(request, status)
    return JsonResponse(body, status=status)


# --- Django's error handlers (ROOT_URLCONF), used with DEBUG off ------------------------------------
def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        setattr(request, ERROR_ATTR, exception)
        return api_error_response(request, 400)
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        setattr(request, ERROR_ATTR, exception)
        return api_error_response(request, 403)
    return defaults.permission_denied(request, exception)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return api_error_response(request, 404)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return api_error_response(request, 500)
    return defaults.server_error(request)


# --- DRF ------------------------------------------------------------------------------------------
def _first(codes: Any) -> str:
    """The first code of DRF's ``get_codes()`` (a string, or lists/dicts of them)."""
    if isinstance(codes, dict):
        return _first(next(iter(codes.values()), "error"))
    if isinstance(codes, list | tuple):
        return _first(codes[0]) if codes else "error"
    return codes if isinstance(codes, str) else "error"


def _api_code(exc: drf_exceptions.APIException) -> str:
    try:
        return _first(exc.get_codes())
    except AttributeError:  # a detail of plain values (billing's QuotaExceeded keeps its numbers as numbers)
        return str(getattr(exc, "default_code", "error"))


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with a ``code`` beside every ``detail`` (field errors keep their field -> messages map)."""
    from rest_framework.views import exception_handler  # not at import: input_guard imports this module early

    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django's 500 path, JSON under /v1 (see the module docstring)
    if isinstance(exc, Http404):
        code = "not_found"
    elif isinstance(exc, PermissionDenied):
        code = "permission_denied"
    elif isinstance(exc, drf_exceptions.APIException):
        code = _api_code(exc)
    else:
        code = "error"
    data = response.data
    if isinstance(data, dict) and "detail" in data:
        response.data = {"code": code, **data}
    elif isinstance(data, list):  # ValidationError("message"): one message, not a field map
        response.data = {"detail": " ".join(str(item) for item in data), "code": code}
    return response


# --- DEBUG pages ----------------------------------------------------------------------------------------
class EncodableExceptionReporter(ExceptionReporter):
    """Django's debug page, escaped so it always encodes: a lone surrogate in a local variable or message
    made the page itself raise, again in every middleware layer, and the request never finished."""

    def get_traceback_html(self) -> SafeString:
        return mark_safe(super().get_traceback_html().encode("utf-8", "backslashreplace").decode("utf-8"))

    def get_traceback_text(self) -> SafeString:
        return mark_safe(super().get_traceback_text().encode("utf-8", "backslashreplace").decode("utf-8"))


class ApiExceptionReporter(ExceptionReporter):
    """Debug "page" for ``/v1``: no traceback rendering; the middleware answers ``{"detail", "code"}``."""

    def __init__(self, request: HttpRequest | None, exc_type: Any, exc_value: Any, tb: Any,
                 is_email: bool = False) -> None:
        super().__init__(request, exc_type, exc_value, tb, is_email)
        if request is not None:
            setattr(request, ERROR_ATTR, exc_value)

    def get_traceback_html(self) -> SafeString:
        return SafeString("")

    def get_traceback_text(self) -> SafeString:
        return SafeString("")


# --- secrets in error reports -------------------------------------------------------------------------
def mask_url_credentials(value: str) -> str:
    """``redis://:pw@host/0`` -> ``redis://********@host/0``."""
    return URL_CREDENTIALS.sub(lambda m: m.group("scheme") + SafeExceptionReporterFilter.cleansed_substitute + "@",
                               value)


class SecretMaskingFilter(SafeExceptionReporterFilter):
    """Django's filter, plus service URLs hidden by name and credentials in any URL hidden by value."""

    hidden_settings = HIDDEN_NAMES

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return mask_url_credentials(cleansed)
        return cleansed

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> ItemsView[str, Any]:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return {name: self.cleanse_setting(name, value) for name, value in variables}.items()
