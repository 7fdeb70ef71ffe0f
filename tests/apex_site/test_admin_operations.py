"""The operators' admin (issue 20): the index's grouping, dj-stripe folded away, list pages that never count a
large table."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import MovieFactory, RatingFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(UserFactory(username="operator", email="op@example.com", is_staff=True, is_superuser=True))
    return client


def test_the_index_lists_the_product_then_accounts_then_stripe_folded_away_last(operator: Client) -> None:
    response = operator.get("/admin/")
    assert response.status_code == 200
    apps = response.context["app_list"]
    names = [str(app["name"]) for app in apps]
    assert names[:5] == ["Catalog", "Recommendations", "Events", "Billing", "Experiments"]
    assert names.index("Accounts") == 5 and names.count("Accounts") == 1
    assert names[-1] == "Billing (Stripe)" and apps[-1]["collapsed"] is True
    assert sum(1 for app in apps if app["app_label"] == "djstripe") == 1
    assert len(apps[-1]["models"]) >= 30  # dj-stripe's mirror, all in the one group
    # every person-related model is in Accounts, and no other section holds one
    accounts = next(app for app in apps if app["name"] == "Accounts")
    people = {str(model["name"]).lower() for model in accounts["models"]}
    assert {"users", "groups", "profiles", "api keys", "email addresses", "outstanding tokens",
            "blacklisted tokens"} <= people
    assert "Authentication and Authorization" not in names and "Token Blacklist" not in names
    html = response.content.decode()
    folded = re.search(r'<details class="apex-collapsed-app app-djstripe-group">\s*<summary>Billing \(Stripe\) '
                       r'\((\d+) models\)</summary>', html)
    assert folded and int(folded.group(1)) == len(apps[-1]["models"])  # closed: no ``open`` on the index
    assert html.count("<details") == 1  # nothing else is folded


def test_a_stripe_page_opens_the_group_in_the_side_navigation(operator: Client) -> None:
    html = operator.get("/admin/djstripe/customer/").content.decode()
    assert '<details class="apex-collapsed-app app-djstripe-group" open>' in html
    assert "<details" not in operator.get("/admin/djstripe/").content.decode()  # its own index: as Django lists it


def test_the_ratings_list_never_counts_the_whole_table(operator: Client) -> None:
    movie = MovieFactory(title="Alien", year=1979)
    RatingFactory.create_batch(25, movie=movie)
    with CaptureQueriesContext(connection) as queries:
        response = operator.get("/admin/catalog/rating/")
    assert response.status_code == 200 and response.context["cl"].result_count == 25
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    over_ratings = [sql for sql in counts if "catalog_rating" in sql]
    assert over_ratings, counts  # the paginator's one bounded count
    for sql in over_ratings:
        assert re.search(r"\bLIMIT\b", sql, re.IGNORECASE), sql  # COUNT(*) over at most count_cap + 1 rows
    # a filtered page is bounded the same way
    with CaptureQueriesContext(connection) as queries:
        assert operator.get("/admin/catalog/rating/", {"source__exact": "web"}).status_code == 200
    assert all(re.search(r"\bLIMIT\b", q["sql"], re.IGNORECASE) for q in queries.captured_queries
               if "COUNT(" in q["sql"].upper() and "catalog_rating" in q["sql"])


def test_the_ratings_filters_never_read_every_row(operator: Client) -> None:
    movie = MovieFactory(title="Alien", year=1979)
    for value in (1.0, 4.5, 4.5):
        RatingFactory(movie=movie, value=value)
    with CaptureQueriesContext(connection) as queries:
        response = operator.get("/admin/catalog/rating/")
    sql = [q["sql"] for q in queries.captured_queries if "catalog_rating" in q["sql"]]
    # no date drill-down (a DISTINCT year over every row) and no DISTINCT over the values: the half-star scale
    assert not [s for s in sql if "trunc" in s.lower() or re.search(r"DISTINCT\s+\S+\.\"value\"", s)], sql
    stars = next(spec for spec in response.context["cl"].filter_specs if spec.title == "value")
    assert [choice["display"] for choice in stars.choices(response.context["cl"])][1:] == [
        "0.5", "1", "1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5"]
    assert operator.get("/admin/catalog/rating/", {"value": "4.5"}).context["cl"].result_count == 2
    assert operator.get("/admin/catalog/rating/", {"value": "lots"}).context["cl"].result_count == 0
