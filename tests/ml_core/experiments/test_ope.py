"""Off-policy estimators on hand-computed logs, and unbiasedness on a Plackett-Luce slate problem solved exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ml_core.experiments.ope import (
    SlateLog,
    bootstrap_interval,
    cumulative_weights,
    estimate_all,
    slate_dr,
    slate_ips,
    slate_snips,
)
from ml_core.ranking import doubly_robust, plackett_luce_propensities, plackett_luce_sample, plackett_luce_slate


def _bandit() -> tuple[SlateLog, np.ndarray, np.ndarray, np.ndarray]:
    log = SlateLog.single_action(np.array([0.5, 0.25, 1.0]), np.array([1.0, 0.0, 1.0]))
    target = np.array([[1.0], [0.5], [0.0]])  # weights 2, 2, 0
    reward_hat = np.array([[0.2], [0.5], [0.5]])
    direct = np.array([0.6, 0.4, 0.2])
    return log, target, reward_hat, direct


def test_single_action_estimators_match_hand_computation() -> None:
    log, target, reward_hat, direct = _bandit()
    est = estimate_all(log, target, reward_hat, direct, clip=1.5, tau=1.5)
    assert est["IPS"].value == pytest.approx(2 / 3)  # (2*1 + 2*0 + 0*1) / 3
    assert est["SNIPS"].value == pytest.approx(0.5)  # 2 / (2 + 2 + 0)
    assert est["DM"].value == pytest.approx(0.4)
    assert est["DR"].value == pytest.approx(0.6)  # mean(0.6 + 2*0.8, 0.4 + 2*(-0.5), 0.2)
    assert est["DR-clip"].value == pytest.approx(0.55)  # weights clipped to 1.5
    assert est["switch-DR"].value == pytest.approx(0.4)  # both weights above 1.5: the model alone
    assert est["DR"].stderr == pytest.approx(np.std([2.2, -0.6, 0.2], ddof=1) / np.sqrt(3))
    assert est["DR"].low < 0.6 < est["DR"].high


def test_ensemble_doubly_robust_is_the_one_slot_slate_dr() -> None:
    log, target, reward_hat, direct = _bandit()
    old = doubly_robust(target[:, 0], log.propensity[:, 0], log.reward[:, 0], reward_hat[:, 0], direct,
                        max_weight=1.5)
    new = slate_dr(log, target, reward_hat, direct, clip=1.5)
    assert (old.value, old.stderr) == (pytest.approx(new.value), pytest.approx(new.stderr))
    assert old.ips == pytest.approx((1.5 * 1 + 1.5 * 0) / 3)


def test_slate_estimators_use_prefix_weights() -> None:
    log = SlateLog(np.array([[0.5, 0.5], [0.25, 1.0]]), np.array([[1.0, 1.0], [0.0, 1.0]]), np.ones((2, 2), bool))
    target = np.array([[1.0, 0.25], [0.5, 1.0]])
    assert cumulative_weights(log, target) == pytest.approx(np.array([[2.0, 1.0], [2.0, 2.0]]))
    assert slate_ips(log, target).value == pytest.approx(2.5)  # lists: 2*1 + 1*1 = 3 and 2*0 + 2*1 = 2
    assert slate_snips(log, target).value == pytest.approx(0.5 + 1.0)  # slot 1: 2/4; slot 2: (1 + 2)/3


def test_padding_slots_count_for_nothing_and_bad_propensities_are_refused() -> None:
    log = SlateLog(np.array([[0.5, np.nan]]), np.array([[1.0, 7.0]]), np.array([[True, False]]))
    assert slate_ips(log, np.array([[0.5, np.nan]])).value == pytest.approx(1.0)
    with pytest.raises(ValueError):
        SlateLog(np.array([[0.0]]), np.array([[1.0]]), np.array([[True]]))
    with pytest.raises(ValueError):
        SlateLog(np.array([[0.5, 0.5]]), np.array([[1.0]]), np.array([[True]]))


def test_plackett_luce_propensities_agree_with_the_serving_sampler() -> None:
    scores = np.array([0.3, 1.2, -0.4, 0.8])
    order, props = plackett_luce_slate(scores, 3, 0.5, np.random.default_rng(4))
    assert plackett_luce_propensities(scores[None], order[None], 0.5)[0] == pytest.approx(props)
    e = np.exp(scores / 0.5)
    first = plackett_luce_propensities(scores[None], np.array([[1, 3]]), 0.5)[0]
    assert first == pytest.approx([e[1] / e.sum(), e[3] / (e.sum() - e[1])])
    outside = plackett_luce_propensities(np.array([[0.0, -np.inf, 1.0]]), np.array([[1, 2]]), 1.0)[0]
    assert outside[0] == 0.0
    greedy = plackett_luce_propensities(scores[None], np.array([[1, 0, -1]]), 0.0)[0]
    assert greedy[0] == 1.0 and greedy[1] == 0.0 and np.isnan(greedy[2])


def _exact_value(scores: np.ndarray, temperature: float, attract: np.ndarray, exam: np.ndarray) -> float:
    """E sum_j exam_j attract(a_j) under Plackett-Luce, by enumerating every ordered slate."""
    k = len(exam)
    total = 0.0
    for slate in itertools.permutations(range(len(scores)), k):
        p = float(np.prod(plackett_luce_propensities(scores[None], np.asarray([slate]), temperature)))
        total += p * float(sum(exam[j] * attract[a] for j, a in enumerate(slate)))
    return total


@pytest.mark.parametrize("bias", [0.0, 0.3])
def test_ips_and_dr_are_unbiased_on_a_position_based_slate_problem(bias: float) -> None:
    rng = np.random.default_rng(11)
    n, k = 20_000, 2
    attract, exam = np.array([0.6, 0.3, 0.2, 0.1, 0.05]), np.array([1.0, 0.5])
    logging_scores, target_scores = np.array([0.0, 0.2, 0.4, 0.1, 0.3]), np.array([1.0, 0.2, 0.0, -0.5, -1.0])
    truth = _exact_value(target_scores, 0.7, attract, exam)
    slates = plackett_luce_sample(np.tile(logging_scores, (n, 1)), k, 1.0, rng)
    mu = plackett_luce_propensities(np.tile(logging_scores, (n, 1)), slates, 1.0)
    pi = plackett_luce_propensities(np.tile(target_scores, (n, 1)), slates, 0.7)
    clicks = (rng.random((n, k)) < exam[None] * attract[slates]).astype(float)
    log = SlateLog(mu, clicks, np.ones((n, k), bool))
    q = np.clip(attract + bias, 0, 1)[:, None] * exam[None]  # a reward model, biased by `bias`
    draws = plackett_luce_sample(np.tile(target_scores, (4000, 1)), k, 0.7, np.random.default_rng(2))
    direct_value = float(q[draws, np.arange(k)].sum(1).mean())
    est = estimate_all(log, pi, q[slates, np.arange(k)], np.full(n, direct_value))
    for name in ("IPS", "SNIPS", "DR"):
        assert abs(est[name].value - truth) < 4 * est[name].stderr + 0.01, name
    assert est["DR"].stderr < est["IPS"].stderr
    if bias:
        assert abs(est["DM"].value - truth) > 0.1  # the biased model alone is wrong; DR corrects it


def test_bootstrap_interval_is_seeded_and_covers_the_estimate() -> None:
    log, target, reward_hat, direct = _bandit()
    big = SlateLog.single_action(np.tile(log.propensity[:, 0], 50), np.tile(log.reward[:, 0], 50))
    tgt = np.tile(target, (50, 1))
    snips = lambda rows: slate_snips(SlateLog(big.propensity[rows], big.reward[rows], big.valid[rows]),  # noqa: E731
                                     tgt[rows]).value
    low, high = bootstrap_interval(snips, big.n, n_boot=200, seed=3)
    assert low < 0.5 < high
    assert (low, high) == bootstrap_interval(snips, big.n, n_boot=200, seed=3)
