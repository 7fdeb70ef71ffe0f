"""Arms and experiments are validated with errors that say what to fix."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from experiments.arms import arm_config_validate, arm_overrides
from experiments.models import Arm, Experiment
from experiments.services import experiment_arms_validate, experiment_start

pytestmark = pytest.mark.django_db


def _arm(name: str, share: float, kind: str = "exploration", config: dict | None = None,
         control: bool = False) -> dict:
    return {"name": name, "share": share, "kind": kind, "config": config or {}, "is_control": control}


@pytest.mark.parametrize(("kind", "config", "message"), [
    ("weights", {"weights": {"sasrec": 0.5, "bert": 0.5}}, "Unknown model(s) bert"),
    ("weights", {"weights": {"sasrec": -1}}, "non-negative numbers: sasrec"),
    ("weights", {"weights": {"sasrec": 0}}, "At least one weight must be positive"),
    ("tier", {"tier": "gpu"}, "tier is one of full, lite"),
    ("exploration", {"temperature": 0.5, "epsilon": 0.1}, "Unexpected key(s)"),
    ("exploration", {"epsilon": 1.5}, "epsilon is a number from 0 to 1"),
    ("exploration", {"temperature": True}, "temperature is a number"),
    ("rerank", {"mmr_lambda": 2}, "mmr_lambda is a number from 0"),
    ("rerank", {"temperature": 0.5}, "Unexpected key(s) temperature"),
    ("bandit", {}, "Unknown kind 'bandit'"),
])
def test_a_config_that_does_not_match_its_kind_is_refused_with_a_clear_message(kind, config, message) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError) as exc:
        arm_config_validate(kind=kind, config=config)
    assert message in " ".join(exc.value.messages)


def test_configs_of_each_kind_become_request_overrides() -> None:
    assert arm_overrides(kind="weights", config={"weights": {"sasrec": 1}}) == {"weights": {"sasrec": 1.0}}
    assert arm_overrides(kind="tier", config={"tier": "lite"}) == {"lite": True}
    assert arm_overrides(kind="exploration", config={"epsilon": 0.1}) == {"epsilon": 0.1}
    assert arm_overrides(kind="exploration", config={"temperature": 0}) == {"temperature": 0.0}
    assert arm_overrides(kind="rerank", config={"mmr_lambda": 1}) == {"mmr_lambda": 1.0}
    assert arm_overrides(kind="weights", config={}) == {}


def test_arm_clean_checks_the_config_against_the_kind(make_experiment) -> None:  # noqa: ANN001
    experiment = make_experiment()
    arm = Arm(experiment=experiment, name="x", share=0.5, kind="tier", config={"epsilon": 0.1})
    with pytest.raises(ValidationError) as exc:
        arm.full_clean()
    assert "config" in exc.value.message_dict


def test_shares_must_sum_to_one_and_exactly_one_arm_is_control() -> None:
    experiment = Experiment(name="e")
    with pytest.raises(ValidationError) as exc:
        experiment_arms_validate(experiment=experiment, arms=[_arm("a", 0.5, control=True), _arm("b", 0.4)])
    assert "must sum to 1 (they sum to 0.9)" in " ".join(exc.value.messages)
    with pytest.raises(ValidationError) as exc:
        experiment_arms_validate(experiment=experiment, arms=[_arm("a", 0.5), _arm("b", 0.5)])
    assert "Exactly one arm must be the control (found 0)" in " ".join(exc.value.messages)
    with pytest.raises(ValidationError) as exc:
        experiment_arms_validate(experiment=experiment, arms=[_arm("a", 1.0, control=True)])
    assert "at least two arms" in " ".join(exc.value.messages)
    experiment_arms_validate(experiment=experiment, arms=[_arm("a", 0.7, control=True), _arm("b", 0.2),
                                                          _arm("c", 0.1, "rerank", {"mmr_lambda": 1.0})])


def test_a_thompson_floor_larger_than_one_arms_share_of_traffic_is_refused() -> None:
    experiment = Experiment(name="e", allocation="thompson", floor_share=0.4)
    with pytest.raises(ValidationError) as exc:
        experiment_arms_validate(experiment=experiment, arms=[_arm("a", 0.4, control=True), _arm("b", 0.3),
                                                              _arm("c", 0.3)])
    assert "floor share 0.4 times 3 arms exceeds all traffic" in " ".join(exc.value.messages)


def test_starting_checks_the_stored_arms_and_allows_one_running_experiment(make_experiment) -> None:  # noqa: ANN001
    broken = make_experiment(name="broken", arms=[("a", 0.6, "exploration", {}, True), ("b", 0.6, "tier", {}, False)])
    with pytest.raises(ValidationError, match="sum to 1"):
        experiment_start(experiment=broken)
    first = experiment_start(experiment=make_experiment(name="first"))
    assert first.status == "running" and first.started_at is not None
    with pytest.raises(ValidationError, match="'first' is running; one experiment runs at a time"):
        experiment_start(experiment=make_experiment(name="second"))
    with pytest.raises(ValidationError, match="Only a draft experiment can start"):
        experiment_start(experiment=first)


def test_the_database_refuses_a_second_running_experiment_even_past_the_check(make_experiment) -> None:  # noqa: ANN001
    from django.db import IntegrityError, transaction

    experiment_start(experiment=make_experiment(name="first"))
    second = make_experiment(name="second")
    with pytest.raises(IntegrityError), transaction.atomic():
        Experiment.objects.filter(pk=second.pk).update(status="running")  # as a racing start would write it
