"""The one evaluation protocol: chronological leave-one-out, full-ranking and sampled metrics.

Protocol (used by every model, the ensemble and the online learner):

* Split: per user, interactions sorted by time, equal times by the dataset's seeded tie-break
  key (:func:`ml_core.data.tiebreak_keys`: a hash of dataset name, user and item, so neither
  the file order nor the id order decides which tied event is held out); the last is the test
  target, the second-to-last the validation target, the rest train. Users with fewer than 3
  interactions stay entirely in train.
* Tied targets: a user whose target shares its timestamp with the event before it (the
  validation item for test, the last train item for validation) is "tied": which of the two is
  the target is the tie-break's coin flip. Every evaluation also reports ``n_tied_users`` and
  HR@10/NDCG@10 over the untied users only (``hr@10_untied``, ``ndcg@10_untied``) and the tied
  ones (``..._tied``), so a model cannot hide a tie artefact in the headline.
* Models are trained on train only, selected and early-stopped on validation
  NDCG@10 (full ranking), and the selected model is reported on test (RecBole style).
  At test time the model sees the validation item as part of the history.
* Full ranking: every catalogue item is a candidate except what the user interacted
  with *before* the target (train items; for test also the validation item). The
  target itself is never excluded.
* Ties are broken pessimistically: rank = 1 + #{other candidates with score >= target}.
  NaN scores count as -inf, so a NaN target ranks last. Ranks are one-based.
* HR@k = [rank <= k]; NDCG@k = 1/log2(rank + 1) if rank <= k; MRR@k = 1/rank if rank <= k.
* Sampled (for comparison with the SASRec paper only): the target against 100 negatives
  drawn uniformly, without replacement, from items the user never interacted with
  (whole log), with a fixed seed, so every model sees the same negatives.
* Beyond accuracy on the top-10 lists of the evaluated users: catalogue coverage
  (share of items recommended at least once), Gini of exposure over all items
  (0 = equal exposure, 1 = one item gets everything), novelty = mean self-information
  -log2((train users of item + 1) / (n_users + 1)) of recommended items.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import sparse

from .data import Interactions
from .interface import UserContext

log = logging.getLogger(__name__)

K = 10
N_SAMPLED_NEGATIVES = 100


class BatchScorer(Protocol):
    """What evaluation needs of a model: every catalogue item's score for each context of a batch."""

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray: ...


@dataclass
class Split:
    """A leave-one-out split; targets are -1 for users without one."""

    train: Interactions
    full: Interactions
    train_seqs: list[np.ndarray]  # per user, chronological train items
    train_times: list[np.ndarray]
    valid_item: np.ndarray  # int64 (n_users,)
    valid_time: np.ndarray
    test_item: np.ndarray
    test_time: np.ndarray
    sampled_negatives: np.ndarray  # int64 (n_users, 100): -1 padded when the catalogue is too small
    test_rows: np.ndarray  # row numbers (into full) of the test interactions
    valid_tied: np.ndarray  # bool (n_users,): the validation event has the same time as the last train event
    test_tied: np.ndarray  # bool (n_users,): the test event has the same time as the validation event
    # sorted user indices evaluated (valid and test) when only a seeded sample is (large sets: --eval-users)
    eval_sample: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return self.full.n_items

    def eval_users(self, stage: str) -> np.ndarray:
        """Users with a target for stage 'valid' or 'test'."""
        target = self.valid_item if stage == "valid" else self.test_item
        users = np.flatnonzero(target >= 0)
        return users if self.eval_sample is None else users[np.isin(users, self.eval_sample)]

    def tied(self, stage: str) -> np.ndarray:
        """bool (n_users,): users whose stage target shares its timestamp with the event before it."""
        return self.valid_tied if stage == "valid" else self.test_tied

    def contexts(self, stage: str, users: np.ndarray) -> list[UserContext]:
        """What the model may see when predicting the stage's target of each user."""
        out = []
        for u in users.tolist():
            hist, times = self.train_seqs[u], self.train_times[u]
            if stage == "test" and self.valid_item[u] >= 0:
                hist = np.append(hist, self.valid_item[u])
                times = np.append(times, self.valid_time[u])
            now = float(self.valid_time[u] if stage == "valid" else self.test_time[u])
            out.append(UserContext(history=hist, times=times, user=u, now=now))
        return out

    def train_plus_valid(self) -> Interactions:
        """Train rows plus each user's validation row (for refits; not used by default)."""
        mask = np.ones(len(self.full), bool)
        mask[self.test_rows] = False
        return self.full.subset(mask)


