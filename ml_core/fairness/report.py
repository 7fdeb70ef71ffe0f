"""The fairness report: every member group's accuracy, exposure and calibration, before and after the re-ranker.

Protocol: the one of :mod:`ml_core.evaluation` (chronological leave-one-out, the model sees train plus the
validation event, full ranking over every item the user has not interacted with, pessimistic ties). "Before"
is the model's own top-k of that full ranking; the held-out item's rank is the protocol's. "After" sends the
model's best ``n_candidates`` items through the serving re-ranker (:mod:`ml_core.rerank`, as
``ml_core.serving.pipeline`` runs it: the seed's boosts against the member's anchors - their last three liked
movies, else the last three - then MMR over the best 60 by boosted relevance, then the slate at temperature 0,
i.e. the MMR pool ordered by boosted relevance); the held-out item's rank is its position in that list (a miss
when it is not shown). Groups are the dataset's member attributes (:attr:`Interactions.user_attributes`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Interactions
from ..evaluation import K, Split, _excluded, leave_one_out, ranks_full, top_k
from ..rerank import ItemFacts, boost_flags, mmr
from .metrics import ItemSpace, list_metrics, mean_ci, ndcg_hr, permutation_p
from .scorers import choose_scorer

log = logging.getLogger(__name__)

N_CANDIDATES = 100  # the serving pipeline's default candidate pool
MMR_WINDOW = 60  # as ml_core.serving.pipeline
LIKED_RATING = 4.0  # as ml_core.serving.pipeline: anchors are liked movies when there are ratings
MIN_GROUP_USERS = 20  # smaller groups are shown, marked, and left out of the gaps
BATCH = 256


class NoGroupsError(ValueError):
    """The data has no member demographics, so there are no groups to compare; the message says so."""


def fairness_report(data: Interactions, *, model: str = "auto", artifacts_dir: Path | None = None,
                    bundle_dir: Path | None = None, seed: int = 42, k: int = K, n_candidates: int = N_CANDIDATES,
                    min_group_users: int = MIN_GROUP_USERS) -> dict[str, Any]:
    """The report as plain JSON-ready values; NoGroupsError when ``data`` has no member groups."""
    start = time.perf_counter()
    if not any(data.user_attributes.values()):
        raise NoGroupsError(f"{data.name} has no member demographics (age, gender or occupation per user), so there "
                            "are no groups to compare; ml-100k has them (u.user), and a CSV dataset can add a "
                            "users.csv (user_id,age,gender,occupation)")
    split = leave_one_out(data, seed=seed)
    scorer, model_info = choose_scorer(split, model=model, artifacts_dir=artifacts_dir, bundle_dir=bundle_dir,
                                       seed=seed)
    lists = ranked_lists(split, scorer, k=k, n_candidates=n_candidates)
    space = ItemSpace.build(lists["facts"].genres, lists["facts"].popularity, lists["facts"].genre_names)
    users = lists["users"]
    histories = [np.asarray(c.history, np.int64) for c in split.contexts("test", users)]

    def stages(rows: np.ndarray) -> dict[str, Any]:
        hist = [histories[i] for i in rows.tolist()]
        return {stage: list_metrics(lists[f"ranks_{stage}"][rows], lists[f"tops_{stage}"][rows], hist, space, k=k,
                                    matched_users=min_group_users, seed=seed)
                for stage in ("before", "after")}

    overall = stages(np.arange(len(users)))
    attributes = {}
    for name, labels in data.user_attributes.items():
        known = np.asarray([labels.get(int(u), "") for u in users.tolist()], dtype=object)
        groups = []
        for label in sorted({str(v) for v in known if v}, key=_group_order):
            rows = np.flatnonzero(known == label)
            groups.append({"group": label, "n_users": len(rows), "small": len(rows) < min_group_users,
                           **stages(rows)})
        small = {g["group"] for g in groups if g["small"]}
        big = [i for i, label in enumerate(known.tolist()) if label and label not in small]
        codes = np.unique(known[big].astype(str), return_inverse=True)[1] if big else np.zeros(0, np.int64)
        attributes[name] = {"groups": groups, "n_unknown": int((known == "").sum()),
                            "gaps": {stage: _gap(groups, stage, k) for stage in ("before", "after")},
                            "p_value": {stage: permutation_p(ndcg_hr(lists[f"ranks_{stage}"][big], k)[0], codes,
                                                             seed=seed) for stage in ("before", "after")}}
        for group in groups:
            for stage in ("before", "after"):
                group[stage]["vs_all"] = _versus(group[stage], overall[stage][f"ndcg@{k}"], k)
    return {"dataset": data.name, "data_snapshot": split.train.snapshot(), "k": k, "seed": seed,
            "n_candidates": n_candidates, "min_group_users": min_group_users, "model": model_info,
            "n_users": len(users), "genres": space.genre_names, "overall": overall, "attributes": attributes,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.perf_counter() - start, 1)}


def _group_order(label: str) -> tuple[int, str]:
    """Age bands in age order ("<18" first), everything else alphabetically."""
    digits = label.lstrip("<").split("-")[0].rstrip("+")
    return (0 if label.startswith("<") else int(digits), label) if digits.isdigit() else (10**6, label)


def _gap(groups: list[dict[str, Any]], stage: str, k: int) -> dict[str, Any] | None:
    """Best and worst group by NDCG@k among groups of at least the minimum size, and the difference."""
    big = [g for g in groups if not g["small"]]
    if len(big) < 2:
        return None
    key = f"ndcg@{k}"
    best, worst = max(big, key=lambda g: g[stage][key]), min(big, key=lambda g: g[stage][key])
    return {"best": best["group"], "worst": worst["group"], key: best[stage][key] - worst[stage][key],
            "ratio": worst[stage][key] / best[stage][key] if best[stage][key] > 0 else None}


def _versus(metrics: dict[str, Any], overall: float, k: int) -> str:
    """"below" / "above" when the group's NDCG interval leaves out the overall mean, else ""."""
    lo, hi = metrics[f"ndcg@{k}_ci"]
    if lo is None or hi is None:
        return ""
    return "below" if hi < overall else "above" if lo > overall else ""


