"""A candidate serving policy's slate distribution on a logged request, computed by the serving pipeline's own steps.

The engine serves ``retrieval -> blend(weights) (or the gated lite scores) -> boosts -> MMR pool -> Plackett-Luce
(temperature)``. Off-policy evaluation needs, for each logged request, the distribution a *different* weight set or
temperature would have drawn the slate from. :func:`request_context` runs retrieval and the models once per request
(the pipeline's ``_user_base``, so the candidates are the ones served); :func:`policy_scores` then applies one
candidate's blend, gating, boosts and MMR exactly as ``pipeline._finish`` does and returns the Plackett-Luce scores
over the candidates (-inf outside the MMR pool), for :func:`ml_core.ranking.plackett_luce_propensities` and
:func:`ml_core.ranking.plackett_luce_sample`. The simulator checks that this reproduces the engine's logged
propensities for the logging policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..ranking import blend, disagreement
from ..rerank import MMR_LAMBDA, boost_flags, mmr
from . import pipeline as _pipeline
from .engine import Engine

__all__ = ["RequestContext", "item_popularity", "policy_scores", "request_context", "serving_temperature",
           "slate_positions"]


@dataclass(frozen=True)
class RequestContext:
    """One request as the pipeline ranks it: retrieved candidates (item indices), their normalised model scores
    (M, C), the lite (Tier 3 / gated fallback) relevance and the anchors the boosts compare against."""

    items: np.ndarray
    norm: np.ndarray | None
    lite: np.ndarray
    anchors: np.ndarray
    k: int


def request_context(engine: Engine, history: Sequence[int], *, ratings: Sequence[float] | None = None,
                    times: Sequence[float] | None = None, k: int = 10, n_candidates: int = 100
                    ) -> RequestContext | None:
    """Retrieval and model scores for a history of movie ids (oldest first, with its ratings and times when known),
    as ``recommend_user`` computes them without filters; None for a cold start (the popular list, not a policy)."""
    b = engine._bundle  # inside the package: the pipeline's functions take the loaded bundle
    idx = np.asarray([b.index.get(int(m), -1) for m in history], np.int64)
    known = idx >= 0
    hist = idx[known]
    if not len(hist):
        return None
    recent = hist[-50:]
    liked = recent
    if ratings is not None:
        rates = np.asarray(ratings, np.float32)[known]
        liked = recent[rates[-50:] >= _pipeline.LIKED_RATING]
    anchors = (liked if len(liked) else recent)[-3:]
    ctx: dict[str, object] = {"now": None}
    if times is not None:
        ctx["times"] = np.asarray(times, np.float64)[known]
    filters = {"genre": None, "year": None, "year_min": None, "year_max": None}
    base = _pipeline._user_base(b, hist, recent, anchors, ctx, k, n_candidates, filters)
    cands, _, norm, _, _ = _pipeline._finish_pool(b, base, hist, ctx, None, gate=False)
    if not len(cands.items):
        return None
    lite = _pipeline._lite_relevance(b, base.lite, cands.items)
    return RequestContext(np.asarray(cands.items, np.int64), norm, np.asarray(lite, np.float64), anchors, k)


def policy_scores(engine: Engine, ctx: RequestContext, weights: np.ndarray | None, *,
                  mmr_lambda: float = MMR_LAMBDA) -> np.ndarray:
    """(C,) Plackett-Luce scores of one weight set over the request's candidates: -inf outside its MMR pool.

    ``weights`` over the bundle's models (renormalised; None: the bundle's). Gating follows the bundle's threshold.
    """
    b = engine._bundle
    if ctx.norm is not None and len(b.model_names):
        w = b.weights if weights is None else np.asarray(weights, np.float32) / max(float(np.sum(weights)), 1e-12)
        relevance = blend(ctx.norm, w)
        gated = disagreement(ctx.norm, relevance) > b.gating_threshold
        relevance = ctx.lite if gated else relevance
    else:
        relevance = ctx.lite
    boosted, _ = boost_flags(relevance, ctx.items, ctx.anchors, b.facts)
    window = np.argsort(-boosted, kind="stable")[: max(_pipeline.MMR_WINDOW, 2 * ctx.k)]
    pool = window[mmr(boosted[window], b.faiss.vectors[ctx.items[window]], min(2 * ctx.k, len(window)), mmr_lambda)]
    out = np.full(len(ctx.items), -np.inf)
    out[pool] = boosted[pool]
    return out


def slate_positions(engine: Engine, ctx: RequestContext, movie_ids: Sequence[int], k: int) -> np.ndarray:
    """(k,) positions of served movie ids among the request's candidates (-1: empty slot or not a candidate)."""
    where = {int(i): p for p, i in enumerate(ctx.items.tolist())}
    index = engine._bundle.index
    out = np.full(k, -1, np.int64)
    for j, m in enumerate(list(movie_ids)[:k]):
        out[j] = where.get(index.get(int(m), -2), -1)
    return out


def serving_temperature(engine: Engine) -> float:
    """The Plackett-Luce temperature the engine serves its slates with (the logging policy's)."""
    return float(engine._bundle.temperature)


def item_popularity(engine: Engine) -> np.ndarray:
    """(n_items,) float64 interaction counts of the bundle's items (a copy), in the engine's item order."""
    return np.array(engine._bundle.popularity, dtype=np.float64)
