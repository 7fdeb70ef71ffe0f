"""Experiment reads: who may see one, each arm's traffic probability, and the results from the logged rows.

Results are measured per member, the unit that is randomised: a member's value is the share of the distinct
movies an arm showed them that they then clicked (rated, watched) within ``ATTRIBUTION_WINDOW``, or for mean
rating the mean of the ratings they gave those movies. Each arm's estimate is the mean over its members, with a
normal confidence interval; each treatment is compared with control by the mixture SPRT
(``ml_core.experiments.stats``), whose p-value is the running minimum over the looks the monitor stored plus this
one, so it stays valid however often the page is refreshed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from events.selectors import MemberOutcome, arm_member_outcomes, member_outcomes
from ml_core.experiments.stats import ArmStats, arm_estimate, cuped_arms, msprt_monitor, srm_check

from .models import Arm, Experiment, ResultSnapshot

ATTRIBUTION_WINDOW = dt.timedelta(hours=24)
RESULTS_TTL_S = 30
METRIC_EVENT: dict[str, str] = {Experiment.Metric.CLICK_THROUGH: "click", Experiment.Metric.RATING_RATE: "rating",
                Experiment.Metric.WATCH_RATE: "watch", Experiment.Metric.MEAN_RATING: "rating"}


def experiment_get_for(*, user: AbstractBaseUser | AnonymousUser, experiment_id: int) -> Experiment:
    """The experiment for a staff member; PermissionDenied for anyone else, Http404 when there is none."""
    if not getattr(user, "is_staff", False):
        raise PermissionDenied("Experiments are visible to staff only.")
    experiment = Experiment.objects.prefetch_related("arms").filter(pk=experiment_id).first()
    if experiment is None:
        raise Http404(f"No experiment with id {experiment_id}.")
    return experiment


def arm_probabilities(*, experiment: Experiment) -> dict[int, float]:
    """Each arm's traffic probability now: the stored Thompson allocation (fixed shares until the first one),
    stopped arms 0, the rest renormalised to sum 1."""
    arms = list(experiment.arms.all())
    stored = {int(k): float(v) for k, v in (experiment.allocation_probabilities or {}).items()}
    use_stored = experiment.allocation == Experiment.Allocation.THOMPSON and stored
    raw = {a.pk: 0.0 if a.stopped_at else (stored.get(a.pk, 0.0) if use_stored else a.share) for a in arms}
    total = sum(raw.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in raw.items()}


def _member_values(outcomes: list[MemberOutcome], metric: str) -> dict[int, dict[int, float]]:
    """arm -> member -> the member's metric value (members without a value for mean rating are left out)."""
    values: dict[int, dict[int, float]] = {}
    for o in outcomes:
        if metric == Experiment.Metric.MEAN_RATING:
            if o.hits:
                values.setdefault(o.arm_id, {})[o.user_id] = o.value_sum / o.hits
        else:
            values.setdefault(o.arm_id, {})[o.user_id] = o.hits / o.shown
    return values


