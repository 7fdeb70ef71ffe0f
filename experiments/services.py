"""Experiment writes: validate, start, stop, conclude; the monitor's look (results stored, guardrail, Thompson).

Every change to a running experiment republishes the bucketing snapshot after commit
(``experiments.assignment.snapshot_publish``), so every process serves the new arms on its next request.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ml_core.experiments.stats import arm_estimate, guardrail_check, thompson_allocation

from .arms import arm_config_validate
from .assignment import snapshot_publish
from .models import Arm, Experiment, ResultSnapshot
from .selectors import arm_probabilities, arm_stats_now, experiment_results

log = logging.getLogger(__name__)

SHARE_TOLERANCE = 1e-6
Status = Experiment.Status


def experiment_arms_validate(*, experiment: Experiment, arms: list[dict[str, Any]]) -> None:
    """ValidationError unless the arms make a runnable experiment: two or more, unique names, exactly one control,
    shares in [0, 1] summing to 1, each config of its kind's shape, and room for the floor share of every arm.

    ``arms``: dicts with name, share, kind, config, is_control (the admin's inline forms, or the stored arms)."""
    errors: list[str] = []
    if len(arms) < 2:
        errors.append("An experiment needs at least two arms (a control and a variant).")
    names = [a["name"] for a in arms]
    if len(set(names)) != len(names):
        errors.append("Arm names must be unique within the experiment.")
    controls = sum(1 for a in arms if a["is_control"])
    if controls != 1:
        errors.append(f"Exactly one arm must be the control (found {controls}).")
    total = sum(float(a["share"]) for a in arms)
    if arms and abs(total - 1.0) > SHARE_TOLERANCE:
        errors.append(f"The arms' traffic shares must sum to 1 (they sum to {total:.6g}).")
    if any(not 0 <= float(a["share"]) <= 1 for a in arms):
        errors.append("Each share is a fraction between 0 and 1.")
    if experiment.allocation == Experiment.Allocation.THOMPSON and arms and experiment.floor_share * len(arms) > 1:
        errors.append(f"The floor share {experiment.floor_share:g} times {len(arms)} arms exceeds all traffic; "
                      f"use at most {1 / len(arms):.4g}.")
    for arm in arms:
        try:
            arm_config_validate(kind=arm["kind"], config=arm["config"])
        except ValidationError as exc:
            errors.extend(f"Arm {arm['name']!r}: {m}" for m in exc.messages)
    if errors:
        raise ValidationError(errors)


def _stored_arms(experiment: Experiment) -> list[dict[str, Any]]:
    return [{"name": a.name, "share": a.share, "kind": a.kind, "config": a.config, "is_control": a.is_control}
            for a in experiment.arms.all()]


def _publish_after_commit() -> None:
    transaction.on_commit(snapshot_publish)


@transaction.atomic
def experiment_start(*, experiment: Experiment) -> Experiment:
    """Draft -> running: validated, the only running experiment; members are bucketed from the next request."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Status.DRAFT:
        raise ValidationError(f"Only a draft experiment can start; {experiment.name!r} is {experiment.status}.")
    experiment.full_clean()
    experiment_arms_validate(experiment=experiment, arms=_stored_arms(experiment))
    other = Experiment.objects.filter(status=Status.RUNNING).exclude(pk=experiment.pk).first()
    if other is not None:
        raise ValidationError(f"{other.name!r} is running; one experiment runs at a time (stop it first).")
    experiment.status, experiment.started_at = Status.RUNNING, timezone.now()
    experiment.allocation_probabilities, experiment.allocation_updated_at = {}, None
    try:
        with transaction.atomic():
            experiment.save()
    except IntegrityError as exc:  # another start committed between the check above and this write
        raise ValidationError("Another experiment has just started; one experiment runs at a time.") from exc
    _publish_after_commit()
    log.info("experiment %s started", experiment.name)
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment) -> Experiment:
    """Running -> stopped: no more traffic (members get the default serving); the results stay readable."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Status.RUNNING:
        raise ValidationError(f"Only a running experiment can stop; {experiment.name!r} is {experiment.status}.")
    experiment.status, experiment.stopped_at = Status.STOPPED, timezone.now()
    experiment.save()
    experiment_look(experiment=experiment)  # a last look, so the history ends where the traffic did
    _publish_after_commit()
    return experiment


@transaction.atomic
def experiment_conclude(*, experiment: Experiment, note: str = "") -> Experiment:
    """Running or stopped -> concluded, recording the decision: the recommended action with the numbers behind it."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status == Status.RUNNING:
        experiment = experiment_stop(experiment=experiment)
    if experiment.status != Status.STOPPED:
        raise ValidationError(f"Only a running or stopped experiment can be concluded; {experiment.name!r} is "
                              f"{experiment.status}.")
    results = experiment_results(experiment=experiment)
    experiment.status = Status.CONCLUDED
    experiment.decision = {
        **results.recommendation, "note": note, "decided_at": timezone.now().isoformat(), "srm": results.srm,
        "arms": [{"name": r.name, "members": r.members, "estimate": r.estimate, "ci": [r.ci_low, r.ci_high],
                  "difference": r.difference, "p_value": r.p_value} for r in results.arms]}
    experiment.save()
    log.info("experiment %s concluded: %s", experiment.name, experiment.decision["action"])
    return experiment


def _guardrail(experiment: Experiment, arms: list[Arm], stats: dict[int, Any]) -> list[Arm]:
    """Stop each live treatment whose metric is worse than control's by more than the bound (always-valid)."""
    control = next((a for a in arms if a.is_control), None)
    stopped: list[Arm] = []
    if control is None or stats[control.pk].n < 2:
        return stopped
    for arm in arms:
        if arm.is_control or arm.stopped_at or stats[arm.pk].n < 2:
            continue
        check = guardrail_check(stats[control.pk], stats[arm.pk], bound=experiment.guardrail_bound, binary=False,
                                alpha=experiment.alpha)
        if check.stop:
            arm.stopped_at = timezone.now()
            arm.stop_reason = (f"guardrail: {arm.name} - control = {check.difference:+.4f}, upper bound "
                               f"{check.upper:+.4f} < -{experiment.guardrail_bound:g}")
            arm.save(update_fields=["stopped_at", "stop_reason", "updated_at"])
            log.warning("experiment %s: arm %s stopped (%s)", experiment.name, arm.name, arm.stop_reason)
            stopped.append(arm)
    return stopped


def _thompson(experiment: Experiment, arms: list[Arm], stats: dict[int, Any], looks: int) -> None:
    """Store new allocation probabilities: Thompson over the live arms with the floor, stopped arms 0."""
    live = [a for a in arms if not a.stopped_at]
    if not live:
        return
    floor = min(experiment.floor_share, 1 / len(live))
    shares = thompson_allocation([stats[a.pk] for a in live], binary=False, floor=floor, seed=looks)
    experiment.allocation_probabilities = {str(a.pk): round(float(p), 6) for a, p in zip(live, shares, strict=True)}
    experiment.allocation_updated_at = timezone.now()
    experiment.save(update_fields=["allocation_probabilities", "allocation_updated_at", "updated_at"])


@transaction.atomic
def experiment_look(*, experiment: Experiment) -> list[ResultSnapshot]:
    """One look: store each arm's statistics (the plots' points and the sequential test's looks); for a running
    experiment, apply the guardrail, then recompute the Thompson allocation, and republish the snapshot."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    arms = list(experiment.arms.all())
    stats, shown = arm_stats_now(experiment=experiment)
    now = timezone.now()
    results = {r.id: r for r in experiment_results(experiment=experiment, measured=(stats, shown)).arms}
    probabilities = arm_probabilities(experiment=experiment)
    rows = []
    for arm in arms:
        s, est = stats[arm.pk], arm_estimate(stats[arm.pk], binary=False, alpha=experiment.alpha)
        rows.append(ResultSnapshot(
            experiment=experiment, arm=arm, computed_at=now, members=s.n, total=s.total, total_sq=s.total_sq,
            impressions=shown[arm.pk], estimate=est.mean if math.isfinite(est.mean) else None,
            ci_low=est.low if math.isfinite(est.low) else None, ci_high=est.high if math.isfinite(est.high) else None,
            p_value=results[arm.pk].p_value, allocation=probabilities.get(arm.pk, 0.0)))
    ResultSnapshot.objects.bulk_create(rows)
    if experiment.status == Status.RUNNING:
        changed = bool(_guardrail(experiment, arms, stats))
        if experiment.allocation == Experiment.Allocation.THOMPSON:
            looks = ResultSnapshot.objects.filter(experiment=experiment).values("computed_at").distinct().count()
            _thompson(experiment, arms, stats, looks)
            changed = True
        if changed:
            _publish_after_commit()
    return rows


def experiments_monitor() -> int:
    """Beat: one look at every running experiment; returns how many were looked at."""
    running = list(Experiment.objects.filter(status=Status.RUNNING))
    for experiment in running:
        experiment_look(experiment=experiment)
    return len(running)
