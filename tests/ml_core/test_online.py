"""OnlineLearningCoordinator: sequences, counters, guarded SGD on the KAN ranker, publish/swap of state."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch

from ml_core.interface import FitOptions, UserContext
from ml_core.models.kan import KANConfig, KANRanker
from ml_core.serving.online import Holdout, OnlineConfig, OnlineEvent, OnlineLearningCoordinator
from tests.ml_core.contract import GROUP_SIZE, synthetic_interactions


@pytest.fixture(scope="module")
def fitted() -> tuple[KANRanker, Holdout]:
    """A small KAN ranker fitted on the synthetic groups, and a holdout of each user's last item."""
    torch.set_num_threads(1)
    data = synthetic_interactions()
    ranker = KANRanker(KANConfig(epochs=10, svd_factors=8, n_hard=10, n_uniform=10))
    ranker.fit(data, FitOptions(seed=3, progress=False, max_epochs=10))
    sequences = data.sequences()
    users = range(0, data.n_users, 4)
    contexts = [UserContext(history=sequences[u][:-1].tolist()) for u in users]
    holdout = Holdout.build(contexts, [int(sequences[u][-1]) for u in users], data.n_items, negatives=20, seed=1)
    return ranker, holdout


def _coordinator(fitted, **config) -> OnlineLearningCoordinator:  # noqa: ANN001
    ranker, holdout = fitted
    return OnlineLearningCoordinator(n_items=ranker.n_items, ranker=copy.deepcopy(ranker), holdout=holdout,
                                     config=OnlineConfig(**{"holdout_k": 3, **config}))


def _params(coordinator: OnlineLearningCoordinator) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in coordinator.ranker.net.state_dict().items()}


def _events(user: int = 7, items=(0, 1, 2), kind: str = "rating", value: float | None = 5.0):  # noqa: ANN001, ANN202
    return [OnlineEvent(event_id=f"e{i}", user=user, item=item, kind=kind, value=value, time=1_000_000.0 + i)
            for i, item in enumerate(items)]


def test_events_update_the_users_sequence_and_the_counters():
    coordinator = OnlineLearningCoordinator(n_items=5)
    coordinator.seed_user(1, [4])
    report = coordinator.apply([
        OnlineEvent("a", 1, 2, "click", None, 10.0, position=0),
        OnlineEvent("b", 1, 3, "rating", 2.0, 11.0),
        OnlineEvent("c", 1, 0, "impression", None, 9.0, propensity=0.25, position=0),
        OnlineEvent("d", 2, 99, "click", None, 12.0),
    ])
    assert (report.applied, report.unknown_items, report.version) == (4, 1, 1)
    assert coordinator.user_context(1).history == [4, 2, 3]  # impressions are not part of the sequence
    assert coordinator.item_counts.tolist() == [0, 0, 1, 0, 0]  # a 2-star rating is not a positive
    assert (coordinator.impressions[0], coordinator.clicks[2], coordinator.propensity_sum[0]) == (1, 1, 0.25)
    assert coordinator.position_ctr()[0] == pytest.approx((1 + 0.1) / (1 + 1))


def test_positive_events_take_one_sgd_step_on_the_ranker(fitted):
    coordinator = _coordinator(fitted, learning_rate=1e-2)
    coordinator.seed_user(7, [3, 4])
    before = _params(coordinator)
    report = coordinator.apply(_events())
    assert report.sgd_examples == 3 and report.loss is not None and np.isfinite(report.loss)
    assert not report.rolled_back and report.holdout_before is not None
    assert any(not np.array_equal(before[k], v) for k, v in _params(coordinator).items())


def test_the_learning_rate_is_clipped_and_logged(fitted, caplog):
    coordinator = _coordinator(fitted, learning_rate=5.0, rollback_drop=1.0)
    coordinator.seed_user(7, [3])
    with caplog.at_level(logging.WARNING, logger="ml_core.serving.online"):
        report = coordinator.apply(_events())
    assert report.learning_rate == OnlineConfig().max_learning_rate and report.learning_rate_clipped
    assert coordinator.ranker.config.online_learning_rate == OnlineConfig().max_learning_rate
    assert "clipped" in caplog.text


def test_events_with_non_finite_values_are_dropped_and_logged(caplog):
    coordinator = OnlineLearningCoordinator(n_items=3)
    with caplog.at_level(logging.WARNING, logger="ml_core.serving.online"):
        report = coordinator.apply([OnlineEvent("x", 1, 0, "rating", float("nan"), 1.0),
                                    OnlineEvent("y", 1, 1, "click", None, float("inf"))])
    assert (report.applied, report.dropped_non_finite) == (0, 2)
    assert coordinator.item_counts.sum() == 0 and "non-finite" in caplog.text


