"""The site's URLs plus views that fail on purpose, under /v1 and in the portal (error-path tests only)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from apex_site.urls import handler400, handler403, handler404, handler500
from apex_site.urls import urlpatterns as site_patterns


def boom(request: HttpRequest) -> HttpResponse:
    service_url = settings.DATABASE_URL  # noqa: F841 - a local the debug page would show
    request.body  # noqa: B018 - the debug page reads the body too
    raise RuntimeError("boom")


urlpatterns = [
    path("v1/test-boom", boom),
    path("test-boom", boom),
    *site_patterns,
]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
