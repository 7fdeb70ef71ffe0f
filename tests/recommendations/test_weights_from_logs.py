"""The nightly weights step: served lists rebuilt from impression rows, clicks attributed, weights re-selected by DR."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommendations import nightly
from recommendations import serving as serving_adapter
from tests.factories import RatingFactory, UserFactory
from tests.ml_core.serving_bundle import GENRES, N_PER_GENRE

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
def serving(tiny_serving: Path) -> Path:
    return tiny_serving


def _click(user: Any, movie_id: int, at: dt.datetime, kind: str = "click") -> None:
    from events.models import Event

    Event.objects.create(user=user, movie_id=movie_id, kind=kind, idempotency_key=f"c{Event.objects.count()}",
                         occurred_at=at)


def _serve(user: Any, history: list[int], request_id: str, at: dt.datetime, seed: int, arm_id: int | None = None,
           temperature: float | None = 0.5) -> list[int]:
    """A list served and its impressions logged; ``temperature`` None: the bundle's own (what the logs assume)."""
    from events.services import impression_log_batch

    extra = {} if temperature is None else {"temperature": temperature}
    result = serving_adapter.get_engine().recommend_user(history, seed=seed, **extra)
    ids = [it["movie_id"] for it in result.items]
    events = impression_log_batch(user=user, movie_ids=ids, propensities=[it["propensity"] for it in result.items],
                                  positions=list(range(len(ids))), policy_version="test", request_id=request_id,
                                  served_at=at, arm_id=arm_id)
    assert len(events) == len(ids)
    return ids


def test_lists_carry_the_history_before_them_and_clicks_within_a_day(serving) -> None:  # noqa: ANN001
    from recommendations.weights_from_logs import served_lists_since

    user = UserFactory()
    for i, movie_id in enumerate([101, 102, 103]):
        RatingFactory(user=user, movie_id=movie_id, value=5.0, rated_at=NOW - dt.timedelta(days=3 - i))
    RatingFactory(user=user, movie_id=104, value=4.0, rated_at=NOW + dt.timedelta(hours=2))  # after the list
    ids = _serve(user, [101, 102, 103], "r1", NOW, seed=1)
    _serve(user, [101, 102, 103], "r-arm", NOW, seed=2, arm_id=7)  # an experiment arm's list: not ours to judge
    _click(user, ids[1], NOW + dt.timedelta(hours=1))
    _click(user, ids[2], NOW + dt.timedelta(days=2))  # too late to count
    _click(user, ids[3], NOW - dt.timedelta(hours=1))  # before the list
    lists = served_lists_since(since=NOW - dt.timedelta(days=7))
    assert len(lists) == 1
    (served,) = lists
    assert list(served.movie_ids) == ids and served.history == [101, 102, 103]
    assert served.ratings == [5.0, 5.0, 5.0] and served.temperature is None
    assert served.rewards[:4] == [0.0, 1.0, 0.0, 0.0] and sum(served.rewards) == 1.0


def test_with_too_few_lists_the_step_keeps_the_weights_and_records_why(serving) -> None:  # noqa: ANN001
    from recommendations.models import EnsembleWeights, PipelineRun

    (run,) = nightly.nightly_run(steps=("weights",))
    assert run.step == "weights" and run.status == PipelineRun.Status.SUCCEEDED
    assert run.detail["decision"] == "kept" and "fewer than" in run.detail["why"]
    assert not EnsembleWeights.objects.filter(source="ope").exists()


