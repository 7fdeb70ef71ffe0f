"""The site's URLs plus views that fail on purpose, under /v1 and in the portal (error-path tests only)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views import defaults

from apex_site import urls as site

site_patterns = site.urlpatterns
# the site's handlers (JSON under /v1); Django's own where the site has none
handler400 = getattr(site, "handler400", defaults.bad_request)
handler403 = getattr(site, "handler403", defaults.permission_denied)
handler404 = getattr(site, "handler404", defaults.page_not_found)
handler500 = getattr(site, "handler500", defaults.server_error)


def boom(request: HttpRequest) -> HttpResponse:
    service_url = settings.DATABASE_URL  # noqa: F841 - a local the debug page would show
    request.body  # noqa: B018 - the debug page reads the body too
    raise RuntimeError("boom")


def surrogate_boom(request: HttpRequest) -> HttpResponse:
    value = "bad \ud800 value"  # a lone surrogate, as a JSON body's "\\ud800" becomes
    raise ValueError(value)


urlpatterns = [
    path("test-surrogate-boom", surrogate_boom),
    path("v1/test-boom", boom),
    path("test-boom", boom),
    *site_patterns,
]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