def leave_one_out(data: Interactions, *, seed: int = 0, eval_users: int | None = None) -> Split:
    """Chronological leave-one-out split (ties by the tie-break key) with fixed sampled negatives (seeded).

    ``eval_users``: validation and test use a seeded sample of that many users with targets (every model of a
    run sees the same sample); None or a number at least the users with targets keeps them all.
    """
    order = data.chronological_order()
    bounds = data.user_bounds(order)
    has = np.diff(bounds) >= 3
    ends = bounds[1:][has]
    test_rows, valid_rows, before_rows = order[ends - 1], order[ends - 2], order[ends - 3]
    owners = data.users[test_rows]
    valid_item = np.full(data.n_users, -1, np.int64)
    test_item = np.full(data.n_users, -1, np.int64)
    valid_time = np.zeros(data.n_users, np.int64)
    test_time = np.zeros(data.n_users, np.int64)
    valid_item[owners], valid_time[owners] = data.items[valid_rows], data.times[valid_rows]
    test_item[owners], test_time[owners] = data.items[test_rows], data.times[test_rows]
    valid_tied = np.zeros(data.n_users, bool)
    test_tied = np.zeros(data.n_users, bool)
    valid_tied[owners] = data.times[valid_rows] == data.times[before_rows]
    test_tied[owners] = data.times[test_rows] == data.times[valid_rows]
    held = np.zeros(len(data), bool)
    held[test_rows] = held[valid_rows] = True
    train = data.subset(~held)
    sample = None
    if eval_users is not None and eval_users < len(owners):
        if eval_users < 1:
            raise ValueError(f"eval_users must be at least 1, not {eval_users}")
        rng = np.random.default_rng([seed, 20_171])  # a stream of its own: the negatives stay as they were
        sample = np.sort(rng.choice(np.sort(owners), size=eval_users, replace=False))
    return Split(train, data, train.sequences(), train.time_sequences(), valid_item, valid_time,
                 test_item, test_time, _sample_negatives(data, seed), np.sort(test_rows), valid_tied, test_tied,
                 sample)


def _sample_negatives(data: Interactions, seed: int) -> np.ndarray:
    """100 items per user never interacted with, uniformly without replacement."""
    rng = np.random.default_rng(seed)
    seen = data.matrix()
    out = np.full((data.n_users, N_SAMPLED_NEGATIVES), -1, np.int64)
    unseen = np.ones(data.n_items, bool)
    for u in range(data.n_users):
        items = seen.indices[seen.indptr[u]:seen.indptr[u + 1]]
        unseen[items] = False
        pool = np.flatnonzero(unseen)  # sorted, as setdiff1d gave: the draws are the same (25M ratings: minutes less)
        unseen[items] = True
        take = min(N_SAMPLED_NEGATIVES, len(pool))
        out[u, :take] = rng.choice(pool, size=take, replace=False)
    return out


def ranks_full(scores: np.ndarray, targets: np.ndarray, excluded: sparse.csr_matrix) -> np.ndarray:
    """One-based pessimistic ranks of targets among all non-excluded items.

    scores: float (B, n_items); targets: (B,); excluded: CSR (B, n_items) of items to drop
    (the target is never dropped even when listed).
    """
    s = np.where(np.isnan(scores), -np.inf, scores.astype(np.float64, copy=True))
    rows = np.arange(len(targets))
    t = s[rows, targets].copy()
    ex_rows, ex_cols = excluded.nonzero()
    s[ex_rows, ex_cols] = np.nan  # NaN compares false: excluded items never outrank
    s[rows, targets] = np.nan
    ranks: np.ndarray = 1 + (s >= t[:, None]).sum(axis=1)
    return ranks


