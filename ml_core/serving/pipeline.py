"""The request path: retrieval -> ensemble ranking (or the gated content fallback) -> re-ranking -> the slate.

Functions of a loaded :class:`~ml_core.serving.bundle.Bundle`; the :class:`~ml_core.serving.engine.Engine` is their
only caller. Ranked pools are cached per request inputs and bundle state (``ml_core/serving/cache.py``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ranking import blend, disagreement, epsilon_greedy_slate, normalise, plackett_luce_slate
from ..rerank import MMR_LAMBDA, boost_flags, boost_names, mmr
from ..retrieval import Candidates, union
from .bundle import Bundle
from .cache import PoolBase, pack_pool, request_key, unpack_pool

log = logging.getLogger(__name__)

LIKED_RATING = 4.0
MMR_WINDOW = 60


@dataclass
class RecommendationList:
    """A served list: items (movie_id, score, position, propensity[, explanation]) and how it was made."""

    items: list[dict[str, Any]]
    tier: int
    weights_version: str
    bundle_version: str
    gated: bool = False
    cold_start: bool = False
    disagreement: float | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    fairness: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "tier": self.tier, "weights_version": self.weights_version,
                "bundle_version": self.bundle_version, "gated": self.gated, "cold_start": self.cold_start,
                "disagreement": self.disagreement, "policy": self.policy, "fairness": self.fairness}


# ---- shared steps ------------------------------------------------------------------------------------
def _filter_mask(b: Bundle, items: np.ndarray, genre: str | None, year: int | None, year_min: int | None,
                 year_max: int | None) -> np.ndarray:
    keep = np.ones(len(items), bool)
    if genre:
        col = b.genre_column.get(genre.strip().lower())
        keep &= b.facts.genres[items, col] if col is not None else False
    years = b.facts.year[items]
    for bound, test in ((year, years == year), (year_min, years >= (year_min or 0)),
                        (year_max, years <= (year_max or 0))):
        if bound is not None:
            keep &= test
    return keep


def _filtering(filters: dict[str, Any]) -> bool:
    return any(v is not None and v != "" for v in filters.values())


def _apply_filters(b: Bundle, cands: Any, k: int, exclude: np.ndarray, **filters: Any) -> Any:
    """Keep candidates passing the filters; top up from the filtered popular list when short."""
    if not _filtering(filters):
        return cands
    keep = _filter_mask(b, cands.items, **filters)
    items = cands.items[keep]
    if len(items) < k:
        pool = b.popular_order[_filter_mask(b, b.popular_order, **filters)]
        banned = set(exclude.tolist()) | set(items.tolist())
        extra = [i for i in pool[: k * 4 + len(banned)].tolist() if i not in banned][: k - len(items)]
        for i in extra:
            cands.extra[i] = ["popular"]
        items = np.concatenate([items, np.asarray(extra, np.int64)])
    cands.items = items
    return cands


def _model_scores(b: Bundle, history: np.ndarray, cands: np.ndarray, ctx: dict[str, Any]) -> np.ndarray:
    """(M, C) raw scores of every ensemble model (NaN where a model cannot score).

    Scorers that split their work (a UserStateScorer, found at load) reuse the user-side state of an earlier
    request with the same inputs (ml_core/serving/cache.py); the others score from scratch.
    """
    out = np.full((len(b.model_names), len(cands)), np.nan, np.float32)
    key = request_key(history, ctx)
    states = b.user_states.get(key)
    missing = False
    for m, name in enumerate(b.model_names):
        scorer = b.scorers[name]
        if name not in b.state_scorers:
            out[m] = scorer.score(history, cands, **ctx)
            continue
        if name not in states:
            states[name], missing = scorer.user_state(history, **ctx), True
        out[m] = scorer.score_state(states[name], cands)
    if missing:
        b.user_states.put(key, states)
    return out


def _lite_parts(b: Bundle, query: np.ndarray | None, content: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """(2, C): embedding cosine to the query and content similarity, the request's part of the content relevance."""
    cos = b.faiss.vectors[cands] @ query if query is not None else np.zeros(len(cands), np.float32)
    return np.stack([cos, content]).astype(np.float32)


