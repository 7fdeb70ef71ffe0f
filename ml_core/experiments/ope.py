"""Off-policy estimates from served lists: IPS, self-normalised IPS, DM, DR, clipped DR and switch-DR, with CIs.

APEX serves a Plackett-Luce slate and logs, for each shown item, the probability that it was drawn at its slot given
the slots above it (:func:`ml_core.ranking.plackett_luce_slate`). A candidate policy (another weight set, another
temperature) gives the same logged slate its own such probabilities
(:func:`ml_core.ranking.plackett_luce_propensities`). With the prefix (cumulative) importance weight

    W_ij = prod_{l <= j} pi(a_il | a_i,<l) / mu(a_il | a_i,<l)

and the assumption that the reward at slot j depends on the list only through the items at slots <= j (true of
position-based and cascade click models), the estimators over n logged lists i are

    IPS    = mean_i sum_j W_ij r_ij
    SNIPS  = sum_j (sum_i W_ij r_ij / sum_i W_ij)                   (self-normalised per slot)
    DM     = mean_i E_{slate ~ pi(x_i)} sum_j q(x_i, a_j, j)          (the reward model under pi's own slates)
    DR     = DM + mean_i sum_j W_ij (r_ij - q(x_i, a_ij, j))          (sequential DR: its telescoped form)
    DR-clip: W clipped at ``clip``;  switch-DR: the correction dropped where W_ij > ``tau``.

With one slot (k = 1) these are the standard single-action estimators (the contextual-bandit format of the Open
Bandit Pipeline; ``benchmarks/ope_obp.py`` checks them against obp), and :func:`ml_core.ranking.doubly_robust`
— the ensemble's DR weight selection — is :func:`slate_dr` with one slot. Intervals: normal approximation over
lists for the mean-type estimators; a seeded bootstrap over lists for any of them (SNIPS is a ratio).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = ["ESTIMATORS", "OPEEstimate", "SlateLog", "bootstrap_interval", "cumulative_weights", "estimate_all",
           "slate_dm", "slate_dr", "slate_ips", "slate_snips", "slate_switch_dr"]

DEFAULT_CLIP = 20.0  # clipped DR: weights above this are cut (bias for variance)
DEFAULT_SWITCH_TAU = 20.0  # switch-DR: slots whose weight exceeds this use the reward model alone


@dataclass(frozen=True)
class SlateLog:
    """n logged lists of up to k slots, as the impression rows store them (padded with ``valid`` False).

    propensity: (n, k) logging policy's P(item at slot | slots above); reward: (n, k) the slot's outcome (a click,
    a rating); ``valid``: (n, k) slots that were shown. Rows are lists (one request each); slots are positions."""

    propensity: np.ndarray
    reward: np.ndarray
    valid: np.ndarray

    def __post_init__(self) -> None:
        shapes = {np.shape(self.propensity), np.shape(self.reward), np.shape(self.valid)}
        if len(shapes) != 1 or len(np.shape(self.propensity)) != 2:
            raise ValueError(f"propensity, reward and valid must be (n, k) arrays of one shape, got {shapes}")
        mu = np.asarray(self.propensity, np.float64)[np.asarray(self.valid, bool)]
        if np.any(~(mu > 0)) or np.any(mu > 1 + 1e-9):
            raise ValueError("logged propensities of shown slots must be in (0, 1]")

    @classmethod
    def single_action(cls, propensity: np.ndarray, reward: np.ndarray) -> SlateLog:
        """The contextual-bandit case: one action per round."""
        p = np.asarray(propensity, np.float64)[:, None]
        return cls(p, np.asarray(reward, np.float64)[:, None], np.ones_like(p, bool))

    @property
    def n(self) -> int:
        return int(np.shape(self.propensity)[0])


@dataclass(frozen=True)
class OPEEstimate:
    """A policy value (per list: expected reward summed over slots) with its standard error and interval."""

    name: str
    value: float
    stderr: float
    low: float
    high: float
    n: int


def cumulative_weights(log: SlateLog, target: np.ndarray) -> np.ndarray:
    """W_ij = prod_{l<=j} pi_il / mu_il over shown slots (n, k); 0 on padding. ``target``: pi(a_ij | prefix)."""
    valid = np.asarray(log.valid, bool)
    pi = np.where(valid, np.asarray(target, np.float64), 1.0)
    mu = np.where(valid, np.asarray(log.propensity, np.float64), 1.0)
    if np.any(pi < 0) or np.any(~np.isfinite(pi)):
        raise ValueError("target probabilities of shown slots must be finite and non-negative")
    return np.where(valid, np.cumprod(pi / mu, axis=1), 0.0)


def _estimate(name: str, terms: np.ndarray, alpha: float) -> OPEEstimate:
    n = len(terms)
    value = float(terms.mean()) if n else float("nan")
    se = float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return OPEEstimate(name, value, se, value - z * se, value + z * se, n)


def _rewards(log: SlateLog) -> np.ndarray:
    return np.where(np.asarray(log.valid, bool), np.asarray(log.reward, np.float64), 0.0)


def slate_ips(log: SlateLog, target: np.ndarray, *, alpha: float = 0.05) -> OPEEstimate:
    """Inverse propensity scoring with prefix weights; a normal interval over lists."""
    return _estimate("IPS", (cumulative_weights(log, target) * _rewards(log)).sum(1), alpha)


def slate_snips(log: SlateLog, target: np.ndarray, *, alpha: float = 0.05) -> OPEEstimate:
    """Self-normalised IPS (per slot); the interval by the delta method over lists."""
    w = cumulative_weights(log, target)
    r = _rewards(log)
    valid = np.asarray(log.valid, bool)
    mean_w = np.maximum(w.sum(0), 1e-300) / max(log.n, 1)  # (k,)
    slot_value = (w * r).sum(0) / np.maximum(w.sum(0), 1e-300)
    # the ratio's influence terms (w r - value w) / mean(w), summed over slots: mean = the estimate, se by delta method
    terms = np.where(valid, (w * r - slot_value[None] * w) / mean_w[None], 0.0).sum(1) + slot_value.sum()
    return _estimate("SNIPS", terms, alpha)


def slate_dm(direct: np.ndarray, *, alpha: float = 0.05) -> OPEEstimate:
    """Direct method: ``direct``_i = E_{slate ~ pi(x_i)} sum_j q(x_i, a_j, j), the reward model under pi."""
    return _estimate("DM", np.asarray(direct, np.float64), alpha)


def slate_dr(log: SlateLog, target: np.ndarray, reward_hat: np.ndarray, direct: np.ndarray, *,
             clip: float | None = None, alpha: float = 0.05) -> OPEEstimate:
    """Doubly robust: DM + mean_i sum_j W_ij (r_ij - q_ij); ``clip`` caps the weights (DR-clip).

    reward_hat: (n, k) q(x_i, a_ij, j) at the logged items; direct: (n,) as for :func:`slate_dm`."""
    w = cumulative_weights(log, target)
    if clip is not None:
        w = np.minimum(w, clip)
    residual = np.where(np.asarray(log.valid, bool), _rewards(log) - np.asarray(reward_hat, np.float64), 0.0)
    terms = np.asarray(direct, np.float64) + (w * residual).sum(1)
    return _estimate("DR" if clip is None else "DR-clip", terms, alpha)


def slate_switch_dr(log: SlateLog, target: np.ndarray, reward_hat: np.ndarray, direct: np.ndarray, *,
                    tau: float = DEFAULT_SWITCH_TAU, alpha: float = 0.05) -> OPEEstimate:
    """Switch-DR (Wang, Agarwal & Dudik 2017): DR's correction only where W_ij <= tau, the reward model elsewhere."""
    w = cumulative_weights(log, target)
    w = np.where(w <= tau, w, 0.0)
    residual = np.where(np.asarray(log.valid, bool), _rewards(log) - np.asarray(reward_hat, np.float64), 0.0)
    return _estimate("switch-DR", np.asarray(direct, np.float64) + (w * residual).sum(1), alpha)


