"""Online-experiment statistics: per-arm estimates, an always-valid sequential test, SRM, guardrails, Thompson.

Plain numbers in, frozen dataclasses out; nothing here knows about Django. Every function works on an arm's
sufficient statistics (:class:`ArmStats`: count, sum, sum of squares of the per-unit metric), so callers can
aggregate in SQL and never ship raw rows.

* :func:`arm_estimate`: mean with a confidence interval (Wilson for a Bernoulli metric, normal for a real one).
* :func:`msprt`: the mixture sequential probability ratio test (Robbins 1970; Johari, Pekelis & Walsh 2017,
  "Always valid inference") for the difference of two arms' means, with a normal mixture N(0, tau^2) over the
  difference. Its p-value and confidence sequence stay valid however often they are looked at;
  :func:`msprt_monitor` carries the running minimum p-value and the running intersection of the intervals over
  a series of looks (that is what makes continuous monitoring valid).
* :func:`srm_check`: sample-ratio mismatch, chi-square of the arms' unit counts against the planned shares.
* :func:`guardrail_check`: stop an arm whose always-valid upper bound on (arm - control) lies below -bound.
* :func:`thompson_allocation`: probability each arm is best under its posterior (Beta for binary metrics,
  normal for real ones), mixed with a per-arm floor share so every arm keeps collecting data.
* :func:`cuped_arms`: CUPED variance reduction (Deng, Xu, Kohavi & Walker 2013) — each unit's value minus
  theta times its pre-experiment covariate's deviation, theta pooled over the arms — for any of the tests above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = ["ArmEstimate", "ArmStats", "GuardrailResult", "SequentialTest", "SRMResult", "arm_estimate", "cuped_arms",
           "guardrail_check", "msprt", "msprt_monitor", "srm_check", "thompson_allocation"]

DEFAULT_ALPHA = 0.05
SRM_THRESHOLD = 0.001  # the customary SRM alarm level: a mismatch this unlikely is a bug, not chance


@dataclass(frozen=True)
class ArmStats:
    """Sufficient statistics of one arm's per-unit metric: n units, sum and sum of squares of their values."""

    n: int
    total: float
    total_sq: float

    @classmethod
    def from_values(cls, values: Sequence[float] | np.ndarray) -> ArmStats:
        """The statistics of a list of per-unit values (0/1 for a binary metric)."""
        v = np.asarray(values, np.float64)
        return cls(int(v.size), float(v.sum()), float((v * v).sum()))

    @classmethod
    def from_counts(cls, n: int, successes: float) -> ArmStats:
        """A binary metric from its counts (x^2 = x for 0/1 values)."""
        if successes < 0 or successes > n:
            raise ValueError(f"successes {successes} must be in [0, n={n}]")
        return cls(int(n), float(successes), float(successes))

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")

    @property
    def variance(self) -> float:
        """Unbiased sample variance (0 for fewer than two units)."""
        if self.n < 2:
            return 0.0
        return max(self.total_sq - self.total * self.total / self.n, 0.0) / (self.n - 1)


@dataclass(frozen=True)
class ArmEstimate:
    """An arm's mean and its (1 - alpha) confidence interval."""

    n: int
    mean: float
    low: float
    high: float


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return NormalDist().inv_cdf(1 - alpha / 2)


def arm_estimate(arm: ArmStats, *, binary: bool, alpha: float = DEFAULT_ALPHA) -> ArmEstimate:
    """Mean with a two-sided (1 - alpha) interval: Wilson score for a binary metric, mean +- z s/sqrt(n) else."""
    z = _z(alpha)
    if arm.n == 0:
        return ArmEstimate(0, float("nan"), float("nan"), float("nan"))
    p = arm.mean
    if binary:
        denom = 1 + z * z / arm.n
        centre = (p + z * z / (2 * arm.n)) / denom
        half = z * math.sqrt(p * (1 - p) / arm.n + z * z / (4 * arm.n * arm.n)) / denom
        return ArmEstimate(arm.n, p, max(0.0, centre - half), min(1.0, centre + half))
    half = z * math.sqrt(arm.variance / arm.n)
    return ArmEstimate(arm.n, p, p - half, p + half)


# ---- always-valid sequential test -----------------------------------------------------------------------
@dataclass(frozen=True)
class SequentialTest:
    """mSPRT for theta = mean(treatment) - mean(control) at one look.

    ``likelihood_ratio`` is the mixture likelihood ratio Lambda against theta = 0; ``p_value`` = min(1, 1/Lambda)
    (already always-valid at this look; :func:`msprt_monitor` takes the running minimum over looks);
    [``low``, ``high``] is the (1 - alpha) confidence sequence. ``reject`` is p_value <= alpha.
    """

    difference: float
    variance: float  # V = s_t^2/n_t + s_c^2/n_c, the variance of the difference estimate
    likelihood_ratio: float
    p_value: float
    low: float
    high: float
    reject: bool
    tau2: float