def test_an_update_that_makes_parameters_non_finite_is_rejected(fitted, caplog, monkeypatch):
    coordinator = _coordinator(fitted)
    coordinator.seed_user(7, [3])
    before = _params(coordinator)

    def poisoned(contexts, positives):  # noqa: ANN001, ANN202
        with torch.no_grad():
            next(coordinator.ranker.net.parameters()).fill_(float("nan"))
        return 0.5

    monkeypatch.setattr(coordinator.ranker, "partial_fit", poisoned)
    with caplog.at_level(logging.WARNING, logger="ml_core.serving.online"):
        report = coordinator.apply(_events())
    assert report.rejected_non_finite and "rejected a non-finite update" in caplog.text
    assert all(np.array_equal(before[k], v) for k, v in _params(coordinator).items())


def test_a_step_that_hurts_the_held_out_check_is_rolled_back(fitted, caplog, monkeypatch):
    coordinator = _coordinator(fitted, rollback_drop=0.05)
    coordinator.seed_user(7, [3])
    baseline = coordinator.holdout_score()
    assert baseline is not None and baseline >= 0.5  # the fitted ranker finds the groups' held-out items
    before = _params(coordinator)

    def sabotage(contexts, positives):  # noqa: ANN001, ANN202
        last = coordinator.ranker.net.layers[-1]  # negating its base and spline paths negates every score
        with torch.no_grad():
            last.base_weight.mul_(-1.0)
            last.spline_scaler.mul_(-1.0)
        return 0.1

    monkeypatch.setattr(coordinator.ranker, "partial_fit", sabotage)
    with caplog.at_level(logging.WARNING, logger="ml_core.serving.online"):
        report = coordinator.apply(_events())
    assert report.rolled_back and report.holdout_after < report.holdout_before - 0.05
    assert "rolled back" in caplog.text
    assert all(np.array_equal(before[k], v) for k, v in _params(coordinator).items())
    assert coordinator.holdout_score() == baseline


def test_a_sparser_check_rolls_back_every_unchecked_step(fitted, monkeypatch):
    coordinator = _coordinator(fitted, rollback_drop=0.05, holdout_every=2, learning_rate=1e-2)
    coordinator.seed_user(7, [3])
    coordinator.holdout_score()
    before = _params(coordinator)
    first = coordinator.apply(_events(items=(0,)))
    assert first.holdout_after is None and not first.rolled_back  # not checked yet
    assert any(not np.array_equal(before[k], v) for k, v in _params(coordinator).items())

    def sabotage(contexts, positives):  # noqa: ANN001, ANN202
        last = coordinator.ranker.net.layers[-1]
        with torch.no_grad():
            last.base_weight.mul_(-1.0)
            last.spline_scaler.mul_(-1.0)
        return 0.1

    monkeypatch.setattr(coordinator.ranker, "partial_fit", sabotage)
    second = coordinator.apply(_events(items=(1,)))
    assert second.rolled_back and second.holdout_after is not None
    assert all(np.array_equal(before[k], v) for k, v in _params(coordinator).items())  # both steps undone


def test_published_state_swaps_into_another_worker_without_pickles(fitted):
    writer, reader = _coordinator(fitted, learning_rate=1e-2), _coordinator(fitted)
    writer.seed_user(7, [3])
    writer.apply(_events(items=tuple(range(GROUP_SIZE))))
    blob = writer.state_bytes()
    assert b"pickle" not in blob
    reader.load_state_bytes(blob, version=42)
    assert reader.version == 42
    assert np.array_equal(reader.item_counts, writer.item_counts)
    assert all(np.array_equal(_params(writer)[k], v) for k, v in _params(reader).items())
    ctx = UserContext(history=[3, 0])
    candidates = np.arange(reader.n_items)
    assert np.allclose(reader.ranker.score(ctx.history, candidates), writer.ranker.score(ctx.history, candidates))


def test_state_for_another_vocabulary_is_refused():
    with pytest.raises(ValueError, match="items"):
        OnlineLearningCoordinator(n_items=4).load_state_bytes(OnlineLearningCoordinator(n_items=5).state_bytes())


def _sabotage(coordinator: OnlineLearningCoordinator):  # noqa: ANN202
    def partial_fit(contexts, positives):  # noqa: ANN001, ANN202
        last = coordinator.ranker.net.layers[-1]  # negating its base and spline paths negates every score
        with torch.no_grad():
            last.base_weight.mul_(-1.0)
            last.spline_scaler.mul_(-1.0)
        return 0.1
    return partial_fit


