"""Experiments' fixtures: an experiment with a control and a variant arm, built through the models."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def make_experiment(db):  # noqa: ANN001, ANN201
    """``make_experiment(arms=[(name, share, kind, config, is_control), ...], **fields)`` -> Experiment."""
    from experiments.models import Arm, Experiment

    def make(arms: list[tuple[str, float, str, dict[str, Any], bool]] | None = None, **fields: Any) -> Experiment:
        experiment = Experiment.objects.create(name=fields.pop("name", "ab"), **fields)
        for name, share, kind, config, control in arms or [("control", 0.5, "exploration", {}, True),
                                                            ("explore", 0.5, "exploration", {"epsilon": 0.2}, False)]:
            Arm.objects.create(experiment=experiment, name=name, share=share, kind=kind, config=config,
                               is_control=control)
        return experiment

    return make
