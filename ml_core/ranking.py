"""Stage 2 of serving: normalise per-model scores, blend them with weights, choose the weights off-policy.

* Normalisation: per model, a z-score over the scored candidates (NaN = the model cannot
  score the item, e.g. an unknown item -> 0, the model's mean, so other models decide).
* Blend: ``weights . normalised`` (weights on the simplex).
* Weight selection: a doubly robust (DR) off-policy estimate (Dudik, Langford & Li 2011;
  Dudik et al. 2014) for each of 200 Dirichlet(1) weight vectors (seeded); the best DR value wins.
  For historical logs (MovieLens) the observation model is MNAR exposure:
  P(o_ua = 1) = p_ua * r_ua with the popularity propensity
  p_ua = min(1, n_u * pop_a^gamma / sum_b pop_b^gamma) (n_u = the user's history length);
  the direct reward model r_hat_ua = min(1, q_ua / p_ua), where q_ua is a conditional-logit
  next-item model over the normalised model scores and log-popularity, cross-fitted on two
  user folds. DR value of policy pi: mean_u [ sum_a pi(a|u) r_hat_ua + pi(a_u|u) (1 - r_hat_ua_u) / p_ua_u ].
* Live traffic: :func:`plackett_luce_slate` samples the served slate (temperature tau) and
  returns each impression's propensity, so DR can run on the real impression logs.
* Uncertainty gating: :func:`disagreement` (variance across models of the normalised scores of
  the blend's top candidates); above the calibrated threshold the engine falls back to content ranking.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .experiments.ope import SlateLog, cumulative_weights, slate_dr

log = logging.getLogger(__name__)

N_WEIGHT_SAMPLES = 200
PROPENSITY_GAMMA = 0.5
DEFAULT_TEMPERATURE = 0.25


def normalise(scores: np.ndarray) -> np.ndarray:
    """Z-score along the last axis (candidates), NaN -> 0; constant rows become 0. Float32, same shape."""
    s = np.asarray(scores, np.float32)
    finite = np.isfinite(s)
    count = np.maximum(finite.sum(-1, keepdims=True), 1)
    filled = np.where(finite, s, 0.0)
    mean = filled.sum(-1, keepdims=True) / count
    var = (np.where(finite, (s - mean) ** 2, 0.0)).sum(-1, keepdims=True) / count
    z = (filled - mean) / np.sqrt(np.maximum(var, 1e-12))
    z = np.where(finite & (var > 1e-12), z, 0.0)
    return z.astype(np.float32)


def blend(normalised: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sum over the model axis (axis 0): (M, ...) x (M,) -> (...)."""
    w = np.asarray(weights, np.float32)
    return np.tensordot(w, normalised, axes=(0, 0)).astype(np.float32)


def dirichlet_weights(n_models: int, n: int = N_WEIGHT_SAMPLES, seed: int = 0) -> np.ndarray:
    """n weight vectors drawn from Dirichlet(1,...,1) on the simplex, plus the uniform vector first (n rows)."""
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(n_models), size=n)
    w[0] = 1.0 / n_models
    return w


def disagreement(normalised: np.ndarray, blended: np.ndarray, top: int = 20) -> float:
    """Mean over the blend's top candidates of the across-model variance of normalised scores."""
    if normalised.shape[0] < 2 or normalised.shape[-1] == 0:
        return 0.0
    idx = np.argsort(-blended, kind="stable")[:top]
    return float(normalised[:, idx].var(axis=0).mean())


# ---- doubly robust estimation -----------------------------------------------------------------
@dataclass
class DREstimate:
    """A policy value with its standard error and the two component estimators."""

    value: float
    stderr: float
    ips: float
    direct: float
    n: int


def doubly_robust(target_prob: np.ndarray, propensity: np.ndarray, reward: np.ndarray,
                  reward_hat: np.ndarray, direct_term: np.ndarray, *, max_weight: float | None = None
                  ) -> DREstimate:
    """DR value from logged rounds i: direct_term_i + pi(a_i|x_i)/mu(a_i|x_i) * (r_i - r_hat(x_i, a_i)).

    target_prob = pi(a_i|x_i), propensity = mu(a_i|x_i) (logging policy), reward = r_i,
    reward_hat = r_hat(x_i, a_i), direct_term = sum_a pi(a|x_i) r_hat(x_i, a). Importance weights
    are clipped at ``max_weight`` when given (bias for variance; off by default). The one-slot case of
    :func:`ml_core.experiments.ope.slate_dr`, which evaluates candidates on served lists.
    """
    r = np.asarray(reward, np.float64)
    logged = SlateLog.single_action(np.asarray(propensity, np.float64), r)  # raises on propensities <= 0
    target = np.asarray(target_prob, np.float64)[:, None]
    dr = slate_dr(logged, target, np.asarray(reward_hat, np.float64)[:, None], np.asarray(direct_term, np.float64),
                  clip=max_weight)
    w = cumulative_weights(logged, target)[:, 0]
    if max_weight is not None:
        w = np.minimum(w, max_weight)
    return DREstimate(dr.value, dr.stderr, float((w * r).mean()), float(np.mean(direct_term)), dr.n)