def test_the_cached_held_out_features_score_like_the_ranker_itself(fitted):
    coordinator = _coordinator(fitted)
    fast = coordinator._holdout_scores(None)
    ranker, holdout = fitted
    full = np.asarray(ranker.score_batch(holdout.contexts), np.float32)
    assert np.allclose(fast, np.take_along_axis(full, holdout.candidates, axis=1), atol=1e-5)


def test_a_deferred_step_is_queued_in_the_state_and_taken_by_whichever_learner_loads_it(fitted):
    coordinator = _coordinator(fitted, learning_rate=1e-2, rollback_drop=1.0)
    coordinator.seed_user(7, [3])
    before = _params(coordinator)
    report = coordinator.apply(_events(), defer=True)
    assert report.sgd_examples == 0 and coordinator.deferred_work and coordinator.item_counts.sum() == 3
    assert all(np.array_equal(before[k], v) for k, v in _params(coordinator).items())  # not stepped yet
    blob = coordinator.state_bytes()

    reader, learner = _coordinator(fitted), _coordinator(fitted, learning_rate=1e-2, rollback_drop=1.0)
    reader.load_state_bytes(blob)  # a serving worker: counters, never the queue
    assert not reader.deferred_work and reader.learn_deferred() is None
    learner.load_state_bytes(blob, learner=True)  # e.g. the applier crashed before stepping: the next one steps
    assert learner.deferred_work
    stepped, taken_over = coordinator.learn_deferred(), learner.learn_deferred()
    assert stepped.sgd_examples == taken_over.sgd_examples == 3 and not coordinator.deferred_work
    assert all(np.allclose(_params(coordinator)[k], v) for k, v in _params(learner).items())  # the same step
    assert any(not np.array_equal(before[k], v) for k, v in _params(coordinator).items())


def test_a_deferred_check_never_publishes_the_unchecked_weights(fitted, monkeypatch):
    coordinator = _coordinator(fitted, rollback_drop=0.05, holdout_every=2)
    coordinator.seed_user(7, [3])
    baseline, before = coordinator.holdout_score(), _params(coordinator)
    monkeypatch.setattr(coordinator.ranker, "partial_fit", _sabotage(coordinator))
    coordinator.apply(_events(items=(0,)), defer=True)
    first = coordinator.learn_deferred()
    assert first.sgd_examples == 1 and first.holdout_after is None and not coordinator.deferred_work  # check in 1 step
    assert any(not np.array_equal(before[k], v) for k, v in _params(coordinator).items())  # served here, unchecked
    blob = coordinator.state_bytes()

    reader, learner = _coordinator(fitted), _coordinator(fitted)
    reader.load_state_bytes(blob)  # a serving worker: the checked weights only
    assert all(np.array_equal(before[k], v) for k, v in _params(reader).items())
    learner.load_state_bytes(blob, learner=True)  # the next applier: the unchecked step too
    assert all(np.array_equal(_params(coordinator)[k], v) for k, v in _params(learner).items())
    assert learner.holdout_score() == baseline  # the baseline is the checked state's

    monkeypatch.setattr(coordinator.ranker, "partial_fit", lambda contexts, positives: 0.1)  # a harmless step
    coordinator.apply(_events(items=(1,)), defer=True)
    second = coordinator.learn_deferred()
    assert second.rolled_back and second.holdout_after < second.holdout_before - 0.05
    assert all(np.array_equal(before[k], v) for k, v in _params(coordinator).items())  # both steps undone
    assert coordinator.learn_deferred() is None


def test_the_learner_steps_its_own_copy_of_the_ranker_and_publishes_checked_weights(fitted):  # noqa: ANN001
    ranker, holdout = fitted
    served = copy.deepcopy(ranker)
    before = {k: v.detach().numpy().copy() for k, v in served.net.state_dict().items()}
    learner_ranker = served.learner_copy()
    assert learner_ranker.net is not served.net and learner_ranker.features is served.features  # features shared
    coordinator = OnlineLearningCoordinator(n_items=served.n_items, ranker=learner_ranker, holdout=holdout,
                                            config=OnlineConfig(holdout_k=3, rollback_drop=1.0))
    coordinator.apply(_events(items=(0, 1, 2, 3)))
    assert any(not np.array_equal(before[k], v) for k, v in _params(coordinator).items())  # the copy stepped
    assert all(np.array_equal(before[k], v.detach().numpy()) for k, v in served.net.state_dict().items())
    published = coordinator.published_state()
    assert published.version == coordinator.version and set(published.ranker_weights) == set(before)
    assert published.item_counts.sum() == 4
