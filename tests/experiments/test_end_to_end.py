"""The browser journey's path without a browser (tests/flows/test_experiment_journey.py needs Chromium): admin
creates and starts an experiment, members rate, get picks and click through the API on the tiny real bundle,
the results page and the staff API show every member in their arm, and concluding records the decision."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from experiments.models import Experiment
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CLICKS = {"control": 1, "lightgcn-only": 3}


@pytest.fixture
def serving(tiny_serving: Path) -> Path:
    return tiny_serving


def _action(operator: Client, experiment: Experiment, action: str) -> str:
    r = operator.post("/admin/experiments/experiment/", {"action": action, "_selected_action": [experiment.pk]},
                      follow=True)
    return re.sub(r"\s+", " ", r.content.decode())


def test_create_start_traffic_results_conclude(serving, plans, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    operator = Client()
    operator.force_login(UserFactory(username="operator", is_staff=True, is_superuser=True))
    form = {"name": "lightgcn blend", "description": "", "metric": "click_through", "allocation": "fixed",
            "floor_share": "0.1", "guardrail_bound": "0.05", "alpha": "0.05", "arms-TOTAL_FORMS": "2",
            "arms-INITIAL_FORMS": "0", "arms-MIN_NUM_FORMS": "0", "arms-MAX_NUM_FORMS": "1000",
            "arms-0-name": "control", "arms-0-share": "0.5", "arms-0-kind": "weights", "arms-0-config": "{}",
            "arms-0-is_control": "on", "arms-1-name": "lightgcn-only", "arms-1-share": "0.5",
            "arms-1-kind": "weights", "arms-1-config": '{"weights": {"lightgcn": 1}}'}
    assert operator.post("/admin/experiments/experiment/add/", form).status_code == 302
    experiment = Experiment.objects.get(name="lightgcn blend")
    with django_capture_on_commit_callbacks(execute=True):
        assert "Experiment lightgcn blend is running" in _action(operator, experiment, "start")

    arms = []
    for n in range(12):
        member = UserFactory(username=f"member{n}")
        client = APIClient()
        client.force_authenticate(member)
        for i, movie_id in enumerate((101, 102, 103)):
            with django_capture_on_commit_callbacks(execute=True):
                r = client.post("/v1/events", {"movie_id": movie_id, "kind": "rating", "value": 5.0,
                                               "idempotency_key": f"r{i}", "occurred_at": (
                                                   dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).isoformat()},
                                format="json")
            assert r.status_code == 202, r.content
        body = client.get(f"/v1/recommendations/user/{member.pk}?k=5").json()
        arms.append(body["arm"]["arm"])
        for item in body["items"][: CLICKS[body["arm"]["arm"]]]:
            r = client.post("/v1/events", {"movie_id": item["movie_id"], "kind": "click",
                                           "idempotency_key": f"c{item['movie_id']}"}, format="json")
            assert r.status_code == 202, r.content
    assert set(arms) <= set(CLICKS) and len(arms) == 12  # both halves but for 2 salts in 4,096
    from events.impressions import impressions_store

    impressions_store()  # with REDIS_URL the lists wait in the impression stream for beat's storer

    assert "has a new look" in _action(operator, experiment, "look_now")
    page = re.sub(r"\s+", " ", operator.get(f"/admin/experiments/experiment/{experiment.pk}/change/").content.decode())
    for arm, clicks in CLICKS.items():
        if arm not in arms:
            continue
        label = arm + (" (control)" if arm == "control" else "")
        assert re.search(rf"<td>{re.escape(label)}</td><td>[0-9.]+</td><td>{arms.count(arm)}</td>"
                         rf"<td>{5 * arms.count(arm)}</td><td>{clicks / 5:.4f}</td>", page), page[:4000]
    assert 'id="experiment-plot"' in page and "Sample-ratio check: p =" in page

    assert "Experiment lightgcn blend is concluded" in _action(operator, experiment, "conclude")
    body = operator.get(f"/v1/experiments/{experiment.pk}").json()
    assert body["status"] == "concluded" and body["decision"]["action"] in ("ship", "keep control", "investigate")
    assert sum(a["members"] for a in body["arms"]) == 12 and len(body["history"]) == 4
    assert {a["name"]: a["estimate"] for a in body["arms"] if a["members"]} == {
        arm: clicks / 5 for arm, clicks in CLICKS.items() if arm in arms}
