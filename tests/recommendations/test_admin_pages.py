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


@pytest.mark.parametrize(("weights", "message"), [
    ('{"sasrec": 0.5, "bert4rec": 0.5}', "Unknown model(s) bert4rec"),
    ('{"sasrec": -0.2, "kan": 1.2}', "non-negative numbers: sasrec"),
    ('{"sasrec": "high"}', "non-negative numbers: sasrec"),
    ('{"sasrec": 0, "kan": 0}', "At least one weight must be positive"),
    ('[0.5, 0.5]', "An object of model -&gt; weight"),
])
def test_weights_are_validated_on_save_with_a_clear_error(client, operator, weights: str, message: str) -> None:  # noqa: ANN001
    from recommendations.models import EnsembleWeights

    client.force_login(operator)
    response = client.post("/admin/recommendations/ensembleweights/add/",
                           {"version": "manual-1", "weights": weights, "source": "manual", "notes": ""})
    assert response.status_code == 200 and message in response.content.decode()  # the form again, with the error
    assert not EnsembleWeights.objects.exists()


def test_valid_weights_save(client, operator) -> None:  # noqa: ANN001
    from recommendations.models import EnsembleWeights

    client.force_login(operator)
    response = client.post("/admin/recommendations/ensembleweights/add/",
                           {"version": "manual-2", "weights": '{"sasrec": 2, "kan": 1, "diffusion": 0}',
                            "source": "manual", "notes": ""})
    assert response.status_code == 302
    assert EnsembleWeights.objects.get().weights == {"sasrec": 2, "kan": 1, "diffusion": 0}