def _lite_relevance(b: Bundle, parts: np.ndarray | None, cands: np.ndarray) -> np.ndarray:
    """Tier 3 / fallback relevance: z(embedding cosine) + z(content similarity) + 0.1 z(log served popularity)."""
    assert parts is not None  # a base with candidates always carries its content signals
    stacked = np.concatenate([parts, np.log1p(b.popularity[cands])[None].astype(np.float32)])
    return np.asarray(blend(normalise(stacked), np.asarray([0.45, 0.45, 0.1], np.float32)), np.float32)


def _content_scores(b: Bundle, anchors: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """Cosine of each candidate to the anchors' mean content vector (LSA projection of the TF-IDF rows)."""
    if not len(anchors):
        return np.zeros(len(cands), np.float32)
    return np.asarray(b.content.dense[cands] @ b.content.dense[anchors].mean(0), np.float32)


def _finish(b: Bundle, cands: Any, relevance: np.ndarray, anchors: np.ndarray, k: int, temperature: float | None,
            seed: int | None, epsilon: float | None = None, mmr_lambda: float | None = None, pool_key: bytes | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[str]]]:
    """Boosts, MMR over the candidates, then the stochastic slate; (positions, scores, propensities, boosts).

    ``epsilon`` (an experiment arm's exploration) draws the slate epsilon-greedily instead of Plackett-Luce;
    ``mmr_lambda`` (an arm's re-ranking) trades relevance against diversity (1: relevance only). The boosts and
    the MMR order depend only on the ranked pool, so with its ``pool_key`` they are cached beside it: a returning
    member's request then only draws the slate."""
    lam = MMR_LAMBDA if mmr_lambda is None else float(mmr_lambda)
    if pool_key is None:
        boosted, flags, pool = _rerank(b, cands, relevance, anchors, k, lam)
    else:
        key = hashlib.blake2b(pool_key + repr(("rerank", lam, k)).encode(), digest_size=16).digest()
        cached = b.user_states.get(key).get("rerank")
        if cached is None:
            cached = _rerank(b, cands, relevance, anchors, k, lam)
            b.user_states.put(key, {"rerank": cached}, size=int(cached[0].nbytes + cached[2].nbytes + sum(
                f.nbytes for f in cached[1].values())))
        boosted, flags, pool = cached
    rng = np.random.default_rng(seed)
    if epsilon is not None:
        picks, props = epsilon_greedy_slate(boosted[pool], k, float(epsilon), rng)
    else:
        picks, props = plackett_luce_slate(boosted[pool], k, b.temperature if temperature is None else temperature, rng)
    chosen = pool[picks]
    return chosen, boosted[chosen], props, boost_names(flags, chosen.tolist())


