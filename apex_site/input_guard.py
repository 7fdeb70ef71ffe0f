"""Refuse text no view should see: NUL characters or lone surrogates in the path, a query parameter or a form field
(and ignore cookies that carry them).

PostgreSQL rejects NUL in text and a lone surrogate cannot be encoded as UTF-8, so either one used to reach
the database (or the renderer) and end as a 500. JSON bodies are checked by ``apex_site.parsers.StrictJSONParser``;
this middleware covers what Django parses itself. A refused request gets 400 naming the field: JSON under
``/v1/`` (the field -> messages shape of DRF's validation errors), plain text elsewhere. Bodies over
``DATA_UPLOAD_MAX_MEMORY_SIZE`` raise Django's RequestDataTooBig, which ``apex_site.errors`` answers with 413.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError

from .errors import is_api_request
from .parsers import printable, text_problem

logger = logging.getLogger(__name__)
GetResponse = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]


def _first_problem(pairs: Iterable[tuple[str, list[str]]]) -> tuple[str, str] | None:
    for name, values in pairs:
        problem = text_problem(name)
        if problem:
            return printable(name), f"parameter name {problem}"
        for value in values:
            if isinstance(value, str) and (problem := text_problem(value)):
                return printable(name), problem
    return None


def _form(request: HttpRequest) -> QueryDict | None:
    if not request.META.get("CONTENT_LENGTH"):
        return None
    if request.content_type == "application/x-www-form-urlencoded":
        return QueryDict(request.body, encoding=request.encoding)  # DRF's FormParser reads the same (PUT/PATCH too)
    if request.content_type == "multipart/form-data" and request.method == "POST":
        return request.POST
    return None


def _drop_bad_cookies(request: HttpRequest) -> None:
    """Forget cookies that carry NUL or lone surrogates (``"\\000"`` escapes decode to NUL): the request goes on
    as if they were not sent (a session cookie like that made the session lookup a 500), no 400 the browser
    would repeat on every page."""
    bad = [name for name, value in request.COOKIES.items() if text_problem(name) or text_problem(value)]
    for name in bad:
        del request.COOKIES[name]
    if bad:
        logger.info("ignored %d cookie(s) with NUL or lone surrogates", len(bad))


def request_problem(request: HttpRequest) -> tuple[str, str] | None:
    """(field, message) for a request to refuse with 400, or None. Reading a form body may raise Django's
    RequestDataTooBig or TooManyFieldsSent, answered 413 / 400 by Django's handlers."""
    _drop_bad_cookies(request)
    problem = text_problem(request.path_info)
    if problem:
        return "path", problem
    try:
        form = _form(request)
    except MultiPartParserError as exc:  # a malformed multipart body is the client's error: 400, no traceback
        return "body", f"malformed multipart body: {exc}"
    return _first_problem(request.GET.lists()) or (_first_problem(form.lists()) if form is not None else None)


def _refusal(request: HttpRequest, field: str, message: str) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse({field: [message]}, status=400)
    return HttpResponse(f"{field}: {message}", status=400, content_type="text/plain; charset=utf-8")


class InputGuardMiddleware:
    """Answer 400 before any view runs for the requests ``request_problem`` refuses (sync or async, no thread hop)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        is_async = iscoroutinefunction(self)  # not in the condition: its TypeGuard would narrow away the class
        if is_async:
            return self.__acall__(request)
        refused = request_problem(request)
        return _refusal(request, *refused) if refused else self.get_response(request)  # type: ignore[return-value]

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        refused = request_problem(request)  # the body is already in memory under ASGI: no blocking read
        return _refusal(request, *refused) if refused else await self.get_response(request)  # type: ignore[misc]
