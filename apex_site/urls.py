"""Root URLs: admin, allauth, dj-stripe webhooks, the /v1 API, its schema/docs, and the pages.

The error handlers answer JSON under /v1 and HTML pages elsewhere (apex_site.errors).
"""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from . import errors


class FaviconRedirect(RedirectView):
    """/favicon.ico -> the static icon (its URL resolved per request, so any static storage works)."""

    permanent = True

    def get_redirect_url(self, *args: object, **kwargs: object) -> str:
        return static("img/favicon.svg")


handler400 = errors.handler400
handler403 = errors.handler403
handler404 = errors.handler404
handler500 = errors.handler500

api_patterns = [
    path("platform/", include("recommendations.platform_urls")),
    path("", include("accounts.api_urls")),
    path("", include("catalog.api_urls")),
    path("", include("events.api_urls")),
    path("", include("billing.api_urls")),
    path("", include("recommendations.api_urls")),
    path("", include("experiments.api_urls")),
]

urlpatterns = [
    # browsers ask for /favicon.ico whatever the page says
    path("favicon.ico", FaviconRedirect.as_view()),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("v1/schema", SpectacularAPIView.as_view(), name="schema"),
    # the split view serves its start-up script as a file, so the page needs no inline script (CSP)
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("docs/redoc", SpectacularRedocView.as_view(url_name="schema"), name="docs-redoc"),
    path("v1/", include(api_patterns)),
    # the old profile and onboarding pages live on as permanent redirects (bookmarks, sign-up mails)
    path("account/", RedirectView.as_view(pattern_name="recommendations:account", permanent=True)),
    path("account/onboarding/", RedirectView.as_view(pattern_name="recommendations:onboarding", permanent=True,
                                                     query_string=True)),
    path("account/", include("accounts.urls")),
    path("billing/", include("billing.urls")),
    path("events/", include("events.urls")),
    path("", include("recommendations.urls")),
    path("", include("catalog.urls")),
]
