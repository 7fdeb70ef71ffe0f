"""Platform endpoints: status, readiness, SLO window."""

from __future__ import annotations

import json

import pytest

from apex_site.slo import slo_reset

pytestmark = pytest.mark.django_db


def test_status_reports_version_tier_artifacts_and_uptime(client):
    body = client.get("/v1/platform/status").json()
    assert body["version"] == "0.1.0"
    assert {"serving_tier", "artifacts", "uptime_s"} <= body.keys()
    assert body["uptime_s"] >= 0


def test_readiness_is_503_and_names_missing_artifacts(client, settings, tmp_path):
    settings.ML_ARTIFACTS_DIR = tmp_path / "empty"
    response = client.get("/v1/platform/readiness")
    assert response.status_code == 503
    assert any("artifacts" in problem for problem in response.json()["not_ready"])
    assert response.json()["checks"]["database"] == "ok"


def test_readiness_is_200_when_every_check_passes(client, settings, tmp_path):
    model_dir = tmp_path / "ml-100k" / "ease"
    model_dir.mkdir(parents=True)
    (model_dir / "manifest.json").write_text(json.dumps({"version": "1", "files": {}}))
    settings.ML_ARTIFACTS_DIR = tmp_path
    settings.REDIS_URL = ""
    response = client.get("/v1/platform/readiness")
    assert response.status_code == 200, response.json()
    assert client.get("/v1/platform/status").json()["artifacts"] == {"ml-100k/ease": {"version": "1", "created_at": None}}


def test_readiness_names_redis_when_it_cannot_be_reached(client, settings, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text("{}")
    settings.ML_ARTIFACTS_DIR = tmp_path
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/v1/platform/readiness")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "failed"


def test_slo_reports_percentiles_per_route_against_targets(client, settings):
    settings.SLO_TARGETS_MS = {"p50": 10_000.0, "p95": 10_000.0, "p99": 10_000.0}
    slo_reset()
    for _ in range(5):
        client.get("/v1/platform/status")
    report = client.get("/v1/platform/slo").json()
    route = report["routes"]["GET /v1/platform/status"]
    assert route["count"] == 5
    assert 0 <= route["p50"] <= route["p95"] <= route["p99"]
    assert route["meets_targets"] is True


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/v1/schema")
    assert schema.status_code == 200
    assert b"/v1/platform/status" in schema.content
    assert client.get("/docs").status_code == 200
