"""The shared epoch loop: early stopping honours the run's patience and a model's own minimum."""

from dataclasses import dataclass

import pytest

from ml_core import training
from ml_core.interface import FitOptions
from ml_core.training import run_epochs


@dataclass(frozen=True)
class _Config:
    min_patience: int = 0


class _Model:
    """Validation NDCG comes from a fixed curve: one early peak, then a long flat stretch."""

    name = "curve"

    def __init__(self, min_patience: int) -> None:
        self.config = _Config(min_patience)
        self.curve = iter([0.5] + [0.1] * 50)


@pytest.fixture
def fit(monkeypatch):
    monkeypatch.setattr(training, "validation_ndcg", lambda model, options: next(model.curve))

    def run(model: _Model, patience: int):
        return run_epochs(model=model, options=FitOptions(progress=False, patience=patience, validation=object()),
                          epochs=40, train_epoch=lambda e: 0.0, get_state=lambda: None, set_state=lambda s: None)

    return run


def test_stops_after_the_runs_patience(fit):
    report = fit(_Model(min_patience=0), patience=3)
    assert report.epochs == 4 and report.best_epoch == 1


def test_a_model_may_ask_for_more_patience_but_not_less(fit):
    assert fit(_Model(min_patience=10), patience=3).epochs == 11
    assert fit(_Model(min_patience=1), patience=3).epochs == 4