def test_enough_lists_with_clicks_on_the_members_genre_move_the_weights_off_a_bad_blend(serving) -> None:  # noqa: ANN001
    from recommendations.models import EnsembleWeights
    from recommendations.serving_services import ensemble_weights_create
    from recommendations.weights_from_logs import ensemble_weights_from_logs

    names = list(serving_adapter.get_engine().weights)
    bad = {n: (1.0 if n == "diffusion" else 0.0) for n in names}  # 2 quick epochs of diffusion alone
    ensemble_weights_create(version="bad", weights=bad, activate=True)
    serving_adapter.reset_engine()
    rng = np.random.default_rng(0)
    exam = 1 / np.log2(np.arange(10) + 2)
    for u in range(8):
        g = u % len(GENRES)
        user = UserFactory()
        history = [101 + g * N_PER_GENRE + j for j in range(3)]
        for i, movie_id in enumerate(history):
            RatingFactory(user=user, movie_id=movie_id, value=5.0, rated_at=NOW - dt.timedelta(days=5, hours=i))
        for r in range(70):
            at = NOW - dt.timedelta(days=2, minutes=r)
            ids = _serve(user, history, f"u{u}r{r}", at, seed=u * 1000 + r)
            for j, m in enumerate(ids):
                own = (m - 101) // N_PER_GENRE == g
                if rng.random() < exam[j] * (0.9 if own else 0.02):
                    _click(user, m, at + dt.timedelta(minutes=5))
    detail = ensemble_weights_from_logs(min_lists=500, now=NOW)
    assert detail["rows"] == 560 and detail["n_usable"] == 560
    assert detail["served"]["dr"] < detail["best"]["dr"]
    assert detail["decision"] == "changed", detail["why"]
    active = EnsembleWeights.objects.get(is_active=True)
    assert active.source == "ope" and active.version == detail["version"]
    assert active.weights["diffusion"] < 0.9


def test_a_drafts_arms_are_estimated_from_the_served_logs_before_launch(serving, staff, client) -> None:  # noqa: ANN001
    """Issue 21: weights and temperature arms get every estimator from the logs another policy served; an arm the
    logged propensities cannot describe says so; the admin action stores and shows it."""
    from experiments.models import Arm, Experiment
    from recommendations.weights_from_logs import experiment_arms_estimate

    names = list(serving_adapter.get_engine().weights)
    experiment = Experiment.objects.create(name="pre-launch")
    for name, share, kind, config, control in (
            ("control", 0.25, "exploration", {}, True),
            ("one model", 0.25, "weights", {"weights": {names[0]: 1.0}}, False),
            ("hot", 0.25, "exploration", {"temperature": 2.0}, False),
            ("greedy", 0.25, "exploration", {"epsilon": 0.1}, False)):
        Arm.objects.create(experiment=experiment, name=name, share=share, kind=kind, config=config, is_control=control)
    rng = np.random.default_rng(0)
    clicks = 0
    for u in range(4):
        g = u % len(GENRES)
        user = UserFactory()
        history = [101 + g * N_PER_GENRE + j for j in range(3)]
        for i, movie_id in enumerate(history):
            RatingFactory(user=user, movie_id=movie_id, value=5.0, rated_at=NOW - dt.timedelta(days=5, hours=i))
        for r in range(20):
            at = NOW - dt.timedelta(days=2, minutes=r)
            for m in _serve(user, history, f"p{u}r{r}", at, seed=u * 100 + r, temperature=None)[:3]:
                if rng.random() < (0.6 if (m - 101) // N_PER_GENRE == g else 0.05):
                    _click(user, m, at + dt.timedelta(minutes=5))
                    clicks += 1
    found = experiment_arms_estimate(experiment=experiment, min_lists=50, now=NOW)
    assert found["n_usable"] == 80 and clicks > 0
    from recommendations.weights_from_logs import served_lists_since

    logged = served_lists_since(since=NOW - dt.timedelta(days=7))
    control, one, hot = (found["arms"][n] for n in ("control", "one model", "hot"))
    # the logging policy itself: IPS is the mean reward per served list
    assert control["IPS"]["value"] == pytest.approx(np.mean([sum(x.rewards) for x in logged]), rel=0.02)
    for est in (control, one, hot):
        assert {"IPS", "SNIPS", "DM", "DR", "DR-clip", "switch-DR"} == set(est)
        assert all(e["low"] <= e["value"] <= e["high"] for e in est.values())
    assert "not estimable offline" in found["arms"]["greedy"]["why"]
    experiment.refresh_from_db()
    assert experiment.offline_estimates["arms"]["hot"] == hot
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    page = client.get(f"/admin/experiments/experiment/{experiment.pk}/change/").content.decode()
    assert 'id="experiment-offline"' in page and "not estimable offline" in page
