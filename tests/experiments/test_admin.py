"""The experiment admin: arms validated together, start/stop/conclude actions, the results panel and its figure."""

from __future__ import annotations

import pytest
from django.test import Client

from experiments.models import Experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):  # noqa: ANN001, ANN201
    from tests.factories import UserFactory

    user = UserFactory(username="operator", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def _form(name: str, arms: list[tuple[str, str, str, str, bool]]) -> dict[str, str]:
    data = {"name": name, "description": "", "metric": "click_through", "allocation": "fixed", "floor_share": "0.1",
            "guardrail_bound": "0.05", "alpha": "0.05", "arms-TOTAL_FORMS": str(len(arms)),
            "arms-INITIAL_FORMS": "0", "arms-MIN_NUM_FORMS": "0", "arms-MAX_NUM_FORMS": "1000"}
    for i, (arm, share, kind, config, control) in enumerate(arms):
        data.update({f"arms-{i}-name": arm, f"arms-{i}-share": share, f"arms-{i}-kind": kind,
                     f"arms-{i}-config": config})
        if control:
            data[f"arms-{i}-is_control"] = "on"
    return data


def test_arms_whose_shares_do_not_sum_to_one_are_refused_with_the_reason(operator) -> None:  # noqa: ANN001
    r = operator.post("/admin/experiments/experiment/add/", _form("bad", [
        ("control", "0.5", "exploration", "{}", True), ("hot", "0.6", "exploration", '{"temperature": 2}', False)]))
    assert r.status_code == 200 and not Experiment.objects.exists()
    assert "The arms&#x27; traffic shares must sum to 1 (they sum to 1.1)." in r.content.decode()
    r = operator.post("/admin/experiments/experiment/add/", _form("bad", [
        ("control", "0.5", "exploration", "{}", True), ("hot", "0.5", "tier", '{"tier": "gpu"}', False)]))
    assert "tier is one of full, lite, got &#x27;gpu&#x27;." in r.content.decode()


def test_an_operator_creates_starts_looks_at_and_concludes_an_experiment(operator) -> None:  # noqa: ANN001
    r = operator.post("/admin/experiments/experiment/add/", _form("temperature", [
        ("control", "0.5", "exploration", "{}", True), ("hot", "0.5", "exploration", '{"temperature": 2}', False)]))
    assert r.status_code == 302, r.content.decode()[-3000:]
    experiment = Experiment.objects.get(name="temperature")
    assert [a.name for a in experiment.arms.all()] == ["control", "hot"]
    for action, status in (("start", "running"), ("look_now", "running"), ("conclude", "concluded")):
        r = operator.post("/admin/experiments/experiment/", {"action": action, "_selected_action": [experiment.pk]},
                          follow=True)
        assert r.status_code == 200
        experiment.refresh_from_db()
        assert experiment.status == status, r.content.decode()
    page = operator.get(f"/admin/experiments/experiment/{experiment.pk}/change/").content.decode()
    assert 'id="experiment-results"' in page and 'id="experiment-plot"' in page
    assert "keep control" in page and 'id="experiment-decision"' in page
    png = operator.get(f"/admin/experiments/experiment/{experiment.pk}/plot.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_starting_an_experiment_with_broken_arms_says_why(operator) -> None:  # noqa: ANN001
    experiment = Experiment.objects.create(name="no arms")
    r = operator.post("/admin/experiments/experiment/", {"action": "start", "_selected_action": [experiment.pk]},
                      follow=True)
    assert "No arms: An experiment needs at least two arms" in r.content.decode()
    experiment.refresh_from_db()
    assert experiment.status == "draft"


def test_the_figure_needs_staff(make_experiment, alice) -> None:  # noqa: ANN001
    client = Client()
    client.force_login(alice)
    r = client.get(f"/admin/experiments/experiment/{make_experiment().pk}/plot.png")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_only_a_draft_can_be_deleted(operator, make_experiment) -> None:  # noqa: ANN001
    from experiments.services import experiment_start

    draft, running = make_experiment(name="draft"), experiment_start(experiment=make_experiment(name="running"))
    assert operator.get(f"/admin/experiments/experiment/{running.pk}/delete/").status_code == 403
    assert operator.post(f"/admin/experiments/experiment/{draft.pk}/delete/", {"post": "yes"}).status_code == 302
    assert list(Experiment.objects.values_list("name", flat=True)) == ["running"]
    changelist = operator.get("/admin/experiments/experiment/").content.decode()
    assert 'value="delete_selected"' not in changelist
