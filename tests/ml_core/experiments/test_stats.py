"""Experiment statistics against hand-computed cases, and the sequential test's validity under peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml_core.experiments.stats import (
    ArmStats,
    arm_estimate,
    cuped_arms,
    guardrail_check,
    msprt,
    msprt_monitor,
    srm_check,
    thompson_allocation,
)


def test_arm_stats_from_values_and_counts_agree_for_a_binary_metric() -> None:
    values = [1, 0, 1, 1, 0]
    assert ArmStats.from_values(values) == ArmStats.from_counts(5, 3)
    assert ArmStats.from_counts(5, 3).mean == pytest.approx(0.6)
    assert ArmStats.from_counts(5, 3).variance == pytest.approx(0.3)  # (3 - 9/5) / 4
    with pytest.raises(ValueError):
        ArmStats.from_counts(5, 6)


def test_wilson_interval_of_fifty_out_of_a_hundred() -> None:
    est = arm_estimate(ArmStats.from_counts(100, 50), binary=True)
    # z = 1.959964: centre 0.5, half-width z sqrt(0.0025 + z^2/40000) / (1 + z^2/100) = 0.096168
    assert est.mean == 0.5
    assert est.low == pytest.approx(0.403832, abs=1e-5)
    assert est.high == pytest.approx(0.596168, abs=1e-5)


def test_wilson_interval_stays_inside_zero_one_with_no_successes() -> None:
    est = arm_estimate(ArmStats.from_counts(20, 0), binary=True)
    assert est.low == pytest.approx(0.0, abs=1e-12) and 0 < est.high < 0.2  # Wilson's upper bound z^2/(n + z^2) = 0.1611
    assert est.high == pytest.approx(3.841459 / 23.841459, abs=1e-5)


def test_real_metric_interval_is_mean_plus_minus_z_standard_error() -> None:
    est = arm_estimate(ArmStats.from_values([1, 2, 3, 4, 5]), binary=False)
    # mean 3, s^2 = 2.5, se = sqrt(0.5) = 0.70711, half = 1.959964 * 0.70711 = 1.38590
    assert (est.low, est.high) == (pytest.approx(1.61410, abs=1e-4), pytest.approx(4.38590, abs=1e-4))


def test_msprt_matches_the_hand_computed_mixture_likelihood_ratio() -> None:
    control = ArmStats(100, 0.0, 99.0)  # mean 0, variance 1
    treatment = ArmStats(100, 30.0, 108.0)  # mean 0.3, variance (108 - 9) / 99 = 1
    t = msprt(control, treatment, binary=False, tau2=0.01)
    # V = 0.02; log Lambda = 0.5 log(0.02/0.03) + 0.09 * 0.01 / (2 * 0.02 * 0.03) = 0.547267
    assert t.difference == pytest.approx(0.3)
    assert t.variance == pytest.approx(0.02)
    assert math.log(t.likelihood_ratio) == pytest.approx(0.547267, abs=1e-6)
    assert t.p_value == pytest.approx(math.exp(-0.547267), abs=1e-6)
    # half-width sqrt(0.02 * 0.03 / 0.01 * (log 1.5 + 2 log 20)) = 0.619529
    assert (t.low, t.high) == (pytest.approx(0.3 - 0.619529, abs=1e-6), pytest.approx(0.3 + 0.619529, abs=1e-6))
    assert not t.reject  # a fixed-n z test would reject (z = 2.12); the always-valid test pays for peeking


def test_msprt_rejects_a_large_difference_and_its_interval_excludes_zero() -> None:
    t = msprt(ArmStats.from_counts(5000, 500), ArmStats.from_counts(5000, 650), binary=True)
    assert t.reject and t.p_value < 1e-3
    assert 0 < t.low < 0.03 < t.high


def test_continuous_monitoring_keeps_the_false_positive_rate_under_alpha() -> None:
    """A/A tests looked at 40 times each: the naive z test at every look rejects far more than 5%; mSPRT does not."""
    rng = np.random.default_rng(7)
    runs, looks, per_look = 300, 40, 50
    x = rng.normal(size=(runs, 2, looks * per_look))
    msprt_rejects = naive_rejects = 0
    for r in range(runs):
        series = []
        naive = False
        for j in range(1, looks + 1):
            c, t = ArmStats.from_values(x[r, 0, : j * per_look]), ArmStats.from_values(x[r, 1, : j * per_look])
            series.append((c, t))
            z = (t.mean - c.mean) / math.sqrt(c.variance / c.n + t.variance / t.n)
            naive |= abs(z) > 1.959964
        monitored = msprt_monitor(series, binary=False, tau2=0.01)
        msprt_rejects += monitored[-1].reject
        naive_rejects += naive
    assert msprt_rejects / runs <= 0.05
    assert naive_rejects / runs > 0.15


def test_monitor_p_values_never_increase_and_intervals_only_shrink() -> None:
    rng = np.random.default_rng(3)
    x = rng.binomial(1, [[0.10], [0.12]], size=(2, 4000))
    looks = [(ArmStats.from_values(x[0, :n]), ArmStats.from_values(x[1, :n])) for n in range(200, 4001, 200)]
    series = msprt_monitor(looks, binary=True)
    p = [s.p_value for s in series]
    assert all(b <= a for a, b in zip(p, p[1:], strict=False))
    assert all(b.low >= a.low and b.high <= a.high for a, b in zip(series, series[1:], strict=False))
    assert len({s.tau2 for s in series}) == 1  # the mixture is fixed at the first look


def test_srm_hand_computed_chi_square() -> None:
    assert srm_check([500, 500], [0.5, 0.5]).p_value == pytest.approx(1.0)
    mild = srm_check([550, 450], [1, 1])  # chi2 = 2 * 50^2 / 500 = 10, p = 0.001565
    assert mild.chi2 == pytest.approx(10.0) and mild.p_value == pytest.approx(0.0015654, rel=1e-3)
    assert not mild.mismatch
    assert srm_check([600, 400], [0.5, 0.5]).mismatch
    three = srm_check([200, 300, 500], [0.2, 0.3, 0.5])
    assert three.chi2 == 0 and three.dof == 2 and three.expected == (200.0, 300.0, 500.0)
    with pytest.raises(ValueError):
        srm_check([1, 2], [0.5, 0.0])


def test_guardrail_stops_an_arm_clearly_worse_than_control_and_keeps_a_level_one() -> None:
    control = ArmStats.from_counts(10_000, 5_000)
    assert guardrail_check(control, ArmStats.from_counts(10_000, 4_000), bound=0.02, binary=True).stop
    level = guardrail_check(control, ArmStats.from_counts(10_000, 5_050), bound=0.02, binary=True)
    assert not level.stop and level.upper > 0
    # lower is better (e.g. skip rate): the same numbers, read the other way round
    assert not guardrail_check(control, ArmStats.from_counts(10_000, 4_000), bound=0.02, binary=True,
                               higher_is_better=False).stop
    assert guardrail_check(control, ArmStats.from_counts(10_000, 6_000), bound=0.02, binary=True,
                           higher_is_better=False).stop


def test_guardrail_tolerates_a_small_loss_within_the_bound() -> None:
    control = ArmStats.from_counts(200_000, 100_000)
    slightly_worse = ArmStats.from_counts(200_000, 98_000)  # -0.01, inside a 0.02 bound
    assert not guardrail_check(control, slightly_worse, bound=0.02, binary=True).stop
    assert guardrail_check(control, slightly_worse, bound=0.0, binary=True).stop


def test_thompson_gives_the_clear_winner_all_but_the_floor() -> None:
    shares = thompson_allocation([ArmStats.from_counts(1000, 900), ArmStats.from_counts(1000, 100)], binary=True,
                                 floor=0.05)
    assert shares.sum() == pytest.approx(1.0)
    assert shares == pytest.approx([0.95, 0.05])


def test_thompson_is_even_without_data_and_seeded() -> None:
    arms = [ArmStats(0, 0.0, 0.0)] * 3
    shares = thompson_allocation(arms, binary=True, floor=0.1, draws=20_000, seed=1)
    assert shares == pytest.approx([1 / 3] * 3, abs=0.02)
    assert np.array_equal(shares, thompson_allocation(arms, binary=True, floor=0.1, draws=20_000, seed=1))


def test_thompson_on_a_real_metric_follows_the_posterior_of_the_mean() -> None:
    rng = np.random.default_rng(0)
    better, worse = ArmStats.from_values(rng.normal(3.6, 1, 400)), ArmStats.from_values(rng.normal(3.4, 1, 400))
    shares = thompson_allocation([worse, better], binary=False, floor=0.0, draws=20_000)
    # P(better > worse) = Phi(d / sqrt(2/400)), d the observed difference
    d = better.mean - worse.mean
    expected = 0.5 * (1 + math.erf(d / math.sqrt(better.variance / 400 + worse.variance / 400) / math.sqrt(2)))
    assert shares[1] == pytest.approx(expected, abs=0.01)
    with pytest.raises(ValueError):
        thompson_allocation([better, worse], binary=False, floor=0.6)


def test_cuped_hand_computed_theta_and_adjusted_means() -> None:
    (a, b), theta = cuped_arms([np.array([2.0, 4.0]), np.array([3.0, 7.0])],
                               [np.array([1.0, 2.0]), np.array([1.0, 3.0])])
    # x = 1,2,1,3 (mean 1.75, var 0.6875); y = 2,4,3,7 (mean 4); cov = (1.5 + 0 + 0.75 + 3.75)/4 = 1.5
    assert theta == pytest.approx(1.5 / 0.6875)
    assert a.mean == pytest.approx(3.0 - theta * (1.5 - 1.75))
    assert b.mean == pytest.approx(5.0 - theta * (2.0 - 1.75))


def test_cuped_keeps_the_effect_and_shrinks_its_variance() -> None:
    rng = np.random.default_rng(5)
    baseline = rng.normal(0, 2, size=(2, 400))  # members differ a lot; the treatment adds 0.3
    pre = baseline + rng.normal(0, 0.5, size=(2, 400))
    post = baseline + rng.normal(0, 0.5, size=(2, 400)) + np.array([[0.0], [0.3]])
    (c, t), _ = cuped_arms([post[0], post[1]], [pre[0], pre[1]])
    plain_c, plain_t = ArmStats.from_values(post[0]), ArmStats.from_values(post[1])
    assert t.mean - c.mean == pytest.approx(0.3, abs=0.15)
    assert t.variance < plain_t.variance / 5 and c.variance < plain_c.variance / 5
    assert msprt(c, t, binary=False, tau2=0.01).reject
    assert not msprt(plain_c, plain_t, binary=False, tau2=0.01).reject
    with pytest.raises(ValueError):
        cuped_arms([post[0]], [pre[0][:10]])