def _rerank(b: Bundle, cands: Any, relevance: np.ndarray, anchors: np.ndarray, k: int, lam: float
            ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(boosted relevance, boost hit masks, the MMR-ordered positions the slate is drawn from)."""
    boosted, flags = boost_flags(relevance, cands.items, anchors, b.facts)
    # MMR re-ranks a bounded window (the best MMR_WINDOW by boosted relevance), so its (C x C) similarity
    # stays small at 500 candidates; items below the window are far less relevant and rarely win a slot
    window = np.argsort(-boosted, kind="stable")[: max(MMR_WINDOW, 2 * k)]
    pool = window[mmr(boosted[window], b.faiss.vectors[cands.items[window]], min(2 * k, len(window)), lam)]
    return boosted, flags, pool


def _list(b: Bundle, cands: Any, chosen: np.ndarray, scores: np.ndarray, props: np.ndarray, **info: Any
          ) -> RecommendationList:
    items = [{"movie_id": b.movie_ids[int(cands.items[c])], "score": round(float(s), 5), "position": pos,
              "propensity": round(float(p), 6)} for pos, (c, s, p) in enumerate(zip(chosen, scores, props, strict=False))]
    temperature, epsilon = info.pop("temperature"), info.pop("epsilon", None)
    policy = ({"name": "plackett-luce", "temperature": temperature} if epsilon is None
              else {"name": "epsilon-greedy", "epsilon": epsilon})
    return RecommendationList(items, b.tier, b.weights_version, b.manifest.get("version", ""), policy=policy, **info)


def _cold_start(b: Bundle, k: int, exclude: np.ndarray, explain: bool, filters: dict[str, Any]) -> RecommendationList:
    cands = Candidates(np.zeros(0, np.int64), {})
    cands = _apply_filters(b, cands, k, exclude, **filters) if any(v for v in filters.values()) else Candidates(
        np.asarray([i for i in b.popular_order[: k + len(exclude)].tolist() if i not in set(exclude.tolist())][:k]),
        {})
    scores = np.log1p(b.popularity[cands.items])
    result = _list(b, cands, np.arange(len(cands.items)), scores, np.ones(len(cands.items)), cold_start=True,
                   temperature=0.0)
    if explain:
        for item in result.items:
            item["explanation"] = {"sources": ["popular"], "contributions": {}, "boosts": [],
                                   "sentence": "Popular with everyone right now"}
    return result


def _pool_keys(b: Bundle, hist: np.ndarray, rates: np.ndarray | None, ctx: dict[str, Any], k: int,
               n_candidates: int, filters: dict[str, Any], kind: str = "user", lite: bool = False,
               weights: np.ndarray | None = None) -> tuple[bytes, bytes]:
    """(base key, pool key). The base key covers what retrieval and the models read: the model inputs, the
    ratings (anchors), the list parameters (``k`` only with a filter, whose top-up depends on it) and the popular
    items retrieval takes (the whole order when a filter tops up from it). The pool key adds the bundle's live
    state (blend weights or the request's own, served counts, online ranker weights: ``Bundle.state_token``).
    Both hold content only, so processes in the same state compute the same keys."""
    filtering = _filtering(filters)
    popular = b.popularity_digest if filtering else hashlib.blake2b(
        np.ascontiguousarray(b.popular_order[: n_candidates // 4], np.int64).tobytes(), digest_size=16).digest()
    base = hashlib.blake2b(b"|".join((
        b"pool-" + kind.encode(), request_key(hist, ctx), b"" if rates is None else np.asarray(rates, np.float32).tobytes(),
        repr((k if filtering else None, n_candidates, sorted(filters.items()), bool(lite))).encode(), popular)),
        digest_size=16).digest()
    own = None if weights is None else weights.round(6).tolist()
    return base, hashlib.blake2b(base + repr((b.state_token, own)).encode(), digest_size=16).digest()


def _cached_pool(b: Bundle, keys: tuple[bytes, bytes], build: Any, finish: Any) -> tuple[Any, ...]:
    """The ranked pool (candidates, relevance, normalised model scores, disagreement, gated) for ``keys``.

    Kept here under the pool key; below it the :class:`PoolBase` (``build()``'s: retrieval and the models' raw
    scores) is kept here and in the shared store under the base key, and ``finish(base)`` applies the bundle's
    live state to it, so a new online state costs the online ranker's row, not every model."""
    base_key, pool_key = keys
    pool = b.user_states.get(pool_key).get("pool")
    if pool is not None:
        return tuple(pool)
    base = b.user_states.get(base_key).get("base")
    if base is None:
        base = _shared_pool(b, base_key)
        if base is None:
            base = build()
            _share_pool(b, base_key, base)
        b.user_states.put(base_key, {"base": base}, size=base.nbytes)
    pool = finish(base)
    b.user_states.put(pool_key, {"pool": pool}, size=base.nbytes + sum(
        getattr(a, "nbytes", 0) for a in pool[1:3]))
    return tuple(pool)


def _shared_pool(b: Bundle, key: bytes) -> PoolBase | None:
    store = b.shared_pools
    data = store.get(b.share_prefix + key.hex()) if store is not None else None
    if not data:
        return None
    try:
        return unpack_pool(data)
    except ValueError:
        log.warning("a shared ranked pool could not be read; computing it here")
        return None


def _share_pool(b: Bundle, key: bytes, base: PoolBase) -> None:
    if b.shared_pools is not None:
        b.shared_pools.set(b.share_prefix + key.hex(), pack_pool(base))


def _finish_pool(b: Bundle, base: PoolBase, hist: np.ndarray, ctx: dict[str, Any], weights: np.ndarray | None,
                 gate: bool) -> tuple[Any, ...]:
    """The bundle's live state on a pool base: the online ranker's row rescored when its served weights changed
    since, the blend (``weights``: a request's own), the disagreement gate, the content relevance with the served
    counts where the models do not rank."""
    cands, raw = base.cands, base.raw
    if not len(cands.items):  # nothing passed the filters: an empty list (users get the cold-start list instead)
        return cands, np.zeros(0, np.float32), None, None, False
    norm = spread = relevance = None
    gated = False
    if raw is not None:
        if b.ranker_name is not None and base.ranker_digest != b.ranker_digest:
            raw = raw.copy()
            raw[b.model_names.index(b.ranker_name)] = b.ranker.score(hist, cands.items, **ctx)
        norm = normalise(raw)
        relevance = blend(norm, b.weights if weights is None else weights)
        if gate:
            spread = disagreement(norm, relevance)
            gated = spread > b.gating_threshold
    if relevance is None or gated:
        relevance = _lite_relevance(b, base.lite, cands.items)
    return cands, relevance, norm, spread, gated


def _weight_vector(b: Bundle, weights: dict[str, float] | None) -> np.ndarray | None:
    """A request's own blend weights over the bundle's models (missing ones 0, renormalised); None: the bundle's
    (also when none of the named models is loaded here)."""
    if weights is None:
        return None
    w = np.asarray([max(float(weights.get(m, 0.0)), 0.0) for m in b.model_names], np.float32)
    if w.sum() <= 0:
        log.warning("request weights %s name no loaded model; serving the bundle's weights", sorted(weights))
        return None
    return np.asarray(w / w.sum(), np.float32)


def _user_base(b: Bundle, hist: np.ndarray, recent: np.ndarray, anchors: np.ndarray, ctx: dict[str, Any],
               k: int, n_candidates: int, filters: dict[str, Any], lite: bool = False) -> PoolBase:
    """Retrieval and the models' raw scores (none with ``lite``: Tier 3 scoring whatever tier is loaded)."""
    digest = b.ranker_digest  # read before scoring: a state swapped in meanwhile only makes the row look stale
    query = b.faiss.user_query(recent)
    results: dict[str, tuple[np.ndarray, np.ndarray | None]] = {"embedding": b.faiss.search(query, n_candidates) if query is not None else (np.zeros(0), None),
               "content": _neighbour_vote(b.content.neighbours, b.content.neighbour_scores, recent[-5:], n_candidates // 2),
               "knowledge_graph": _neighbour_vote(b.kg.neighbours, b.kg.scores, anchors, n_candidates // 4),
               "popular": (b.popular_order[: n_candidates // 4], None)}
    cands = union(results, exclude=hist, limit=n_candidates)
    cands = _apply_filters(b, cands, k, hist, **filters)
    if not len(cands.items):
        return PoolBase(cands, None, None, digest)
    raw = _model_scores(b, hist, cands.items, ctx) if b.model_names and not lite else None
    return PoolBase(cands, raw, _lite_parts(b, query, _content_scores(b, recent[-5:], cands.items), cands.items),
                    digest)


# ---- user recommendations -----------------------------------------------------------------------------
def recommend_user(b: Bundle, history: Sequence[int], *, times: Sequence[float] | None = None,
                   ratings: Sequence[float] | None = None, user_key: int | None = None, now: float | None = None,
                   k: int = 10, n_candidates: int = 100, genre: str | None = None, year: int | None = None,
                   year_min: int | None = None, year_max: int | None = None, explain: bool = False,
                   audit: bool = False, temperature: float | None = None, seed: int | None = None,
                   weights: dict[str, float] | None = None, lite: bool = False, epsilon: float | None = None,
                   mmr_lambda: float | None = None) -> RecommendationList:
    """Retrieval -> ensemble ranking (or gated content fallback) -> boosts, MMR, Plackett-Luce slate.

    An experiment arm changes one request through ``weights`` (its blend), ``lite`` (Tier 3 scoring),
    ``temperature`` or ``epsilon`` (exploration) and ``mmr_lambda`` (re-ranking); the slate's propensities are
    always those of the policy that drew it."""
    idx = np.asarray([b.index.get(int(m), -1) for m in history], np.int64)
    known = idx >= 0
    hist = idx[known]
    filters = {"genre": genre, "year": year, "year_min": year_min, "year_max": year_max}
    if not len(hist):
        return _cold_start(b, k, hist, explain, filters)
    rates = None if ratings is None else np.asarray(ratings, np.float32)[known]
    recent = hist[-50:]
    liked = recent[rates[-50:] >= LIKED_RATING] if rates is not None else recent
    anchors = (liked if len(liked) else recent)[-3:]
    ctx: dict[str, Any] = {"now": now}
    if times is not None:
        ctx["times"] = np.asarray(times, np.float64)[known]
    if user_key is not None and int(user_key) in b.users:
        ctx["user"] = b.users[int(user_key)]
    w = _weight_vector(b, weights)
    keys = _pool_keys(b, hist, rates, ctx, k, n_candidates, filters, lite=bool(lite), weights=w)
    pool_key = keys[1]
    cands, relevance, norm, spread, gated = _cached_pool(
        b, keys, lambda: _user_base(b, hist, recent, anchors, ctx, k, n_candidates, filters, bool(lite)),
        lambda base: _finish_pool(b, base, hist, ctx, w, gate=True))
    if not len(cands.items):
        return _cold_start(b, k, hist, explain, filters)
    chosen, scores, props, boosts = _finish(b, cands, relevance, anchors, k, temperature, seed, epsilon, mmr_lambda,
                                            pool_key)
    result = _list(b, cands, chosen, scores, props, gated=gated, disagreement=spread,
                   temperature=b.temperature if temperature is None else temperature, epsilon=epsilon)
    if explain:
        from .explain import explain_user_items

        explain_user_items(b, result, cands, chosen, boosts, norm, hist, rates, gated)
    if audit:
        result.fairness = b.auditor.audit(cands.items[chosen], profile=hist)
    return result


def _neighbour_vote(neighbours: np.ndarray, scores: np.ndarray, anchors: np.ndarray, n: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Items most supported by the anchors' precomputed neighbour lists (summed similarity)."""
    if not len(anchors) or n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    items, sims = neighbours[anchors].ravel(), scores[anchors].ravel()
    ok = items >= 0
    uniq, inverse = np.unique(items[ok], return_inverse=True)
    total = np.bincount(inverse, weights=sims[ok])
    top = np.argsort(-total, kind="stable")[:n]
    return uniq[top], total[top].astype(np.float32)


def _item_base(b: Bundle, i: int, anchor: np.ndarray, k: int, n_candidates: int, filters: dict[str, Any]) -> PoolBase:
    """Retrieval around one movie and the models' raw scores for a one-item session."""
    digest = b.ranker_digest
    results: dict[str, tuple[np.ndarray, np.ndarray | None]] = {"embedding": b.faiss.similar(i, n_candidates),
               "content": b.content.similar(i, n_candidates // 2),
               "knowledge_graph": b.kg.similar(i, n_candidates // 4)}
    cands = union(results, exclude=anchor, limit=n_candidates)
    cands = _apply_filters(b, cands, k, anchor, **filters)
    if not len(cands.items):
        return PoolBase(cands, None, None, digest)
    raw = _model_scores(b, anchor, cands.items, {}) if b.model_names else None
    return PoolBase(cands, raw, _lite_parts(b, b.faiss.vectors[i], _content_scores(b, anchor, cands.items), cands.items),
                    digest)


# ---- item recommendations ------------------------------------------------------------------------------
def recommend_item(b: Bundle, movie_id: int, *, k: int = 10, n_candidates: int = 100, genre: str | None = None,
                   year: int | None = None, year_min: int | None = None, year_max: int | None = None,
                   explain: bool = False, audit: bool = False, temperature: float | None = 0.0,
                   seed: int | None = None) -> RecommendationList:
    """Movies to watch after ``movie_id``: the ensemble scores candidates for a one-item session."""
    i = b.index.get(int(movie_id), -1)
    if i < 0:
        raise KeyError(movie_id)
    anchor = np.asarray([i], np.int64)
    filters = {"genre": genre, "year": year, "year_min": year_min, "year_max": year_max}
    keys = _pool_keys(b, anchor, None, {}, k, n_candidates, filters, kind="item")
    pool_key = keys[1]
    cands, relevance, norm, _, _ = _cached_pool(  # one pool per movie and parameters, the same for every visitor
        b, keys, lambda: _item_base(b, i, anchor, k, n_candidates, filters),
        lambda base: _finish_pool(b, base, anchor, {}, None, gate=False))
    chosen, scores, props, boosts = _finish(b, cands, relevance, anchor, k, temperature, seed, pool_key=pool_key)
    result = _list(b, cands, chosen, scores, props, temperature=temperature or 0.0)
    if explain:
        from .explain import explain_item_items

        explain_item_items(b, result, cands, chosen, boosts, norm, i)
    if audit:
        result.fairness = b.auditor.audit(cands.items[chosen])
    return result