def arm_stats_now(*, experiment: Experiment, until: dt.datetime | None = None) -> tuple[dict[int, ArmStats],
                                                                                          dict[int, int]]:
    """Each arm's sufficient statistics from the logged rows, and its distinct impressions shown.

    With ``EXPERIMENTS_CUPED_DAYS`` > 0 the members' values are CUPED-adjusted: the covariate is the same metric
    over the member's impressions in that many days before the start (members without one get the mean, so they
    are not adjusted). The adjustment keeps the arms' difference unbiased and removes the share of its variance
    the pre-period explains; it is what lets a member-level test find a few per cent lift at practical sizes
    (docs/EXPERIMENTS.md: 25.5% of A/B runs decided correctly without it, 95.5% with it at 5,000 lists per arm)."""
    arms = list(experiment.arms.all())
    if experiment.started_at is None:
        return {a.pk: ArmStats(0, 0.0, 0.0) for a in arms}, {a.pk: 0 for a in arms}
    end = until or experiment.stopped_at or timezone.now()
    kind = METRIC_EVENT[experiment.metric]
    outcomes = arm_member_outcomes(arm_ids=[a.pk for a in arms], kind=kind, since=experiment.started_at, until=end,
                                   window=ATTRIBUTION_WINDOW)
    values = _member_values(outcomes, experiment.metric)
    shown: dict[int, int] = {}
    for o in outcomes:
        shown[o.arm_id] = shown.get(o.arm_id, 0) + o.shown
    shown_by_arm = {a.pk: shown.get(a.pk, 0) for a in arms}
    days = settings.EXPERIMENTS_CUPED_DAYS
    members = sorted({user for by_user in values.values() for user in by_user})
    before = {}
    if days > 0 and members:
        pre = member_outcomes(user_ids=members, kind=kind, since=experiment.started_at - dt.timedelta(days=days),
                              until=experiment.started_at, window=ATTRIBUTION_WINDOW)
        before = _member_values(pre, experiment.metric).get(0, {})
    if not before:
        return {a.pk: ArmStats.from_values(list(values.get(a.pk, {}).values())) for a in arms}, shown_by_arm
    fill = sum(before.values()) / len(before)
    adjusted, _ = cuped_arms([np.fromiter(values.get(a.pk, {}).values(), float) for a in arms],
                             [np.asarray([before.get(u, fill) for u in values.get(a.pk, {})], float) for a in arms])
    return dict(zip([a.pk for a in arms], adjusted, strict=True)), shown_by_arm


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


@dataclass
class ArmResult:
    """One arm's row of the results."""

    id: int
    name: str
    kind: str
    config: dict[str, Any]
    is_control: bool
    share: float
    allocation: float
    stopped_at: dt.datetime | None
    stop_reason: str
    members: int
    impressions: int
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    difference: float | None = None
    difference_low: float | None = None
    difference_high: float | None = None
    p_value: float | None = None
    significant: bool = False


@dataclass
class Results:
    """An experiment's results at one time: the arms, the sample-ratio check and the recommended decision."""

    experiment_id: int
    metric: str
    status: str
    computed_at: dt.datetime
    alpha: float
    arms: list[ArmResult]
    srm: dict[str, Any] | None
    recommendation: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _looks(experiment: Experiment, control: Arm, arm: Arm, now: dict[int, ArmStats]
           ) -> list[tuple[ArmStats, ArmStats]]:
    """The (control, arm) statistics at every stored look, oldest first, then now's."""
    by_time: dict[dt.datetime, dict[int, ArmStats]] = {}
    for s in experiment.snapshots.filter(arm_id__in=[control.pk, arm.pk]).order_by("computed_at"):
        by_time.setdefault(s.computed_at, {})[s.arm_id] = ArmStats(s.members, s.total, s.total_sq)
    looks = [(v[control.pk], v[arm.pk]) for _, v in sorted(by_time.items()) if control.pk in v and arm.pk in v]
    return [*looks, (now[control.pk], now[arm.pk])]


def _srm(experiment: Experiment, arms: list[Arm], stats: dict[int, ArmStats]) -> dict[str, Any] | None:
    """Members per arm against the planned shares (fixed allocation, arms never stopped; else not applicable)."""
    live = [a for a in arms if not a.stopped_at and a.share > 0]
    if experiment.allocation != Experiment.Allocation.FIXED or len(live) < 2:
        return None
    counts = [stats[a.pk].n for a in live]
    result = srm_check(counts, [a.share for a in live])
    return {"observed": counts, "expected": [round(e, 2) for e in result.expected], "chi2": round(result.chi2, 4),
            "p_value": _finite(result.p_value), "mismatch": result.mismatch, "arms": [a.name for a in live]}


