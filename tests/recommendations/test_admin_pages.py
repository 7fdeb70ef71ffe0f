"""The operators' admin: every list the issue names opens, filters and searches."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

LISTS = [
    ("/admin/auth/user/", "?account_plan__plan__id__exact=1&q=bob"),
    ("/admin/billing/accountplan/", "?status=active"),
    ("/admin/recommendations/ensembleweights/", "?is_active__exact=1&q=dr"),
    ("/admin/recommendations/modelartifact/", "?q=sasrec"),
    ("/admin/events/event/", "?kind__exact=rating&q=alice"),
    ("/admin/events/privacybudgetledger/", "?refused__exact=1"),
]


@pytest.fixture
def operator(django_user_model):  # noqa: ANN001, ANN201
    return django_user_model.objects.create_superuser("operator", "operator@example.com", "x")


@pytest.mark.parametrize(("path", "query"), LISTS)
def test_admin_lists_open_with_filters_and_search(client, operator, bob, path: str, query: str) -> None:  # noqa: ANN001
    client.force_login(operator)
    assert client.get(path).status_code == 200
    assert client.get(path + query).status_code == 200


def test_users_list_shows_each_users_plan(client, operator, bob, alice) -> None:  # noqa: ANN001
    client.force_login(operator)
    html = client.get("/admin/auth/user/?q=bob").content.decode()
    assert "Pro" in html and "active" in html


def test_events_are_read_only_in_admin(client, operator) -> None:  # noqa: ANN001
    client.force_login(operator)
    assert client.get("/admin/events/event/add/").status_code == 403
