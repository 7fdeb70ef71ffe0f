"""Recommendation APIs on the tiny real bundle: access rules, cold start, explain, filters, 404s, hot reloads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from recommendations import serving as serving_adapter
from tests.factories import MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def serving(tiny_serving: Path) -> Path:
    return tiny_serving


@pytest.fixture
def alice_sci_fi(alice):  # noqa: ANN001, ANN201
    """Alice rated three Sci-Fi films (5, 4, 5 stars)."""
    from catalog.models import Movie

    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i, (movie_id, value) in enumerate([(101, 5.0), (102, 4.0), (103, 5.0)]):
        RatingFactory(user=alice, movie=Movie.objects.get(id=movie_id), value=value,
                      rated_at=base + dt.timedelta(days=i))
    return alice


def client_for(user) -> APIClient:  # noqa: ANN001
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_users_get_their_own_explained_list_and_impressions_are_logged(serving, alice_sci_fi) -> None:  # noqa: ANN001
    from events.impressions import impressions_store
    from events.models import Event

    r = client_for(alice_sci_fi).get(f"/v1/recommendations/user/{alice_sci_fi.pk}?k=5&explain=1")
    assert r.status_code == 200, r.content
    body = r.json()
    assert len(body["items"]) == 5 and body["tier"] == 1 and not body["cold_start"]
    assert not {i["movie_id"] for i in body["items"]} & {101, 102, 103}
    first = body["items"][0]
    assert first["title"] and first["explanation"]["sentence"].startswith("Because you rated Sci-Fi film")
    assert set(first["explanation"]["contributions"]) == {"sasrec", "lightgcn", "ease", "diffusion"}
    impressions_store()  # with REDIS_URL the list was queued in the impression stream; without, already stored
    logged = Event.objects.filter(user=alice_sci_fi, kind="impression", request_id=body["request_id"])
    assert logged.count() == 5
    assert sorted(e.propensity for e in logged) == sorted(i["propensity"] for i in body["items"])


def test_another_users_list_is_forbidden_but_staff_may_read_any(serving, alice, bob, staff) -> None:  # noqa: ANN001
    r = client_for(bob).get(f"/v1/recommendations/user/{alice.pk}")
    assert r.status_code == 403 and "only your own" in r.json()["detail"]
    assert client_for(staff).get(f"/v1/recommendations/user/{alice.pk}").status_code == 200
    assert APIClient().get(f"/v1/recommendations/user/{alice.pk}").status_code in (401, 403)


def test_unknown_or_new_users_get_the_cold_start_list(serving, carol, staff) -> None:  # noqa: ANN001
    r = client_for(staff).get("/v1/recommendations/user/987654?k=3&explain=1")
    assert r.status_code == 200 and r.json()["cold_start"] and len(r.json()["items"]) == 3
    assert r.json()["items"][0]["explanation"]["sentence"] == "Popular with everyone right now"
    assert client_for(carol).get(f"/v1/recommendations/user/{carol.pk}").json()["cold_start"]


def test_api_keys_read_their_owners_list(serving, alice_sci_fi, api_key_for_alice) -> None:  # noqa: ANN001
    r = APIClient().get(f"/v1/recommendations/user/{alice_sci_fi.pk}?k=3", **api_key_for_alice.headers)
    assert r.status_code == 200 and len(r.json()["items"]) == 3


def test_filters_and_bad_parameters(serving, alice_sci_fi) -> None:  # noqa: ANN001
    client = client_for(alice_sci_fi)
    r = client.get(f"/v1/recommendations/user/{alice_sci_fi.pk}?k=4&genre=Drama&year_min=1990")
    assert r.status_code == 200
    assert all(i["genres"] == ["Drama"] and i["year"] >= 1990 for i in r.json()["items"])
    bad = client.get(f"/v1/recommendations/user/{alice_sci_fi.pk}?k=0")
    assert bad.status_code == 400 and "k" in bad.json()
    assert client.get(f"/v1/recommendations/user/{alice_sci_fi.pk}?year_min=2000&year_max=1990").status_code == 400


def test_movie_lists_enriched_and_knowledge_graph(serving) -> None:  # noqa: ANN001
    client = APIClient()
    r = client.get("/v1/recommendations/id/101?k=4&explain=1")
    assert r.status_code == 200 and 101 not in [i["movie_id"] for i in r.json()["items"]]
    assert r.json()["items"][0]["explanation"]["sentence"].startswith("Because you looked at Sci-Fi film 0")
    enriched = client.get("/v1/recommendations/id/101/enriched?k=3").json()
    assert all("overview" in i and "poster_path" in i for i in enriched["items"])
    graph = client.get("/v1/recommendations/knowledge-graph/101").json()
    assert {i["movie_id"] for i in graph["relations"]["franchise"]} == {102, 103}


def test_unknown_movies_are_404(serving) -> None:  # noqa: ANN001
    client = APIClient()
    assert client.get("/v1/recommendations/id/555555").status_code == 404
    assert client.get("/v1/recommendations/knowledge-graph/555555").status_code == 404
    MovieFactory(id=777, title="Not in the bundle")
    r = client.get("/v1/recommendations/id/777")
    assert r.status_code == 404 and "serving catalogue" in r.json()["detail"]


def test_activating_new_weights_changes_the_next_request_without_restart(serving, alice_sci_fi, staff) -> None:  # noqa: ANN001
    from recommendations.serving_services import ensemble_weights_create

    ensemble_weights_create(version="v1", weights={"sasrec": 0.4, "lightgcn": 0.4, "ease": 0.2}, activate=True)
    ensemble_weights_create(version="v2-ease-only", weights={"ease": 1.0})
    client = client_for(alice_sci_fi)
    url = f"/v1/recommendations/user/{alice_sci_fi.pk}?k=3&explain=1"
    assert client.get(url).json()["weights_version"] == "v1"
    assert client_for(alice_sci_fi).post("/v1/admin/reload-ensemble-weights", {"version": "v2-ease-only"},
                                         format="json").status_code == 403
    r = client_for(staff).post("/v1/admin/reload-ensemble-weights", {"version": "v2-ease-only"}, format="json")
    assert r.status_code == 200 and r.json()["active_version"] == "v2-ease-only"
    body = client.get(url).json()
    assert body["weights_version"] == "v2-ease-only"
    assert body["items"][0]["explanation"]["contributions"]["sasrec"] == 0


def test_admin_activate_action_deactivates_the_others(serving, staff) -> None:  # noqa: ANN001
    from recommendations.models import EnsembleWeights
    from recommendations.serving_services import ensemble_weights_activate, ensemble_weights_create

    a = ensemble_weights_create(version="a", weights={"ease": 1.0}, activate=True)
    b = ensemble_weights_create(version="b", weights={"sasrec": 1.0})
    ensemble_weights_activate(weights_id=b.id)
    assert list(EnsembleWeights.objects.filter(is_active=True).values_list("version", flat=True)) == ["b"]
    a.refresh_from_db()
    assert not a.is_active


def test_artifact_health_is_503_on_a_tampered_file_and_reload_is_staff_only(serving, alice, staff) -> None:  # noqa: ANN001
    client = APIClient()
    ok = client.get("/v1/artifacts/health")
    assert ok.status_code == 200 and ok.json()["ok"] and ok.json()["checked"] > 10
    assert client_for(alice).post("/v1/artifacts/reload").status_code == 403
    r = client_for(staff).post("/v1/artifacts/reload")
    assert r.status_code == 200 and r.json()["tier"] == "tier1-torch"
    (serving / "items.json").write_text("{}")
    bad = client.get("/v1/artifacts/health")
    assert bad.status_code == 503 and bad.json()["mismatches"][0]["file"] == "items.json"


def test_offline_metrics_serve_the_ensemble_card_numbers(serving) -> None:  # noqa: ANN001
    r = APIClient().get("/v1/evaluation/offline-metrics")
    assert r.status_code == 200
    ensemble = r.json()["tiny"]["ensemble"]
    assert set(ensemble["weights"]) == {"sasrec", "lightgcn", "ease", "diffusion"}
    assert 0 <= ensemble["metrics"]["test"]["ndcg@10"] <= 1


def test_no_bundle_is_503_with_a_hint(settings, tmp_path, alice) -> None:  # noqa: ANN001
    settings.ML_ARTIFACTS_DIR = tmp_path
    serving_adapter.reset_engine()
    r = client_for(alice).get(f"/v1/recommendations/user/{alice.pk}")
    assert r.status_code == 503 and "build_serving_artifacts" in r.json()["detail"]


def test_endpoints_are_in_the_openapi_schema(db) -> None:  # noqa: ANN001
    schema = APIClient().get("/v1/schema", HTTP_ACCEPT="application/json").json()
    for path in ("/v1/recommendations/user/{user_id}", "/v1/recommendations/id/{movie_id}",
                 "/v1/recommendations/id/{movie_id}/enriched", "/v1/recommendations/knowledge-graph/{movie_id}",
                 "/v1/evaluation/offline-metrics", "/v1/artifacts/reload", "/v1/artifacts/health",
                 "/v1/admin/reload-ensemble-weights"):
        assert path in schema["paths"], path


@pytest.mark.parametrize("query", ["", "k=10", "k=1&candidates=1000", "k=010", "candidates=50&k=3&k=7"])
def test_plain_list_parameters_parse_as_the_serializer_does(query) -> None:  # noqa: ANN001
    from django.http import QueryDict
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from recommendations.api import ListParams, _params

    request = Request(APIRequestFactory().get(f"/x?{query}"))
    full = ListParams(data=QueryDict(query))
    assert full.is_valid()
    p = full.validated_data
    assert _params(request) == {"k": p["k"], "genre": None, "year": None, "year_min": None, "year_max": None,
                                "explain": p["explain"], "audit": p["fairness"], "n_candidates": p["candidates"]}


@pytest.mark.parametrize("query", ["k=101", "k=0", "candidates=9", "k=²", "k=1.5"])
def test_out_of_range_plain_parameters_still_get_the_serializers_400(query) -> None:  # noqa: ANN001
    from rest_framework.exceptions import ValidationError
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from recommendations.api import _params

    with pytest.raises(ValidationError):
        _params(Request(APIRequestFactory().get(f"/x?{query}")))


def test_a_returning_request_is_served_from_the_cache_until_the_member_rates(serving, alice_sci_fi) -> None:  # noqa: ANN001
    from catalog.models import Movie
    from catalog.services.ratings import rating_upsert

    client = client_for(alice_sci_fi)
    url = f"/v1/recommendations/user/{alice_sci_fi.pk}?k=20"
    first = client.get(url).json()
    cache = APIClient().get("/v1/platform/status").json()["serving_cache"]
    again = client.get(url).json()
    after = APIClient().get("/v1/platform/status").json()["serving_cache"]
    assert after["hits"] > cache["hits"] and after["misses"] == cache["misses"]
    assert len(again["items"]) == len(first["items"]) == 20
    rated = first["items"][0]["movie_id"]
    rating_upsert(user=alice_sci_fi, movie=Movie.objects.get(id=rated), value=2.0)
    fresh = client.get(url).json()
    assert rated not in {i["movie_id"] for i in fresh["items"]}  # the new rating reached the history and the pool
    assert APIClient().get("/v1/platform/status").json()["serving_cache"]["misses"] > after["misses"]
