"""GET /v1/experiments/{id}: staff only (403 otherwise), 404 for an unknown id, the results with their schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from experiments.services import experiment_start

pytestmark = pytest.mark.django_db


def _client(user=None) -> APIClient:  # noqa: ANN001
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_members_are_refused_and_anonymous_callers_must_sign_in(make_experiment, alice) -> None:  # noqa: ANN001
    experiment = make_experiment()
    r = _client(alice).get(f"/v1/experiments/{experiment.pk}")
    assert r.status_code == 403 and r["Content-Type"].startswith("application/json")
    assert _client(alice).get("/v1/experiments/999999").status_code == 403  # no probing which ids exist
    assert _client().get(f"/v1/experiments/{experiment.pk}").status_code in (401, 403)


def test_staff_get_404_for_an_unknown_experiment(staff) -> None:  # noqa: ANN001
    r = _client(staff).get("/v1/experiments/999999")
    assert r.status_code == 404 and "No experiment with id 999999" in r.json()["detail"]


def test_staff_read_the_arms_results_and_recommendation(make_experiment, staff) -> None:  # noqa: ANN001
    experiment = experiment_start(experiment=make_experiment(name="temperature test"))
    body = _client(staff).get(f"/v1/experiments/{experiment.pk}").json()
    assert body["id"] == experiment.pk and body["name"] == "temperature test" and body["status"] == "running"
    assert [a["name"] for a in body["arms"]] == ["control", "explore"]
    control, explore = body["arms"]
    assert control["is_control"] and control["members"] == 0 and control["estimate"] is None
    assert explore["config"] == {"epsilon": 0.2} and explore["allocation"] == 0.5 and explore["p_value"] == 1.0
    assert body["srm"]["observed"] == [0, 0] and body["recommendation"]["action"] == "keep control"
    assert body["decision"] == {} and body["history"] == []


def test_the_endpoint_is_in_the_openapi_schema(staff) -> None:  # noqa: ANN001
    schema = _client(staff).get("/v1/schema?format=json").json()
    operation = schema["paths"]["/v1/experiments/{experiment_id}"]["get"]
    assert {"200", "403", "404"} <= set(operation["responses"])