def ranks_sampled(scores: np.ndarray, targets: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """One-based pessimistic ranks of targets among their sampled negatives (-1 = padding)."""
    s = np.where(np.isnan(scores), -np.inf, scores.astype(np.float64))
    rows = np.arange(len(targets))
    t = s[rows, targets]
    neg = s[rows[:, None], np.maximum(negatives, 0)]
    ranks: np.ndarray = 1 + ((neg >= t[:, None]) & (negatives >= 0)).sum(axis=1)
    return ranks


def rank_metrics(ranks: np.ndarray, k: int = K) -> dict[str, float]:
    """HR@k, NDCG@k, MRR@k averaged over users."""
    ranks = np.asarray(ranks, np.float64)
    hit = ranks <= k
    return {f"hr@{k}": float(hit.mean()),
            f"ndcg@{k}": float(np.where(hit, 1.0 / np.log2(ranks + 1), 0.0).mean()),
            f"mrr@{k}": float(np.where(hit, 1.0 / ranks, 0.0).mean())}


def beyond_accuracy(top_lists: np.ndarray, train: Interactions) -> dict[str, float]:
    """Coverage, Gini of exposure and novelty of top-k lists (B, k) of item indices."""
    n_items = train.n_items
    exposure = np.bincount(top_lists.ravel(), minlength=n_items).astype(np.float64)
    coverage = float((exposure > 0).mean())
    x = np.sort(exposure)
    n = len(x)
    gini = float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum())) if x.sum() > 0 else 0.0
    item_users = np.asarray((train.matrix() > 0).sum(axis=0)).ravel()
    info = -np.log2((item_users + 1.0) / (train.n_users + 1.0))
    return {"coverage@10": coverage, "gini@10": gini, "novelty@10": float(info[top_lists].mean())}


def _excluded(split: Split, stage: str, users: np.ndarray) -> sparse.csr_matrix:
    rows, cols = [], []
    for i, u in enumerate(users.tolist()):
        items = split.train_seqs[u]
        if stage == "test" and split.valid_item[u] >= 0:
            items = np.append(items, split.valid_item[u])
        rows.append(np.full(len(items), i))
        cols.append(items)
    r, c = np.concatenate(rows or [np.zeros(0)]), np.concatenate(cols or [np.zeros(0)])
    return sparse.csr_matrix((np.ones(len(r), bool), (r.astype(np.int64), c.astype(np.int64))),
                             shape=(len(users), split.n_items))


def top_k(scores: np.ndarray, excluded: sparse.csr_matrix, k: int = K) -> np.ndarray:
    """Indices of the k best non-excluded items per row, best first (NaN last)."""
    s = np.where(np.isnan(scores), -np.inf, scores.astype(np.float64, copy=True))
    r, c = excluded.nonzero()
    s[r, c] = -np.inf
    part = np.argpartition(-s, kth=min(k, s.shape[1] - 1), axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def tie_metrics(ranks: np.ndarray, tied: np.ndarray, k: int) -> dict[str, float]:
    """HR@k/NDCG@k over the untied and the tied users separately, and the tied count.

    A group without users has no keys (rather than NaN, which strict JSON readers refuse).
    """
    out: dict[str, float] = {"n_tied_users": int(tied.sum())}
    for label, mask in (("untied", ~tied), ("tied", tied)):
        if mask.any():
            part = rank_metrics(ranks[mask], k)
            out.update({f"hr@{k}_{label}": part[f"hr@{k}"], f"ndcg@{k}_{label}": part[f"ndcg@{k}"]})
    return out


def evaluate(model: BatchScorer, split: Split, stage: str = "valid", *, batch_size: int = 512,
             full_only: bool = False, users: Sequence[int] | None = None, k: int = K) -> dict[str, float]:
    """Metrics of a fitted model on the split's 'valid' or 'test' targets."""
    if stage not in ("valid", "test"):
        raise ValueError(f"stage must be 'valid' or 'test', not {stage!r}")
    eval_users = split.eval_users(stage) if users is None else np.asarray(users, np.int64)
    targets_all = split.valid_item if stage == "valid" else split.test_item
    full, sampled, tops = [], [], []
    for start in range(0, len(eval_users), batch_size):
        batch = eval_users[start : start + batch_size]
        scores = np.asarray(model.score_batch(split.contexts(stage, batch)), dtype=np.float32)
        if scores.shape != (len(batch), split.n_items):
            raise ValueError(f"{type(model).__name__}.score_batch returned {scores.shape}, "
                             f"expected {(len(batch), split.n_items)}")
        targets = targets_all[batch]
        excluded = _excluded(split, stage, batch)
        full.append(ranks_full(scores, targets, excluded))
        if not full_only:
            sampled.append(ranks_sampled(scores, targets, split.sampled_negatives[batch]))
            tops.append(top_k(scores, excluded))
    ranks = np.concatenate(full)
    out = rank_metrics(ranks, k)
    out.update(tie_metrics(ranks, split.tied(stage)[eval_users], k))
    if not full_only:
        out.update({f"sampled_{name}": v for name, v in rank_metrics(np.concatenate(sampled), k).items()})
        out.update(beyond_accuracy(np.concatenate(tops), split.train))
    out["n_users"] = int(len(eval_users))
    return out