def exposure_propensity(popularity: np.ndarray, history_lengths: np.ndarray, gamma: float = PROPENSITY_GAMMA
                        ) -> np.ndarray:
    """p_ua = min(1, n_u * pop_a^gamma / sum_b pop_b^gamma): (n_users, n_items) float32."""
    share = np.power(np.asarray(popularity, np.float64) + 1.0, gamma)
    share /= share.sum()
    return np.minimum(1.0, np.asarray(history_lengths, np.float64)[:, None] * share[None]).astype(np.float32)


def fit_next_item_model(features: np.ndarray, targets: np.ndarray, excluded: np.ndarray, *, steps: int = 60
                        ) -> np.ndarray:
    """Conditional-logit coefficients beta (F,) maximising log softmax(features . beta)[target] over allowed items.

    features: (B, n_items, F); targets: (B,); excluded: bool (B, n_items) items not allowed.
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(features, np.float32))
    t = torch.from_numpy(np.asarray(targets, np.int64))
    mask = torch.from_numpy(np.asarray(excluded, bool))
    beta = torch.zeros(x.shape[-1], requires_grad=True)
    opt = torch.optim.LBFGS([beta], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = (x @ beta).masked_fill(mask, float("-inf"))
        loss = -torch.log_softmax(logits, dim=1)[torch.arange(len(t)), t].mean() + 1e-4 * (beta ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    fitted: np.ndarray = beta.detach().numpy().astype(np.float32)
    return fitted


def next_item_probabilities(features: np.ndarray, beta: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """q_ua = softmax over allowed items of features . beta: (B, n_items) float32."""
    logits = np.where(excluded, -np.inf, features @ beta).astype(np.float64)
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    probabilities: np.ndarray = (e / e.sum(1, keepdims=True)).astype(np.float32)
    return probabilities


@dataclass
class WeightSelection:
    """Every candidate weight vector with its DR estimate; ``best`` indexes the winner."""

    weights: np.ndarray  # (n, M)
    estimates: list[DREstimate]
    best: int
    gamma: float
    k: int
    beta: list[list[float]] = field(default_factory=list)  # reward-model coefficients per fold

    @property
    def best_weights(self) -> np.ndarray:
        best: np.ndarray = self.weights[self.best]
        return best


def select_weights_dr(normalised: np.ndarray, targets: np.ndarray, excluded: np.ndarray, popularity: np.ndarray,
                      history_lengths: np.ndarray, *, n: int = N_WEIGHT_SAMPLES, seed: int = 0, k: int = 10,
                      gamma: float = PROPENSITY_GAMMA, candidates: np.ndarray | None = None) -> WeightSelection:
    """Pick blend weights by DR on logged next-item events (historical data, popularity propensities).

    normalised: (M, B, n_items) normalised model scores per logged user; targets: (B,) logged item;
    excluded: bool (B, n_items) items the policy may not show (history). The target policy of a weight
    vector w shows the top-k of blend(w) uniformly: pi(a|u) = 1/k for a in the top-k.
    """
    m, b, n_items = normalised.shape
    pop_feature = np.log1p(np.asarray(popularity, np.float32))
    pop_feature = (pop_feature - pop_feature.mean()) / max(float(pop_feature.std()), 1e-6)
    features = np.concatenate([np.moveaxis(normalised, 0, -1),
                               np.broadcast_to(pop_feature[None, :, None], (b, n_items, 1))], axis=-1)
    p = exposure_propensity(popularity, history_lengths, gamma)
    # cross-fitting: the reward model for fold f is fitted on the other fold
    fold = np.random.default_rng(seed).permutation(b) % 2
    q = np.zeros((b, n_items), np.float32)
    betas = []
    for f in (0, 1):
        fit_rows, use_rows = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        beta = fit_next_item_model(features[fit_rows], targets[fit_rows], excluded[fit_rows])
        betas.append(beta.tolist())
        q[use_rows] = next_item_probabilities(features[use_rows], beta, excluded[use_rows])
    r_hat = np.minimum(1.0, q / p)
    rows = np.arange(b)
    p_logged, r_hat_logged = p[rows, targets], r_hat[rows, targets]
    weights = candidates if candidates is not None else dirichlet_weights(m, n, seed)
    estimates = []
    for w in weights:
        s = np.where(excluded, -np.inf, blend(normalised, w))
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        in_top = (top == targets[:, None]).any(1)
        direct = r_hat[rows[:, None], top].sum(1) / k
        estimates.append(doubly_robust(in_top / k, p_logged, np.ones(b), r_hat_logged, direct))
    best = int(np.argmax([e.value for e in estimates]))
    log.info("DR weight selection: best %d of %d, value %.4f +- %.4f", best, len(weights),
             estimates[best].value, estimates[best].stderr)
    return WeightSelection(np.asarray(weights), estimates, best, gamma, k, betas)


# ---- the stochastic serving policy ---------------------------------------------------------------
def plackett_luce_slate(scores: np.ndarray, k: int, temperature: float = DEFAULT_TEMPERATURE,
                        rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sample a k-slate without replacement from Plackett-Luce(softmax(scores / temperature)).

    Returns (positions into ``scores``, propensity of each impression): the probability that this
    item was picked at its slot given the slots above it. temperature <= 0 is deterministic (propensity 1).
    """
    s = np.asarray(scores, np.float64)
    k = min(k, len(s))
    if temperature <= 0 or k == 0:
        order = np.argsort(-s, kind="stable")[:k]
        return order, np.ones(k)
    rng = rng or np.random.default_rng()
    logits = s / temperature
    order = np.argsort(-(logits + rng.gumbel(size=len(s))), kind="stable")[:k]  # Gumbel-top-k = PL sample
    if not np.isfinite(logits).all():
        return order, plackett_luce_propensities(s[None], order[None], temperature)[0]
    # the same sums as plackett_luce_propensities, for one slate without its batch bookkeeping (the request path)
    e = np.exp(logits - logits.max())
    drawn = e[order]
    undrawn = np.ones(len(e), bool)
    undrawn[order] = False
    left = e[undrawn].sum() + np.cumsum(drawn[::-1])[::-1]
    return order, drawn / np.maximum(left, 1e-300)