def _difference_variance(control: ArmStats, treatment: ArmStats, binary: bool) -> float:
    def var(a: ArmStats) -> float:
        if binary:  # the Bernoulli plug-in, floored so a 0/0 or n/n arm does not claim certainty
            p = min(max(a.mean, 0.5 / a.n), 1 - 0.5 / a.n)
            return p * (1 - p)
        return a.variance

    return var(control) / control.n + var(treatment) / treatment.n


def msprt(control: ArmStats, treatment: ArmStats, *, binary: bool, tau2: float | None = None,
          alpha: float = DEFAULT_ALPHA) -> SequentialTest:
    """One look of the normal-mixture SPRT on the difference of means (plug-in variances).

    Lambda = sqrt(V / (V + tau2)) * exp(d^2 tau2 / (2 V (V + tau2))), d the observed difference. Confidence
    sequence: d +- sqrt(V (V + tau2) / tau2 * (log((V + tau2) / V) + 2 log(1/alpha))). ``tau2`` (the mixture's
    variance, the squared effect size the test is most sensitive to) defaults to the pooled per-unit variance
    times 0.01, i.e. effects of about a tenth of a standard deviation.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if control.n < 2 or treatment.n < 2:
        nan = float("nan")
        return SequentialTest(nan, nan, 1.0, 1.0, -math.inf, math.inf, False, tau2 or nan)
    d = treatment.mean - control.mean
    v = max(_difference_variance(control, treatment, binary), 1e-12)
    if tau2 is None:
        pooled = (v / (1 / control.n + 1 / treatment.n))
        tau2 = max(0.01 * pooled, 1e-12)
    if tau2 <= 0:
        raise ValueError(f"tau2 must be positive, got {tau2}")
    log_lr = 0.5 * math.log(v / (v + tau2)) + d * d * tau2 / (2 * v * (v + tau2))
    lr = math.exp(min(log_lr, 700.0))
    p = min(1.0, math.exp(-log_lr)) if log_lr > -700 else 1.0
    half = math.sqrt(v * (v + tau2) / tau2 * (math.log((v + tau2) / v) + 2 * math.log(1 / alpha)))
    return SequentialTest(d, v, lr, p, d - half, d + half, p <= alpha, tau2)


def msprt_monitor(looks: Sequence[tuple[ArmStats, ArmStats]], *, binary: bool, tau2: float | None = None,
                  alpha: float = DEFAULT_ALPHA) -> list[SequentialTest]:
    """The test at each of a series of looks (cumulative (control, treatment) statistics, oldest first), with the
    running minimum p-value and the running intersection of the confidence sequence. ``tau2`` defaults to the
    value chosen at the first look with data, then stays fixed (a mixture chosen after peeking is not valid)."""
    out: list[SequentialTest] = []
    p_min, low, high = 1.0, -math.inf, math.inf
    for control, treatment in looks:
        t = msprt(control, treatment, binary=binary, tau2=tau2, alpha=alpha)
        if tau2 is None and math.isfinite(t.tau2):
            tau2 = t.tau2
        p_min, low, high = min(p_min, t.p_value), max(low, t.low), min(high, t.high)
        out.append(SequentialTest(t.difference, t.variance, t.likelihood_ratio, p_min, low, high, p_min <= alpha,
                                  t.tau2))
    return out


def cuped_arms(values: Sequence[np.ndarray], covariates: Sequence[np.ndarray]) -> tuple[list[ArmStats], float]:
    """CUPED: per arm, the statistics of y - theta (x - mean x), theta = cov(x, y) / var(x) over all arms' units.

    values[a], covariates[a]: per unit of arm a, the metric and the same unit's pre-experiment value of it (or any
    covariate the treatment cannot change). The means stay unbiased for the arms' difference (x is balanced by
    randomisation); the variance falls by the share of it that x explains. Returns (stats per arm, theta)."""
    ys = [np.asarray(v, np.float64) for v in values]
    xs = [np.asarray(c, np.float64) for c in covariates]
    if any(len(x) != len(y) for x, y in zip(xs, ys, strict=True)):
        raise ValueError("each arm needs one covariate per unit")
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    var = float(x_all.var()) if x_all.size > 1 else 0.0
    theta = float(((x_all - x_all.mean()) * (y_all - y_all.mean())).mean() / var) if var > 0 else 0.0
    centre = float(x_all.mean()) if x_all.size else 0.0
    return [ArmStats.from_values(y - theta * (x - centre)) for x, y in zip(xs, ys, strict=True)], theta


# ---- sample-ratio mismatch and guardrails ----------------------------------------------------------------
@dataclass(frozen=True)
class SRMResult:
    """Chi-square of observed unit counts against the planned traffic shares."""

    chi2: float
    dof: int
    p_value: float
    mismatch: bool
    expected: tuple[float, ...]


def srm_check(counts: Sequence[int], expected_shares: Sequence[float], *, threshold: float = SRM_THRESHOLD
              ) -> SRMResult:
    """Pearson chi-square goodness of fit; ``mismatch`` when p < threshold. Shares are normalised to sum 1."""
    from scipy.stats import chi2 as chi2_dist

    obs = np.asarray(counts, np.float64)
    shares = np.asarray(expected_shares, np.float64)
    if obs.shape != shares.shape or obs.size < 2:
        raise ValueError("counts and expected_shares need the same length, at least two arms")
    if np.any(shares <= 0) or np.any(obs < 0):
        raise ValueError("shares must be positive and counts non-negative")
    expected = obs.sum() * shares / shares.sum()
    if obs.sum() == 0:
        return SRMResult(0.0, obs.size - 1, 1.0, False, tuple(expected.tolist()))
    stat = float(((obs - expected) ** 2 / expected).sum())
    p = float(chi2_dist.sf(stat, obs.size - 1))
    return SRMResult(stat, obs.size - 1, p, p < threshold, tuple(expected.tolist()))


@dataclass(frozen=True)
class GuardrailResult:
    """Whether to stop the arm: the always-valid upper bound on (arm - control) is below -bound."""

    stop: bool
    difference: float
    upper: float
    bound: float


def guardrail_check(control: ArmStats, arm: ArmStats, *, bound: float, binary: bool, higher_is_better: bool = True,
                    tau2: float | None = None, alpha: float = DEFAULT_ALPHA) -> GuardrailResult:
    """Stop when the arm is worse than control by more than ``bound`` (metric units) with confidence 1 - alpha,
    using the mSPRT confidence sequence so the check may run after every batch of traffic."""
    if bound < 0:
        raise ValueError(f"bound must be non-negative, got {bound}")
    sign = 1.0 if higher_is_better else -1.0
    t = msprt(control, arm, binary=binary, tau2=tau2, alpha=alpha)
    # in "better" units: the arm's advantage is sign * d; its upper bound is sign*high (or -low when lower wins)
    upper = t.high if higher_is_better else -t.low
    return GuardrailResult(bool(upper < -bound), sign * t.difference, upper, bound)


# ---- adaptive allocation ---------------------------------------------------------------------------------
def thompson_allocation(arms: Sequence[ArmStats], *, binary: bool, floor: float = 0.05, draws: int = 4000,
                        seed: int = 0) -> np.ndarray:
    """Traffic shares: floor + (1 - K floor) * P(arm is best | data), estimated from ``draws`` posterior draws.

    Binary metric: Beta(1 + successes, 1 + failures). Real metric: N(mean, s^2 / n) with s^2 the arm's sample
    variance (the pooled one while the arm has under two units); an arm without data draws from a wide normal
    around the others' mean. Returns float64 (K,) summing to 1; seeded, so the same data give the same shares.
    """
    k = len(arms)
    if k == 0:
        raise ValueError("need at least one arm")
    if not 0 <= floor <= 1 / k:
        raise ValueError(f"floor must be in [0, 1/{k}], got {floor}")
    rng = np.random.default_rng(seed)
    if binary:
        a = np.asarray([1 + arm.total for arm in arms], np.float64)
        b = np.asarray([1 + arm.n - arm.total for arm in arms], np.float64)
        samples = rng.beta(a, b, size=(draws, k))
    else:
        n = np.asarray([arm.n for arm in arms], np.float64)
        known = n > 0
        pooled_n = max(float(n.sum()), 1.0)
        pooled_mean = sum(arm.total for arm in arms) / pooled_n
        pooled_var = max(sum(arm.total_sq for arm in arms) / pooled_n - pooled_mean ** 2, 1e-12)
        means = np.where(known, [arm.mean if arm.n else 0.0 for arm in arms], pooled_mean)
        var = np.asarray([arm.variance if arm.n >= 2 else pooled_var for arm in arms])
        sd = np.where(known, np.sqrt(var / np.maximum(n, 1)), 10 * math.sqrt(pooled_var) + 1.0)
        samples = rng.normal(means, sd, size=(draws, k))
    best = np.argmax(samples, axis=1)
    p_best = np.bincount(best, minlength=k) / draws
    shares: np.ndarray = floor + (1 - k * floor) * p_best
    normalised: np.ndarray = shares / shares.sum()
    return normalised