def _recommend(rows: list[ArmResult], srm: dict[str, Any] | None, alpha: float) -> dict[str, Any]:
    control = next((r for r in rows if r.is_control), None)
    winners = [r for r in rows if not r.is_control and r.significant and (r.difference or 0) > 0 and not r.stopped_at]
    if srm is not None and srm["mismatch"]:
        return {"action": "investigate", "winner": None,
                "reason": f"sample-ratio mismatch (p = {srm['p_value']:.2g}): assignment or logging is broken, the "
                          "estimates cannot be trusted"}
    if winners:
        best = max(winners, key=lambda r: r.difference or 0.0)
        return {"action": "ship", "winner": best.name,
                "reason": f"{best.name} beats control by {best.difference:+.4f} (always-valid p = {best.p_value:.3g}"
                          f" <= {alpha})"}
    return {"action": "keep control", "winner": control.name if control else None,
            "reason": f"no live arm beats control at always-valid p <= {alpha} yet"}


def experiment_results(*, experiment: Experiment, until: dt.datetime | None = None,
                       measured: tuple[dict[int, ArmStats], dict[int, int]] | None = None) -> Results:
    """Per-arm estimates with intervals, always-valid tests against control, SRM and the recommended decision.

    ``measured``: ``arm_stats_now``'s answer when the caller has it already."""
    arms = list(experiment.arms.all())
    stats, shown = measured or arm_stats_now(experiment=experiment, until=until)
    probabilities = arm_probabilities(experiment=experiment)
    control = next((a for a in arms if a.is_control), None)
    rows = []
    for arm in arms:
        est = arm_estimate(stats[arm.pk], binary=False, alpha=experiment.alpha)
        row = ArmResult(arm.pk, arm.name, arm.kind, arm.config, arm.is_control, arm.share,
                        round(probabilities.get(arm.pk, 0.0), 6), arm.stopped_at, arm.stop_reason, stats[arm.pk].n,
                        shown[arm.pk], _finite(est.mean), _finite(est.low), _finite(est.high))
        if control is not None and arm.pk != control.pk:
            test = msprt_monitor(_looks(experiment, control, arm, stats), binary=False, alpha=experiment.alpha)[-1]
            row.difference, row.difference_low, row.difference_high = (
                _finite(test.difference), _finite(test.low), _finite(test.high))
            row.p_value, row.significant = float(test.p_value), bool(test.reject)
        rows.append(row)
    srm = _srm(experiment, arms, stats)
    return Results(experiment.pk, experiment.metric, experiment.status, until or timezone.now(), experiment.alpha,
                   rows, srm, _recommend(rows, srm, experiment.alpha), experiment_history(experiment=experiment))


def experiment_results_recent(*, experiment: Experiment) -> Results:
    """``experiment_results``, reused for ``RESULTS_TTL_S`` by the admin page and the API (the computation reads every
    impression row of the experiment, seconds for 100,000 of them); a new look, a status change or a stopped arm
    makes it fresh at once."""
    last = experiment.snapshots.order_by("-computed_at").values_list("computed_at", flat=True).first()
    arms = [(a.pk, a.stopped_at) for a in experiment.arms.all()]
    key = "apex:experiments:results:" + hashlib.sha256(
        repr((experiment.pk, experiment.status, experiment.updated_at, last, arms)).encode()).hexdigest()[:32]
    results: Results | None = cache.get(key)
    if results is None:
        results = experiment_results(experiment=experiment)
        cache.set(key, results, RESULTS_TTL_S)
    return results


def experiment_history(*, experiment: Experiment) -> list[dict[str, Any]]:
    """Every stored look, oldest first: the arm, its estimate and interval, its p-value, its traffic share."""
    return [{"arm_id": s.arm_id, "computed_at": s.computed_at, "members": s.members, "estimate": _finite(s.estimate),
             "ci_low": _finite(s.ci_low), "ci_high": _finite(s.ci_high), "p_value": s.p_value,
             "allocation": round(s.allocation, 6)}
            for s in ResultSnapshot.objects.filter(experiment=experiment).order_by("computed_at", "arm_id")]