ESTIMATORS = ("IPS", "SNIPS", "DM", "DR", "DR-clip", "switch-DR")


def estimate_all(log: SlateLog, target: np.ndarray, reward_hat: np.ndarray, direct: np.ndarray, *,
                 clip: float = DEFAULT_CLIP, tau: float = DEFAULT_SWITCH_TAU, alpha: float = 0.05
                 ) -> dict[str, OPEEstimate]:
    """Every estimator of :data:`ESTIMATORS` for one candidate policy, by name."""
    return {"IPS": slate_ips(log, target, alpha=alpha), "SNIPS": slate_snips(log, target, alpha=alpha),
            "DM": slate_dm(direct, alpha=alpha), "DR": slate_dr(log, target, reward_hat, direct, alpha=alpha),
            "DR-clip": slate_dr(log, target, reward_hat, direct, clip=clip, alpha=alpha),
            "switch-DR": slate_switch_dr(log, target, reward_hat, direct, tau=tau, alpha=alpha)}


def bootstrap_interval(estimator: Callable[[np.ndarray], float], n: int, *, n_boot: int = 500, seed: int = 0,
                       alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap over lists: ``estimator(rows)`` evaluated on ``n_boot`` resamples of row indices."""
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.asarray([estimator(rng.integers(0, n, n)) for _ in range(n_boot)])
    return float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))
