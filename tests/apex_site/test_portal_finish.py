"""Product finish (issue 20): branded error pages, API docs that work offline, the operators' admin site."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apex_site.admin_base import BoundedCountPaginator

pytestmark = pytest.mark.django_db
BOOM_URLS = "tests.apex_site.error_urls"


@pytest.fixture
def quiet_client(settings) -> Client:  # noqa: ANN001
    settings.DEBUG = False
    return Client(raise_request_exception=False)


def test_unknown_portal_page_is_the_branded_404(quiet_client) -> None:  # noqa: ANN001
    response = quiet_client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "find that page" in html and 'class="site-header"' in html
    assert 'id="notfound-q"' in html  # a search box on the page itself
    assert "/static/css/apex.css" in html


def test_a_crash_in_a_portal_page_is_the_branded_500(quiet_client, settings) -> None:  # noqa: ANN001
    settings.ROOT_URLCONF = BOOM_URLS
    response = quiet_client.get("/test-boom")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html and "/static/css/apex.css" in html
    assert "boom" not in html  # nothing of the error itself reaches the visitor


def test_unknown_api_paths_stay_json(quiet_client) -> None:  # noqa: ANN001
    response = quiet_client.get("/v1/no-such-thing")
    assert response.status_code == 404 and response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/docs", "/docs/redoc"])
def test_api_docs_load_their_assets_from_our_static_files(client, path: str) -> None:  # noqa: ANN001
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    for online in ("cdn.jsdelivr.net", "fonts.googleapis.com", "https://"):
        assert online not in html, online
    policy = response["Content-Security-Policy"]
    assert "jsdelivr" not in policy and "script-src 'self';" in policy


def test_admin_is_apex_operations_with_one_accounts_section_and_stripe_last(client, staff) -> None:  # noqa: ANN001
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "APEX operations" in html
    apps = [app["name"] for app in response.context["app_list"]]
    assert apps.count("Accounts") == 1 and "Authentication and Authorization" not in apps
    assert apps.index("Catalog") < apps.index("Accounts") < apps.index("Billing (Stripe)") == len(apps) - 1
    accounts = next(app for app in response.context["app_list"] if app["name"] == "Accounts")
    names = {str(model["name"]) for model in accounts["models"]}
    assert {"Users", "Groups", "Email addresses"} <= names
    # an app's own index page is as Django lists it
    assert client.get("/admin/auth/").status_code == 200


def test_list_pages_never_count_a_large_table(staff) -> None:  # noqa: ANN001
    from catalog.models import Genre

    Genre.objects.bulk_create([Genre(name=f"g{i}", slug=f"g{i}") for i in range(30)])

    class Small(BoundedCountPaginator):
        count_cap = 10

    with CaptureQueriesContext(connection) as queries:
        paginator = Small(Genre.objects.order_by("pk"), 5)
        assert paginator.count >= 10  # past the cap: at least the cap (PostgreSQL: the planner's estimate)
    assert any("LIMIT 11" in q["sql"] or "LIMIT 11" in q["sql"].upper() for q in queries.captured_queries)
    assert paginator.page(2).object_list[0].name == "g5"
    # under the cap the count is exact
    assert Small(Genre.objects.filter(name__in=["g1", "g2", "g3"]), 5).count == 3
    assert Small(Genre.objects.filter(name__startswith="g"), 5).count == 10  # filtered: capped, never estimated


def test_the_400_page_renders_standalone() -> None:
    from django.template.loader import render_to_string

    html = render_to_string("400.html")  # as django.views.defaults.bad_request renders it: no request
    assert "That request didn" in html and "/static/css/apex.css" in html and "comment" not in html
