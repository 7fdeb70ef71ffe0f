"""Test-only URLs for the pool-leak test: the site's URLs, a pool occupancy number, views that fail late."""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.signals import request_started
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from apex_site import urls as site

site_patterns = site.urlpatterns
# the site's handlers (JSON under /v1); Django's own where the site has none
handler400 = getattr(site, "handler400", defaults.bad_request)
handler403 = getattr(site, "handler403", defaults.permission_denied)
handler404 = getattr(site, "handler404", defaults.page_not_found)
handler500 = getattr(site, "handler500", defaults.server_error)


def pool_stats(request: HttpRequest) -> JsonResponse:
    """Connections of this process's pool that are checked out, not counting this request's own."""
    pool = connection.pool
    stats = pool.get_stats()
    own = 1 if connection.connection is not None else 0
    return JsonResponse({"size": stats.get("pool_size", 0), "available": stats.get("pool_available", 0),
                         "waiting": stats.get("requests_waiting", 0),
                         "checked_out": stats.get("pool_size", 0) - stats.get("pool_available", 0) - own})


@csrf_exempt
def boom(request: HttpRequest) -> HttpResponse:
    get_user_model().objects.exists()  # a connection is checked out when the exception happens
    raise RuntimeError("boom")


@csrf_exempt
async def aboom(request: HttpRequest) -> HttpResponse:
    await get_user_model().objects.aexists()
    raise RuntimeError("async boom")


@csrf_exempt
def surrogate_boom(request: HttpRequest) -> HttpResponse:
    get_user_model().objects.exists()
    value = "bad \ud800 value"  # a lone surrogate, as a JSON body's "\\ud800" becomes
    raise ValueError(value)


def fail_on_start(sender: object, scope: dict | None = None, **kwargs: object) -> None:
    """A request_started receiver that fails after a query (as one reading state from the database can)."""
    if scope and scope.get("path") == "/test-start-fails":
        get_user_model().objects.exists()
        raise RuntimeError("request_started receiver failed")


request_started.connect(fail_on_start, dispatch_uid="tests.reliability.fail_on_start")


def slow(request: HttpRequest) -> HttpResponse:
    get_user_model().objects.exists()
    time.sleep(1.0)  # the client has gone by now
    get_user_model().objects.exists()
    return HttpResponse("late")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def rows():  # noqa: ANN202
        for user in get_user_model().objects.all()[:3]:
            yield f"{user.pk}\n"
        yield "end\n"
    return StreamingHttpResponse(rows(), content_type="text/plain")


async def athread(request: HttpRequest) -> HttpResponse:
    count = await sync_to_async(get_user_model().objects.count, thread_sensitive=False)()
    return HttpResponse(str(count))


urlpatterns = [
    path("test-pool-stats", pool_stats),
    path("v1/test-boom", boom),
    path("test-boom", boom),
    path("v1/test-aboom", aboom),
    path("v1/test-surrogate-boom", surrogate_boom),
    path("test-surrogate-boom", surrogate_boom),
    path("v1/test-slow", slow),
    path("v1/test-stream", stream),
    path("v1/test-thread", athread),
    *site_patterns,
]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