def plackett_luce_propensities(scores: np.ndarray, slates: np.ndarray, temperature: float) -> np.ndarray:
    """P(slates[:, j] drawn at slot j | the slots above) under Plackett-Luce(softmax(scores / temperature)), batched.

    The propensities the serving slate logs (:func:`plackett_luce_slate` computes its own with this), and those a
    candidate policy gives a logged slate in off-policy evaluation (:mod:`ml_core.experiments.ope`).
    scores: (n, C), -inf where an item is not in the policy's pool; slates: (n, k) positions into ``scores``,
    -1 for an empty slot; a slate holds distinct items. Returns float64 (n, k): 0 where the policy cannot draw the
    item, NaN for empty slots.
    temperature <= 0 is the deterministic order: 1 where the item is the best remaining one, else 0.
    """
    s = np.asarray(scores, np.float64)
    slates = np.asarray(slates, np.int64)
    n, k = slates.shape
    rows = np.arange(n)
    valid = slates >= 0
    picked = np.clip(slates, 0, None)
    out = np.full((n, k), np.nan)
    if temperature <= 0:
        remaining = np.where(np.isfinite(s), s, -np.inf)
        for j in range(k):
            best = np.argmax(remaining, axis=1)
            out[:, j] = np.where(valid[:, j], (best == picked[:, j]) & np.isfinite(remaining[rows, picked[:, j]]),
                                 np.nan)
            remaining[rows[valid[:, j]], picked[valid[:, j], j]] = -np.inf
        return out
    logits = s / temperature
    finite = np.isfinite(logits)
    top = np.where(finite, logits, -np.inf).max(1, keepdims=True)
    e = np.where(finite, np.exp(logits - np.where(np.isfinite(top), top, 0.0)), 0.0)
    slot_rows = np.broadcast_to(rows[:, None], (n, k))
    drawn = np.where(valid, e[slot_rows, picked], 0.0)  # (n, k) weight of each slot's item
    rest = e.copy()
    rest[slot_rows[valid], picked[valid]] = 0.0
    # what is left to draw from at slot j: the items never drawn plus those drawn at j and below, summed from
    # positive terms only (subtracting the drawn weights from the total loses every digit when one item dominates)
    left = rest.sum(1, keepdims=True) + np.cumsum(drawn[:, ::-1], axis=1)[:, ::-1]
    out = np.where(valid, drawn / np.maximum(left, 1e-300), np.nan)
    return out


def plackett_luce_sample(scores: np.ndarray, k: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Batched :func:`plackett_luce_slate` draws (Gumbel-top-k): (n, C) scores, -inf outside the pool -> (n, k)
    positions; slots past the pool's size are -1. temperature <= 0 gives the deterministic order."""
    s = np.asarray(scores, np.float64)
    noisy = s / temperature + rng.gumbel(size=s.shape) if temperature > 0 else s.copy()
    noisy = np.where(np.isfinite(s), noisy, -np.inf)
    k = min(k, s.shape[1])
    order = np.argsort(-noisy, axis=1, kind="stable")[:, :k]
    drawable = np.isfinite(np.take_along_axis(noisy, order, axis=1))
    return np.where(drawable, order, -1)


def epsilon_greedy_slate(scores: np.ndarray, k: int, epsilon: float, rng: np.random.Generator | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Each slot: the best remaining item with prob 1 - eps, else a uniform remaining one; with propensities."""
    rng = rng or np.random.default_rng()
    s = np.asarray(scores, np.float64)
    remaining = list(np.argsort(-s, kind="stable"))
    order, props = [], []
    for _ in range(min(k, len(s))):
        n_left = len(remaining)
        pick = 0 if rng.random() >= epsilon else int(rng.integers(n_left))
        props.append((1 - epsilon) * (pick == 0) + epsilon / n_left)
        order.append(remaining.pop(pick))
    return np.asarray(order, np.int64), np.asarray(props)

