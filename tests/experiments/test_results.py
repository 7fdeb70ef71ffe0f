"""Results from hand-made impression and event rows: per-member metric, intervals, tests, SRM, guardrail, decision."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from events.models import Event
from experiments.models import Experiment, ResultSnapshot
from experiments.selectors import experiment_results
from experiments.services import experiment_conclude, experiment_look, experiment_start, experiments_monitor
from tests.factories import MovieFactory, UserFactory

pytestmark = pytest.mark.django_db


def _row(user, movie, kind: str, at: dt.datetime, arm_id: int | None, value: float | None = None,  # noqa: ANN001
         propensity: float | None = None) -> Event:
    return Event(user=user, movie=movie, kind=kind, value=value, propensity=propensity, arm_id=arm_id,
                 idempotency_key=uuid.uuid4().hex, occurred_at=at, position=0 if kind == "impression" else None)


def _serve(arm_id: int, members: list, movies: list, clicked: dict, start: dt.datetime,  # noqa: ANN001
           kind: str = "click", values: dict | None = None) -> None:
    """Each member is shown every movie once under the arm; ``clicked[(member index, movie index)]`` answered."""
    rows = []
    for i, member in enumerate(members):
        for j, movie in enumerate(movies):
            rows.append(_row(member, movie, "impression", start, arm_id, propensity=0.5))
            if clicked.get((i, j)):
                value = (values or {}).get((i, j))
                rows.append(_row(member, movie, kind, start + dt.timedelta(minutes=5), arm_id, value=value))
    Event.objects.bulk_create(rows)


@pytest.fixture
def running(make_experiment):  # noqa: ANN001, ANN201
    experiment = experiment_start(experiment=make_experiment())
    Experiment.objects.filter(pk=experiment.pk).update(started_at=timezone.now() - dt.timedelta(hours=2))
    experiment.refresh_from_db()
    control, variant = experiment.arms.order_by("-is_control", "id")
    return experiment, control, variant


def test_click_through_is_measured_per_member_from_impressions_and_later_clicks(running) -> None:  # noqa: ANN001
    experiment, control, variant = running
    movies = [MovieFactory() for _ in range(4)]
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    start = timezone.now() - dt.timedelta(hours=1)
    _serve(control.pk, [a, b], movies, {(0, 0): True, (1, 0): True, (1, 1): True}, start)  # 1/4, 2/4
    _serve(variant.pk, [c], movies, {(0, 0): True, (0, 1): True, (0, 2): True}, start)  # 3/4
    # not counted: a click before its impression, a click two days later, an impression the arm did not serve
    Event.objects.bulk_create([
        _row(a, movies[3], "click", start - dt.timedelta(minutes=1), control.pk),
        _row(c, movies[3], "click", start + dt.timedelta(days=2), variant.pk),
        _row(a, MovieFactory(), "impression", start, None, propensity=0.5)])
    results = experiment_results(experiment=experiment, until=timezone.now() + dt.timedelta(days=3))
    by_name = {r.name: r for r in results.arms}
    assert by_name["control"].members == 2 and by_name["control"].impressions == 8
    assert by_name["control"].estimate == pytest.approx(0.375)  # (0.25 + 0.5) / 2
    # normal interval: 0.375 +- 1.96 * sd(0.25, 0.5) / sqrt(2), sd = 0.17678
    assert by_name["control"].ci_low == pytest.approx(0.375 - 1.959964 * 0.1767767 / 2**0.5, abs=1e-5)
    assert by_name["explore"].estimate == pytest.approx(0.75) and by_name["explore"].members == 1
    assert by_name["explore"].p_value == 1.0 and not by_name["explore"].significant  # one member: no evidence
    assert results.recommendation["action"] == "keep control"


def test_mean_rating_averages_each_members_ratings_of_what_the_arm_showed(make_experiment) -> None:  # noqa: ANN001
    experiment = experiment_start(experiment=make_experiment(metric="mean_rating"))
    Experiment.objects.filter(pk=experiment.pk).update(started_at=timezone.now() - dt.timedelta(hours=2))
    experiment.refresh_from_db()
    control = experiment.arms.get(is_control=True)
    movies = [MovieFactory() for _ in range(3)]
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    start = timezone.now() - dt.timedelta(hours=1)
    _serve(control.pk, [a, b, c], movies, {(0, 0): True, (0, 1): True, (1, 2): True}, start, kind="rating",
           values={(0, 0): 5.0, (0, 1): 3.0, (1, 2): 2.0})
    row = next(r for r in experiment_results(experiment=experiment).arms if r.is_control)
    assert row.members == 2 and row.estimate == pytest.approx(3.0)  # a: 4.0, b: 2.0; c rated nothing


def test_a_clearly_better_arm_is_significant_and_the_conclusion_records_it(running) -> None:  # noqa: ANN001
    experiment, control, variant = running
    movies = [MovieFactory() for _ in range(4)]
    start = timezone.now() - dt.timedelta(hours=1)
    controls, variants = [UserFactory() for _ in range(60)], [UserFactory() for _ in range(60)]
    _serve(control.pk, controls, movies, {(i, 0): True for i in range(0, 60, 3)}, start)  # 1/3 of members, 1/4
    _serve(variant.pk, variants, movies, {(i, j): True for i in range(60) for j in range(3)}, start)  # 3/4 each
    experiment_look(experiment=experiment)
    results = experiment_results(experiment=experiment)
    variant_row = next(r for r in results.arms if r.name == "explore")
    assert variant_row.significant and variant_row.difference == pytest.approx(0.75 - 20 * 0.25 / 60)
    assert results.srm is not None and not results.srm["mismatch"] and results.srm["observed"] == [60, 60]
    assert results.recommendation["action"] == "ship" and results.recommendation["winner"] == "explore"
    concluded = experiment_conclude(experiment=experiment, note="ship it")
    assert concluded.status == "concluded" and concluded.stopped_at is not None
    assert concluded.decision["action"] == "ship" and concluded.decision["winner"] == "explore"
    assert concluded.decision["note"] == "ship it" and len(concluded.decision["arms"]) == 2
    assert ResultSnapshot.objects.filter(experiment=experiment).count() == 4  # the look, and the stop's last look


def test_a_sample_ratio_mismatch_says_investigate(running) -> None:  # noqa: ANN001
    experiment, control, variant = running
    movies = [MovieFactory()]
    start = timezone.now() - dt.timedelta(hours=1)
    _serve(control.pk, [UserFactory() for _ in range(90)], movies, {}, start)
    _serve(variant.pk, [UserFactory() for _ in range(30)], movies, {}, start)
    results = experiment_results(experiment=experiment)
    assert results.srm["mismatch"] and results.srm["observed"] == [90, 30]  # 50/50 planned: p ~ 4e-8
    assert results.recommendation["action"] == "investigate"


def test_the_monitor_stops_an_arm_past_its_guardrail_and_moves_its_traffic(running, django_capture_on_commit_callbacks
                                                                          ) -> None:  # noqa: ANN001
    from experiments.assignment import member_arm

    experiment, control, variant = running
    movies = [MovieFactory() for _ in range(4)]
    start = timezone.now() - dt.timedelta(hours=1)
    _serve(control.pk, [UserFactory() for _ in range(80)], movies,
           {(i, j): True for i in range(80) for j in range(2)}, start)  # every member clicks half
    _serve(variant.pk, [UserFactory() for _ in range(80)], movies, {}, start)  # nobody clicks anything
    with django_capture_on_commit_callbacks(execute=True):
        assert experiments_monitor() == 1
    variant.refresh_from_db()
    assert variant.stopped_at is not None and variant.stop_reason.startswith("guardrail: explore - control = -0.5000")
    control.refresh_from_db()
    assert control.stopped_at is None
    assert {member_arm(user_id=u).arm_name for u in range(1, 500)} == {"control"}  # the snapshot was republished


def test_a_small_drop_within_the_bound_does_not_stop_the_arm(running) -> None:  # noqa: ANN001
    experiment, control, variant = running
    Experiment.objects.filter(pk=experiment.pk).update(guardrail_bound=0.5)
    experiment.refresh_from_db()
    movies = [MovieFactory() for _ in range(4)]
    start = timezone.now() - dt.timedelta(hours=1)
    _serve(control.pk, [UserFactory() for _ in range(80)], movies, {(i, 0): True for i in range(80)}, start)
    _serve(variant.pk, [UserFactory() for _ in range(80)], movies, {}, start)  # 0.25 below, bound 0.5
    experiment_look(experiment=experiment)
    variant.refresh_from_db()
    assert variant.stopped_at is None


def test_thompson_allocation_moves_traffic_to_the_better_arm_but_keeps_the_floor(make_experiment) -> None:  # noqa: ANN001
    experiment = experiment_start(experiment=make_experiment(allocation="thompson", floor_share=0.1,
                                                             guardrail_bound=0.9))
    Experiment.objects.filter(pk=experiment.pk).update(started_at=timezone.now() - dt.timedelta(hours=2))
    experiment.refresh_from_db()
    control, variant = experiment.arms.order_by("-is_control", "id")
    movies = [MovieFactory() for _ in range(4)]
    start = timezone.now() - dt.timedelta(hours=1)
    _serve(control.pk, [UserFactory() for _ in range(30)], movies, {(i, 0): True for i in range(30)}, start)
    _serve(variant.pk, [UserFactory() for _ in range(30)], movies,
           {(i, j): True for i in range(30) for j in range(3)}, start)
    experiment_look(experiment=experiment)
    experiment.refresh_from_db()
    shares = {int(k): v for k, v in experiment.allocation_probabilities.items()}
    assert shares[variant.pk] == pytest.approx(0.9, abs=1e-6) and shares[control.pk] == pytest.approx(0.1, abs=1e-6)
    assert experiment.allocation_updated_at is not None


def test_members_results_are_cuped_adjusted_by_their_pre_period(running, settings) -> None:  # noqa: ANN001
    """A member's click-through before the start is the covariate (EXPERIMENTS_CUPED_DAYS): the arms' estimates are
    y - theta (x - mean x), theta = cov(x, y) / var(x) over every member, and the intervals narrow."""
    import numpy as np

    experiment, control, variant = running
    movies = [MovieFactory() for _ in range(4)]
    members = [UserFactory() for _ in range(6)]
    before_at = experiment.started_at - dt.timedelta(days=3)
    start = timezone.now() - dt.timedelta(hours=1)
    pre_clicks = [1, 3, 2, 0, 4, 1]  # of 4 shown before the start (no arm)
    post_clicks = [1, 3, 2, 1, 4, 2]  # of 4 shown under the arm
    for i, member in enumerate(members):
        _serve(0, [member], movies, {(0, j): j < pre_clicks[i] for j in range(4)}, before_at)
        arm = control.pk if i < 3 else variant.pk
        _serve(arm, [member], movies, {(0, j): j < post_clicks[i] for j in range(4)}, start)
    Event.objects.filter(arm_id=0).update(arm_id=None)
    until = timezone.now() + dt.timedelta(days=3)
    adjusted = {r.name: r for r in experiment_results(experiment=experiment, until=until).arms}
    x, y = np.array(pre_clicks) / 4, np.array(post_clicks) / 4
    theta = ((x - x.mean()) * (y - y.mean())).mean() / x.var()
    cuped = y - theta * (x - x.mean())
    assert adjusted["control"].estimate == pytest.approx(cuped[:3].mean())
    assert adjusted["explore"].estimate == pytest.approx(cuped[3:].mean())
    settings.EXPERIMENTS_CUPED_DAYS = 0
    from django.core.cache import cache

    cache.clear()
    plain = {r.name: r for r in experiment_results(experiment=experiment, until=until).arms}
    assert plain["control"].estimate == pytest.approx(y[:3].mean())
    assert (adjusted["control"].ci_high - adjusted["control"].ci_low
            < plain["control"].ci_high - plain["control"].ci_low)  # the pre-period explains part of the spread
