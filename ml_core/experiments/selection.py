"""Re-select the ensemble's blend weights by DR on served lists (the nightly job's step, when there are enough).

The same candidates as the validation-time selection (``ml_core.ranking.dirichlet_weights``, plus the weights now
served), the same slate estimator as the simulator (:func:`ml_core.experiments.ope.slate_dr`), the same policy code
as the engine (:mod:`ml_core.serving.policy`). A new weight set is chosen only when its DR lower confidence
bound beats the served weights' DR value, so noise alone never moves production.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ranking import dirichlet_weights, plackett_luce_propensities, plackett_luce_sample
from .ope import SlateLog, estimate_all, slate_dr, slate_ips

__all__ = ["LoggedList", "WeightChoice", "select_weights_from_logs"]

log = logging.getLogger(__name__)

MIN_LISTS = 500
N_CANDIDATES = 50  # Dirichlet weight sets tried besides the served ones (the validation-time selection tries 200)
DM_SAMPLES = 32


@dataclass(frozen=True)
class LoggedList:
    """One served list as the impression rows store it, with what the member did next.

    history: the member's movie ids before the request (oldest first); movie_ids/propensities: the shown slots in
    order, with the logged P(item at slot | slots above); rewards: per slot, 1 when the member clicked (or watched,
    rated...) it after the impression; temperature: the Plackett-Luce temperature the list was drawn at (None: the
    bundle's)."""

    history: Sequence[int]
    movie_ids: Sequence[int]
    propensities: Sequence[float]
    rewards: Sequence[float]
    temperature: float | None = None  # None: the bundle's serving temperature
    ratings: Sequence[float] | None = None  # of ``history``, when known (they pick the boosts' anchors)


@dataclass(frozen=True)
class WeightChoice:
    """The weights to serve, whether they changed, and why (a JSON-ready record for the run's log)."""

    weights: dict[str, float]
    changed: bool
    reason: dict[str, Any] = field(default_factory=dict)


def _usable(lists: Sequence[LoggedList], default_temperature: float) -> list[LoggedList]:
    """Lists drawn by a stochastic Plackett-Luce policy with a history and valid propensities (temperature filled)."""
    out = []
    for item in lists:
        p = np.asarray(item.propensities, np.float64)
        t = default_temperature if item.temperature is None else item.temperature
        if (t > 0 and len(item.history) and 0 < len(item.movie_ids) == len(p) == len(item.rewards)
                and np.all((p > 0) & (p <= 1))):
            out.append(LoggedList(item.history, item.movie_ids, item.propensities, item.rewards, t, item.ratings))
    return out


def select_weights_from_logs(engine: Any, lists: Sequence[LoggedList], *, min_lists: int = MIN_LISTS,
                             n_candidates: int = N_CANDIDATES, seed: int = 0, k: int = 10) -> WeightChoice:
    """DR value of the served weights and of ``n_candidates`` Dirichlet weight sets on the logged lists; returns the
    best when its 95% lower bound exceeds the served weights' value, else the served weights, with the reason."""
    from ..serving.policy import policy_scores, serving_temperature

    current = dict(engine.weights)
    names = list(current)
    usable = _usable(lists, serving_temperature(engine))
    base = {"n_lists": len(lists), "n_usable": len(usable), "min_lists": min_lists}
    if len(usable) < min_lists or len(names) < 2:
        why = (f"{len(usable)} usable lists, fewer than {min_lists}" if len(usable) < min_lists
               else "one model: nothing to weigh")
        return WeightChoice(current, False, {**base, "decision": "kept", "why": why})
    prep = _prepare(engine, usable, k, seed)
    unique, owner, positions, logged, q, width, rows = (prep.unique, prep.owner, prep.positions, prep.logged, prep.q,
                                                        prep.width, prep.rows)
    n, reward = len(rows), logged.reward
    temps = np.asarray([float(item.temperature or 0.0) for item in rows])
    candidates = np.vstack([np.asarray([current[m] for m in names]), dirichlet_weights(len(names), n_candidates, seed)])
    rng = np.random.default_rng(seed)
    estimates = []
    for w in candidates:
        scores = np.full((len(unique), width), -np.inf)
        for u, ctx in enumerate(unique):  # one pool per distinct request, shared by its lists
            scores[u, : len(ctx.items)] = policy_scores(engine, ctx, w)
        estimates.append(_dr(scores[owner], temps, positions, logged, q, k, rng))
    served, best = estimates[0], int(np.argmax([e[0].value for e in estimates]))
    chosen = best if best > 0 and estimates[best][0].low > served[0].value else 0
    weights = dict(zip(names, (candidates[chosen] / candidates[chosen].sum()).round(6).tolist(), strict=True))
    record = {**base, "n_scored": n, "clicks": float(reward.sum()), "candidates": len(candidates),
              "served": _summary(served), "best": {**_summary(estimates[best]),
                                                   "weights": dict(zip(names, candidates[best].round(4).tolist(),
                                                                       strict=True))},
              "decision": "changed" if chosen else "kept",
              "why": ("the best candidate's DR lower bound beats the served weights' DR value" if chosen else
                      "no candidate's DR lower bound beats the served weights' DR value")}
    log.info("weights from logs: %s (%d lists, served DR %.4f, best DR %.4f)", record["decision"], n,
             served[0].value, estimates[best][0].value)
    return WeightChoice(weights, bool(chosen), record)


@dataclass
class _Prepared:
    """The logged lists the engine can re-rank: one context per distinct request, the shown slots' candidate
    positions, the logged slates and the cross-fitted reward model."""

    unique: list[Any]
    owner: np.ndarray
    positions: np.ndarray
    logged: SlateLog
    q: np.ndarray
    width: int
    rows: list[LoggedList]


def _prepare(engine: Any, usable: Sequence[LoggedList], k: int, seed: int) -> _Prepared:
    from ..serving.policy import request_context, slate_positions

    cache: dict[tuple[tuple[int, ...], tuple[float, ...]], int] = {}
    unique: list[Any] = []
    contexts, rows, which = [], [], []
    for item in usable:
        key = (tuple(int(m) for m in item.history), tuple(float(r) for r in (item.ratings or ())))
        if key not in cache:
            ctx = request_context(engine, item.history, ratings=item.ratings, k=k)
            cache[key] = -1 if ctx is None else len(unique)
            if ctx is not None:
                unique.append(ctx)
        if cache[key] >= 0:
            contexts.append(unique[cache[key]])
            rows.append(item)
            which.append(cache[key])
    owner = np.asarray(which, np.int64)
    n = len(rows)
    valid = np.zeros((n, k), bool)
    mu, reward = np.full((n, k), np.nan), np.zeros((n, k))
    positions = np.full((n, k), -1, np.int64)
    for i, (item, ctx) in enumerate(zip(rows, contexts, strict=True)):
        m = min(k, len(item.movie_ids))
        valid[i, :m] = True
        mu[i, :m], reward[i, :m] = np.asarray(item.propensities[:m]), np.asarray(item.rewards[:m])
        positions[i] = slate_positions(engine, ctx, item.movie_ids, k)
    logged = SlateLog(mu, reward, valid)
    width = max(len(c.items) for c in contexts)
    q = _reward_model(engine, contexts, positions, logged, width, k, seed)
    return _Prepared(unique, owner, positions, logged, q, width, rows)


def estimate_policies_from_logs(engine: Any, lists: Sequence[LoggedList],
                                policies: Sequence[tuple[dict[str, float] | None, float | None]], *,
                                min_lists: int = MIN_LISTS, seed: int = 0, k: int = 10) -> dict[str, Any]:
    """Every estimator (IPS, SNIPS, DM, DR, DR-clip, switch-DR, 95% intervals) of candidate policies on logged lists,
    before any of them is served. A policy is (weights over the bundle's models or None for the served ones, a
    sampling temperature or None for each list's logged one)."""
    from ..serving.policy import policy_scores, serving_temperature

    usable = _usable(lists, serving_temperature(engine))
    base = {"n_lists": len(lists), "n_usable": len(usable), "min_lists": min_lists}
    if len(usable) < min_lists:
        return {**base, "estimates": [], "why": f"{len(usable)} usable lists, fewer than {min_lists}"}
    prep = _prepare(engine, usable, k, seed)
    names = list(engine.weights)
    logged_temps = np.asarray([float(item.temperature or 0.0) for item in prep.rows])
    rng = np.random.default_rng(seed)
    out = []
    for weights, temperature in policies:
        w = None if weights is None else np.asarray([float(weights.get(m, 0.0)) for m in names])
        scores = np.full((len(prep.unique), prep.width), -np.inf)
        for u, ctx in enumerate(prep.unique):
            scores[u, : len(ctx.items)] = policy_scores(engine, ctx, w)
        temps = logged_temps if temperature is None else np.full(len(prep.rows), float(temperature))
        target, reward_hat, direct = _target_terms(scores[prep.owner], temps, prep.positions, prep.logged, prep.q,
                                                   k, rng)
        found = estimate_all(prep.logged, target, reward_hat, direct)
        out.append({name: {"value": e.value, "low": e.low, "high": e.high} for name, e in found.items()})
    return {**base, "n_scored": len(prep.rows), "estimates": out}


def _summary(estimate: tuple[Any, Any]) -> dict[str, float]:
    dr, ips = estimate
    return {"dr": dr.value, "dr_low": dr.low, "dr_high": dr.high, "ips": ips.value}


def _target_terms(scores: np.ndarray, temps: np.ndarray, positions: np.ndarray, logged: SlateLog, q: np.ndarray,
                  k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target propensities, reward model at the shown slots, direct-method value) of one candidate's scores; a
    shown item the candidate cannot draw gets probability 0."""
    n = len(scores)
    target = np.zeros((n, k))
    direct = np.zeros(n)
    for t in np.unique(temps):
        sel = np.flatnonzero(temps == t)
        target[sel] = plackett_luce_propensities(scores[sel], positions[sel], float(t))
        draws = plackett_luce_sample(np.repeat(scores[sel], DM_SAMPLES, axis=0), k, float(t), rng)
        owner = np.repeat(sel, DM_SAMPLES)
        gain = np.where(draws >= 0, q[owner[:, None], np.clip(draws, 0, None), np.arange(k)[None]], 0.0)
        direct[sel] = gain.sum(1).reshape(len(sel), DM_SAMPLES).mean(1)
    target = np.where(logged.valid, np.nan_to_num(target, nan=0.0), np.nan)  # not a candidate now: pi = 0
    rows = np.arange(n)[:, None]
    reward_hat = np.where(positions >= 0, q[rows, np.clip(positions, 0, None), np.arange(k)[None]], 0.0)
    return target, reward_hat, direct


def _dr(scores: np.ndarray, temps: np.ndarray, positions: np.ndarray, logged: SlateLog, q: np.ndarray, k: int,
        rng: np.random.Generator) -> tuple[Any, Any]:
    """(DR, IPS) of one candidate's scores."""
    target, reward_hat, direct = _target_terms(scores, temps, positions, logged, q, k, rng)
    return slate_dr(logged, target, reward_hat, direct), slate_ips(logged, target)


def _reward_model(engine: Any, contexts: list[Any], positions: np.ndarray, logged: SlateLog, width: int, k: int,
                  seed: int) -> np.ndarray:
    """q(list, candidate, slot): a logistic regression of the slot's reward on the bundle's normalised model scores,
    the lite score, log-popularity and the slot, cross-fitted on two folds of lists. (n, width, k)."""
    from sklearn.linear_model import LogisticRegression

    from ..serving.policy import item_popularity

    n = len(contexts)
    popularity = np.log1p(item_popularity(engine))
    n_models = len(engine.weights)
    feats = np.zeros((n, width, n_models + 2))
    for i, ctx in enumerate(contexts):
        c = len(ctx.items)
        if ctx.norm is not None:
            feats[i, :c, :n_models] = ctx.norm.T
        feats[i, :c, n_models] = popularity[ctx.items]
        feats[i, :c, n_models + 1] = ctx.lite
    seen = logged.valid & (positions >= 0)
    li, slot = np.nonzero(seen)
    x = np.concatenate([feats[li, positions[li, slot]], np.eye(k)[slot]], axis=1)
    y = logged.reward[li, slot] > 0
    fold = np.random.default_rng(seed).permutation(n) % 2
    q = np.full((n, width, k), float(y.mean()) if len(y) else 0.0)
    for held in (0, 1):
        train = fold[li] != held
        if len(np.unique(y[train])) < 2:
            continue  # all clicks or none in the other fold: keep the base rate
        model = LogisticRegression(C=1.0, max_iter=500).fit(x[train], y[train])
        coef, intercept = model.coef_[0], float(model.intercept_[0])
        mine = np.flatnonzero(fold == held)
        base = feats[mine] @ coef[: n_models + 2] + intercept
        q[mine] = 1 / (1 + np.exp(-(base[..., None] + coef[n_models + 2 :][None, None])))
    return q
