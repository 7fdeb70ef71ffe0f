"""Normalisation, blending, the DR estimator on a logged bandit with a known answer, and the serving policy."""

from __future__ import annotations

import numpy as np
import pytest

from ml_core.ranking import (
    blend,
    dirichlet_weights,
    disagreement,
    doubly_robust,
    epsilon_greedy_slate,
    normalise,
    plackett_luce_propensities,
    plackett_luce_slate,
    select_weights_dr,
)


def test_normalise_z_scores_each_row_and_turns_nan_into_the_mean() -> None:
    z = normalise(np.array([[1.0, 2.0, 3.0, np.nan], [5.0, 5.0, 5.0, 5.0]]))
    assert z[0, :3] == pytest.approx([-1.2247, 0.0, 1.2247], abs=1e-3)
    assert z[0, 3] == 0.0
    assert (z[1] == 0).all()


def test_blend_is_the_weighted_sum_over_models() -> None:
    norm = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    assert blend(norm, np.array([0.75, 0.25])).tolist() == [0.75, 0.25]


def test_dirichlet_weights_lie_on_the_simplex_and_repeat_with_the_seed() -> None:
    w = dirichlet_weights(6, 200, seed=3)
    assert w.shape == (200, 6)
    assert np.allclose(w.sum(1), 1.0) and (w >= 0).all()
    assert np.allclose(w[0], 1 / 6)
    assert np.array_equal(w, dirichlet_weights(6, 200, seed=3))


def _logged_bandit(n: int, seed: int) -> dict:
    """Contexts x in {0,1}, 3 actions, a known logging policy and Bernoulli rewards with known means."""
    rng = np.random.default_rng(seed)
    theta = np.array([[0.2, 0.5, 0.8], [0.7, 0.3, 0.1]])  # E[r | x, a]
    mu = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])  # logging policy
    pi = np.array([[0.0, 0.2, 0.8], [0.9, 0.1, 0.0]])  # target policy
    x = rng.integers(0, 2, n)
    a = np.array([rng.choice(3, p=mu[c]) for c in x])
    r = (rng.random(n) < theta[x, a]).astype(float)
    truth = 0.5 * (pi[0] @ theta[0]) + 0.5 * (pi[1] @ theta[1])
    return {"x": x, "a": a, "r": r, "theta": theta, "mu": mu, "pi": pi, "truth": truth}


@pytest.mark.parametrize("bias", [0.0, 0.25])
def test_doubly_robust_recovers_the_true_policy_value_even_with_a_biased_reward_model(bias: float) -> None:
    b = _logged_bandit(20_000, seed=1)
    r_hat = np.clip(b["theta"] + bias, 0, 1)  # a wrong direct model when bias > 0
    x, a = b["x"], b["a"]
    est = doubly_robust(b["pi"][x, a], b["mu"][x, a], b["r"], r_hat[x, a], (b["pi"][x] * r_hat[x]).sum(1))
    assert abs(est.value - b["truth"]) < 3 * est.stderr + 1e-3
    if bias:
        # the direct method alone is off by about the bias; DR corrects it
        assert abs(est.direct - b["truth"]) > 0.15
        assert abs(est.value - b["truth"]) < 0.02


def test_doubly_robust_rejects_zero_propensities() -> None:
    with pytest.raises(ValueError, match="propensities"):
        doubly_robust(np.ones(2), np.array([0.5, 0.0]), np.ones(2), np.zeros(2), np.zeros(2))


def test_dr_selection_prefers_the_model_that_predicts_the_logged_items() -> None:
    rng = np.random.default_rng(0)
    b, n_items = 300, 50
    targets = rng.integers(0, n_items, b)
    good = rng.normal(size=(b, n_items))
    good[np.arange(b), targets] += 4.0  # this model ranks the target near the top
    noise = rng.normal(size=(b, n_items))
    norm = normalise(np.stack([noise, good]))
    excluded = np.zeros((b, n_items), bool)
    sel = select_weights_dr(norm, targets, excluded, rng.integers(1, 100, n_items), np.full(b, 20), n=50, seed=0)
    assert sel.best_weights[1] > 0.7
    assert len(sel.estimates) == 50


def test_plackett_luce_propensities_match_sampling_frequencies() -> None:
    scores = np.array([2.0, 1.0, 0.0])
    rng = np.random.default_rng(0)
    firsts = [plackett_luce_slate(scores, 2, 1.0, rng) for _ in range(4000)]
    p_first = np.exp(scores) / np.exp(scores).sum()
    freq = np.bincount([order[0] for order, _ in firsts], minlength=3) / len(firsts)
    assert freq == pytest.approx(p_first, abs=0.03)
    order, props = firsts[0]
    assert props[0] == pytest.approx(p_first[order[0]])
    remaining = np.exp(np.delete(scores, order[0]))
    assert props[1] == pytest.approx(np.exp(scores[order[1]]) / remaining.sum())


def test_propensities_stay_exact_when_one_item_dominates_the_slate() -> None:
    """Each slot's probability against an exactly summed remainder, also for sharp temperatures where the first pick
    holds almost all the mass (subtracting it from the total would leave only rounding error for the next slots)."""
    import math

    rng = np.random.default_rng(1)
    for _ in range(100):
        scores = rng.normal(size=int(rng.integers(2, 60))) * rng.uniform(0.1, 5)
        k, temperature = int(rng.integers(1, 12)), float(rng.uniform(0.01, 2))
        order, props = plackett_luce_slate(scores, k, temperature, rng)
        weights = np.exp((scores - scores.max()) / temperature)
        exact = [weights[o] / math.fsum(weights[i] for i in range(len(scores)) if i not in set(order[:j].tolist()))
                 for j, o in enumerate(order)]
        assert props == pytest.approx(exact, rel=1e-9)
        assert (props <= 1.0 + 1e-12).all()
    batched = plackett_luce_propensities(np.array([[1.0, -np.inf, 0.5], [0.0, 0.0, 0.0]]),
                                         np.array([[0, 1], [2, -1]]), 1.0)
    assert batched[0, 1] == 0.0 and batched[1, 0] == pytest.approx(1 / 3) and np.isnan(batched[1, 1])


def test_zero_temperature_is_deterministic_with_propensity_one() -> None:
    order, props = plackett_luce_slate(np.array([0.1, 0.9, 0.5]), 3, 0.0)
    assert order.tolist() == [1, 2, 0] and props.tolist() == [1.0, 1.0, 1.0]


def test_epsilon_greedy_propensities() -> None:
    order, props = epsilon_greedy_slate(np.array([3.0, 2.0, 1.0]), 2, 0.0)
    assert order.tolist() == [0, 1] and props.tolist() == [1.0, 1.0]
    _, props = epsilon_greedy_slate(np.array([3.0, 2.0, 1.0]), 1, 0.3, np.random.default_rng(1))
    assert props[0] in (pytest.approx(0.7 + 0.1), pytest.approx(0.1))


def test_disagreement_is_zero_when_models_agree_and_grows_when_they_do_not() -> None:
    agree = normalise(np.tile(np.arange(10.0), (3, 1)))
    assert disagreement(agree, agree[0]) == pytest.approx(0.0)
    clash = normalise(np.stack([np.arange(10.0), -np.arange(10.0)]))
    assert disagreement(clash, clash[0]) >= 0.5  # top items: z near +-1.2 -> variance near 1