def item_facts(split: Split) -> ItemFacts:
    """The re-ranker's item facts from the dataset's own metadata (genres, years; train ratings for quality)."""
    data, train = split.full, split.train
    counts = np.bincount(train.items, minlength=data.n_items)
    sums = np.bincount(train.items, weights=train.ratings.astype(np.float64), minlength=data.n_items)
    meta = [{"year": data.item_years.get(i), "genres": data.item_genres.get(i, []),
             "rating_count": int(counts[i]) if data.has_ratings else 0,
             "rating_mean": float(sums[i] / counts[i]) if data.has_ratings and counts[i] else None}
            for i in range(data.n_items)]
    return ItemFacts.from_metadata(meta, counts.astype(np.float64))


def _item_vectors(scorer: Any, split: Split) -> np.ndarray:
    """What MMR compares: the serving bundle's choice (a model's item embeddings, else an SVD of train)."""
    from ..serving_artifacts import item_embeddings

    _, vectors = item_embeddings(scorer.models, split.n_items, split.train.matrix())
    return vectors


def _last_ratings(data: Interactions) -> Any:
    """CSR user x item of each pair's latest rating (so a re-rated movie counts once, at its latest value)."""
    from scipy import sparse

    order = data.chronological_order()[::-1]
    keys = data.users[order] * data.n_items + data.items[order]
    _, first = np.unique(keys, return_index=True)
    rows = order[first]
    return sparse.csr_matrix((data.ratings[rows], (data.users[rows], data.items[rows])),
                             shape=(data.n_users, data.n_items))


def anchors_of(history: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
    """The re-ranker's anchors: the last three liked (rated >= 4) of the last 50, else the last three."""
    recent = np.asarray(history, np.int64)[-50:]
    if ratings is None:
        return recent[-3:]
    liked = recent[np.asarray(ratings)[-50:] >= LIKED_RATING]
    return (liked if len(liked) else recent)[-3:]


def rerank(relevance: np.ndarray, candidates: np.ndarray, anchors: np.ndarray, facts: ItemFacts,
           vectors: np.ndarray, k: int) -> np.ndarray:
    """Item indices of the re-ranked list: boosts, MMR over the best MMR_WINDOW, slate at temperature 0."""
    boosted, _ = boost_flags(relevance, candidates, anchors, facts)
    window = np.argsort(-boosted, kind="stable")[: max(MMR_WINDOW, 2 * k)]
    pool = window[mmr(boosted[window], vectors[candidates[window]], min(2 * k, len(window)))]
    shown: np.ndarray = candidates[pool[np.argsort(-boosted[pool], kind="stable")[:k]]]
    return shown


def ranked_lists(split: Split, scorer: Any, *, k: int, n_candidates: int) -> dict[str, Any]:
    """Per test user: the protocol's rank and top-k (before), the re-ranked list and the target's place in it."""
    users = split.eval_users("test")
    facts = item_facts(split)
    vectors = _item_vectors(scorer, split)
    rated = _last_ratings(split.full) if split.full.has_ratings else None
    ranks_b, ranks_a = np.empty(len(users)), np.full(len(users), np.inf)
    tops_b, tops_a = np.zeros((len(users), k), np.int64), np.full((len(users), k), -1, np.int64)  # -1: no item
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        contexts = split.contexts("test", batch)
        scores = np.asarray(scorer.score_batch(contexts), np.float32)
        excluded = _excluded(split, "test", batch)
        targets = split.test_item[batch]
        ranks_b[start : start + len(batch)] = ranks_full(scores, targets, excluded)
        tops_b[start : start + len(batch)] = top_k(scores, excluded, k)
        pools = top_k(scores, excluded, min(n_candidates, split.n_items - 1))
        for j, (ctx, pool) in enumerate(zip(contexts, pools, strict=True)):
            hist = np.asarray(ctx.history, np.int64)
            rates = None if rated is None else rated[int(batch[j])].toarray().ravel()[hist]
            relevance = np.nan_to_num(scores[j, pool].astype(np.float64), nan=-1e9)
            shown = rerank(relevance, pool, anchors_of(hist, rates), facts, vectors, k)
            tops_a[start + j, : len(shown)] = shown
            hit = np.flatnonzero(shown == targets[j])
            if len(hit):
                ranks_a[start + j] = hit[0] + 1
    log.info("fairness: %d users ranked (NDCG@%d before %.4f)", len(users), k,
             mean_ci(np.where(ranks_b <= k, 1 / np.log2(ranks_b + 1), 0))[0])
    return {"users": users, "facts": facts, "ranks_before": ranks_b, "ranks_after": ranks_a,
            "tops_before": tops_b, "tops_after": tops_a}
