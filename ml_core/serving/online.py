"""Online learning from live events: user sequences, popularity/propensity counters, bounded SGD on the ranker.

Plain values in, plain values out (no Django): the app maps its events to :class:`OnlineEvent`
(item *indices* of the serving vocabulary) and stores the bytes of :meth:`OnlineLearningCoordinator.state_bytes`.

Guardrails, each logged: the learning rate is clipped to ``[min_learning_rate, max_learning_rate]``;
events with non-finite values are dropped; an SGD step whose loss, gradients or resulting parameters
are not finite is undone; and when a held-out check (hit rate of held-out positives among fixed
sampled negatives), run every ``holdout_every`` steps, drops by more than ``rollback_drop``, every step
since the last passed check is rolled back.

The SGD step and the check can run after the caller has pushed the refreshed lists (``apply(events,
defer=True)``, then :meth:`OnlineLearningCoordinator.learn_deferred`). Until a check passes,
:meth:`~OnlineLearningCoordinator.state_bytes` publishes the last *checked* ranker weights under ``ranker.*``
(what serving workers load) and carries the unchecked ones under ``pending.*``, and the examples still queued
for a step under ``queued.*``, for the next learner only: an update that fails the check is never published,
and a queued step is taken exactly once, by whichever learner stores the state that follows.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..interface import OnlineRanker, Recommender, UserContext

logger = logging.getLogger(__name__)

POSITIVE_KINDS = ("click", "rating", "watch", "watchlist")
KIND_WEIGHT = {"impression": 0.0, "click": 1.0, "rating": 1.0, "watch": 1.0, "watchlist": 1.0}
MAX_POSITION = 100


@dataclass(frozen=True)
class OnlineConfig:
    """Online learner settings."""

    learning_rate: float = 1e-3  # requested SGD step size for the ranker
    min_learning_rate: float = 1e-5  # guardrail: step size is clipped into [min, max]
    max_learning_rate: float = 1e-2
    max_len: int = 200  # longest per-user sequence kept
    positive_rating: float = 3.5  # ratings at or above this are positives for the ranker
    rollback_drop: float = 0.05  # roll back when held-out hit rate drops more than this (absolute)
    holdout_k: int = 10  # held-out check: hit if the positive ranks in the top k of its candidates
    holdout_every: int = 1  # run the held-out check every n-th step; a failed check undoes all unchecked steps
    holdout_negatives: int = 99  # sampled negatives per held-out positive (fixed seed)
    seed: int = 0


@dataclass(frozen=True)
class OnlineEvent:
    """One applied interaction; ``item`` is the serving vocabulary index (-1: unknown to the models)."""

    event_id: str
    user: int
    item: int
    kind: str
    value: float | None
    time: float  # unix seconds
    propensity: float | None = None
    position: int | None = None


@dataclass
class OnlineUpdate:
    """What one mini-batch did (stored with the checkpoint, shown in admin/logs)."""

    version: int
    applied: int = 0
    dropped_non_finite: int = 0
    unknown_items: int = 0
    sgd_examples: int = 0
    learning_rate: float = 0.0
    learning_rate_clipped: bool = False
    loss: float | None = None
    rejected_non_finite: bool = False
    holdout_before: float | None = None
    holdout_after: float | None = None
    rolled_back: bool = False
    users: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PublishedState:
    """What serving takes from a learner: the live interaction counts and the last *checked* ranker weights.

    ``base`` and ``n_items`` name what it was learned on (the serving bundle); the engine refuses other ones.
    """

    version: int
    base: str
    n_items: int
    item_counts: np.ndarray
    ranker_weights: dict[str, np.ndarray]


def read_published_state(blob: bytes, version: int | None = None) -> PublishedState:
    """The published part of stored learner state bytes (``OnlineLearningCoordinator.state_bytes()``)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        meta = json.loads(archive["meta"].tobytes())
        counts = np.array(archive["item_counts"], np.float64)
        ranker = {k[len("ranker."):]: np.array(archive[k]) for k in archive.files if k.startswith("ranker.")}
    return PublishedState(version=int(meta["version"]) if version is None else int(version),
                          base=str(meta.get("base", "")), n_items=int(meta["n_items"]), item_counts=counts,
                          ranker_weights=ranker)


@dataclass(frozen=True)
class Holdout:
    """Held-out (context, positive, candidates) triples for the rollback check."""

    contexts: list[UserContext]
    candidates: np.ndarray  # (n, 1 + negatives) int64, column 0 the positive

    @classmethod
    def build(cls, contexts: Sequence[UserContext], positives: Sequence[int], n_items: int,
              negatives: int = 99, seed: int = 0) -> Holdout:
        rng = np.random.default_rng(seed)
        rows = []
        for ctx, pos in zip(contexts, positives, strict=True):
            banned = set(int(i) for i in ctx.history) | {int(pos)}
            pool = np.setdiff1d(np.arange(n_items), np.fromiter(banned, np.int64))
            rows.append(np.concatenate([[pos], rng.choice(pool, size=min(negatives, len(pool)), replace=False)]))
        return cls(list(contexts), np.asarray(rows, np.int64).reshape(len(rows), -1))


class OnlineLearningCoordinator:
    """Applies mini-batches of events to the serving state; one instance per worker process."""

    def __init__(self, *, n_items: int, ranker: Any = None, config: OnlineConfig | None = None,
                 holdout: Holdout | None = None, item_counts: np.ndarray | None = None, base: str = "") -> None:
        self.config = config or OnlineConfig()
        self.n_items = n_items
        self.base = base  # what the state was learned on (e.g. the serving bundle version); must match to load
        self.ranker = ranker if isinstance(ranker, OnlineRanker) and ranker.net is not None else None
        self.holdout = holdout
        self.version = 0
        self.item_counts = (np.zeros(n_items, np.float64) if item_counts is None
                            else np.asarray(item_counts, np.float64).copy())
        self.impressions = np.zeros(n_items, np.float64)
        self.clicks = np.zeros(n_items, np.float64)
        self.propensity_sum = np.zeros(n_items, np.float64)
        self.position_impressions = np.zeros(MAX_POSITION + 1, np.float64)
        self.position_clicks = np.zeros(MAX_POSITION + 1, np.float64)
        self.sequences: dict[int, list[tuple[int, float]]] = {}
        self._holdout_score: float | None = None  # held-out score of the last checked (accepted) state
        self._checked_state: dict[str, np.ndarray] | None = None  # ranker state at the last passed check
        self._unchecked_steps = 0
        self.learner_state = True  # False when only the published part of a state with pending work was loaded
        self._queued: list[tuple[UserContext, int]] = []  # SGD examples of deferred applies, not stepped yet
        self._holdout_features: tuple[Any, Any, np.ndarray] | None = None  # (holdout, feature builder, features)

    # --- per-user sequence state ----------------------------------------------------------
    def seed_user(self, user: int, history: Sequence[int], times: Sequence[float] | None = None) -> None:
        """Give the coordinator a user's stored history (oldest first) before applying their new events."""
        stamps = list(times) if times is not None else [0.0] * len(history)
        self.sequences[user] = [(int(i), float(t)) for i, t in zip(history, stamps, strict=True)][-self.config.max_len:]

    def has_user(self, user: int) -> bool:
        return user in self.sequences

    def user_context(self, user: int, now: float | None = None) -> UserContext:
        """The user's current sequence as the serving models read it."""
        seq = self.sequences.get(user, [])
        return UserContext(history=[i for i, _ in seq], times=[t for _, t in seq], now=now)

    # --- applying a mini-batch ---------------------------------------------------------------
    def apply(self, events: Sequence[OnlineEvent], *, defer: bool = False) -> OnlineUpdate:
        """Update sequences and counters, then take one guarded SGD step on the ranker; bumps the version.

        With ``defer=True`` the SGD examples are queued and the step (with a due held-out check) waits for
        :meth:`learn_deferred`, so the caller can push the refreshed lists first.
        """
        report = OnlineUpdate(version=self.version + 1)
        contexts: list[UserContext] = []
        positives: list[int] = []
        for event in sorted(events, key=lambda e: e.time):
            if (event.value is not None and not math.isfinite(event.value)) or not math.isfinite(event.time):
                report.dropped_non_finite += 1
                logger.warning("online: dropped event %s with a non-finite value/time", event.event_id)
                continue
            report.applied += 1
            if not 0 <= event.item < self.n_items:
                report.unknown_items += 1
                continue
            if self._is_positive(event):
                contexts.append(self.user_context(event.user, now=event.time))
                positives.append(event.item)
            self._count(event)
            if event.kind != "impression":
                seq = self.sequences.setdefault(event.user, [])
                seq.append((event.item, event.time))
                del seq[: -self.config.max_len]
        report.users = sorted({e.user for e in events})
        usable = [i for i, c in enumerate(contexts) if len(c.history)]
        if self.ranker is not None and usable and defer:
            self._queued.extend((contexts[i], positives[i]) for i in usable)
        elif self.ranker is not None and usable:
            self._sgd_step([contexts[i] for i in usable], [positives[i] for i in usable], report)
        self.version = report.version
        return report

    def _is_positive(self, event: OnlineEvent) -> bool:
        if event.kind == "rating":
            return event.value is not None and event.value >= self.config.positive_rating
        if event.kind == "watch":
            return (event.value if event.value is not None else 1.0) >= 0.5
        if event.kind == "watchlist":
            return (event.value if event.value is not None else 1.0) > 0
        return event.kind == "click"

    def _count(self, event: OnlineEvent) -> None:
        self.item_counts[event.item] += KIND_WEIGHT.get(event.kind, 0.0) if self._is_positive(event) else 0.0
        pos = min(event.position, MAX_POSITION) if event.position is not None else None
        if event.kind == "impression":
            self.impressions[event.item] += 1
            self.propensity_sum[event.item] += event.propensity or 0.0
            if pos is not None:
                self.position_impressions[pos] += 1
        elif event.kind == "click":
            self.clicks[event.item] += 1
            if pos is not None:
                self.position_clicks[pos] += 1

    def _sgd_step(self, contexts: list[UserContext], positives: list[int], report: OnlineUpdate) -> None:
        cfg, ranker = self.config, self.ranker
        assert ranker is not None, "an SGD step needs an online ranker"
        lr = min(max(cfg.learning_rate, cfg.min_learning_rate), cfg.max_learning_rate)
        if lr != cfg.learning_rate:
            logger.warning("online: learning rate %g clipped to %g", cfg.learning_rate, lr)
        report.learning_rate, report.learning_rate_clipped = lr, lr != cfg.learning_rate
        if hasattr(ranker.config, "online_learning_rate"):
            ranker.config = dataclasses.replace(ranker.config, online_learning_rate=lr)
        snapshot = self._ranker_state()
        if self._checked_state is None:
            self._checked_state = snapshot
        report.holdout_before = self.holdout_score()
        loss = float(ranker.partial_fit(contexts, positives))
        report.sgd_examples = len(contexts)
        report.loss = loss if math.isfinite(loss) else None
        if not math.isfinite(loss) or not all(np.isfinite(v).all() for v in self._ranker_state().values()):
            report.rejected_non_finite = True
            self._load_ranker_state(snapshot)
            logger.warning("online: rejected a non-finite update (loss=%s); parameters kept", loss)
            return
        self._unchecked_steps += 1
        if not self.check_due:
            logger.info("online: v%d applied %d examples, loss %.4f (held-out check in %d steps)", report.version,
                        len(contexts), loss, cfg.holdout_every - self._unchecked_steps)
            return
        self._check(report)

    @property
    def check_due(self) -> bool:
        """True when ``holdout_every`` SGD steps are waiting for the held-out check."""
        return self.ranker is not None and self._unchecked_steps >= max(self.config.holdout_every, 1)

    @property
    def deferred_work(self) -> bool:
        """True when queued SGD examples or a due held-out check wait for :meth:`learn_deferred`."""
        return self.ranker is not None and (bool(self._queued) or self.check_due)

    def learn_deferred(self) -> OnlineUpdate | None:
        """One guarded SGD step over the queued examples, then the held-out check if due (keep the unchecked
        steps, or roll all of them back); None when nothing was waiting. The version is unchanged."""
        if not self.deferred_work:
            return None
        report = OnlineUpdate(version=self.version)
        queued, self._queued = self._queued, []
        if queued:
            self._sgd_step([c for c, _ in queued], [p for _, p in queued], report)
        if self.check_due:  # steps loaded with the state, or a step rejected as non-finite after earlier ones
            self._check(report)
        return report

    def _check(self, report: OnlineUpdate) -> None:
        """Held-out check of the steps since the last one: keep them, or roll all of them back."""
        cfg = self.config
        before = self.holdout_score()
        after = self._score_holdout()
        report.holdout_before, report.holdout_after = before, after
        if before is not None and after is not None and before - after > cfg.rollback_drop:
            report.rolled_back = True
            self._load_ranker_state(self._checked_state or {})
            logger.warning("online: rolled back %d step(s), held-out hit@%d fell %.3f -> %.3f (limit %.3f)",
                           self._unchecked_steps, cfg.holdout_k, before, after, cfg.rollback_drop)
        else:
            self._checked_state = self._ranker_state()
            self._holdout_score = after
            logger.info("online: v%d checked, held-out %s -> %s", report.version, before, after)
        self._unchecked_steps = 0

    def holdout_score(self) -> float | None:
        """Held-out hit rate @k of the last checked (accepted) ranker state, cached until the next check;
        None without a holdout."""
        if self._holdout_score is None:
            unchecked = self._checked_state if self._unchecked_steps else None
            self._holdout_score = self._score_holdout(unchecked)
        return self._holdout_score

    def _score_holdout(self, state: dict[str, np.ndarray] | None = None) -> float | None:
        """Held-out hit rate @k of the ranker's current weights (or of ``state``, leaving the ranker as it is)."""
        if self.ranker is None or self.holdout is None or not self.holdout.contexts:
            return None
        scores = np.nan_to_num(self._holdout_scores(state), nan=-np.inf)
        ranks = (scores[:, 1:] > scores[:, :1]).sum(axis=1)
        return float(np.mean(ranks < self.config.holdout_k))

    def _holdout_scores(self, state: dict[str, np.ndarray] | None) -> np.ndarray:
        """(n, candidates) scores: one forward pass over cached candidate features when the ranker has a
        feature builder (the KAN ranker), else the ranker's own scoring."""
        import torch

        ranker: Any = self.ranker
        holdout = self.holdout
        assert ranker is not None and holdout is not None, "the held-out check needs a ranker and a holdout"
        features = self._cached_holdout_features()
        if features is not None:
            net = ranker.net
            flat = torch.from_numpy(features.reshape(-1, features.shape[-1]))
            net.eval()
            with torch.no_grad():
                if state:
                    params = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}
                    out = torch.func.functional_call(net, params, (flat,))
                else:
                    out = net(flat)
            scores = out.reshape(features.shape[:2]).numpy().astype(np.float32)
            scores[[not self._known(c.history) for c in holdout.contexts]] = np.nan  # as ranker.score()
            return np.asarray(scores, np.float32)
        current = self._ranker_state() if state else None
        try:
            if state:
                self._load_ranker_state(state)
            ctxs, cands = holdout.contexts, holdout.candidates
            if isinstance(ranker, Recommender):  # score_batch: one batched pass
                full = np.asarray(ranker.score_batch(ctxs), np.float32)
                return np.asarray(np.take_along_axis(full, cands, axis=1), np.float32)
            return np.stack([ranker.score(c.history, row, times=c.times, now=c.now)
                             for c, row in zip(ctxs, cands, strict=True)])
        finally:
            if current:
                self._load_ranker_state(current)

    def _known(self, history: Sequence[int]) -> bool:
        return any(0 <= int(i) < self.n_items for i in history)

    def _cached_holdout_features(self) -> np.ndarray | None:
        """(n, candidates, F) features of the held-out candidates, built once per holdout and feature builder
        (they do not depend on the ranker's weights); None when the ranker has no feature builder."""
        builder: Any = getattr(self.ranker, "features", None)
        holdout = self.holdout
        if holdout is None or not callable(getattr(builder, "features", None)):
            return None
        cached = self._holdout_features
        if cached is None or cached[0] is not holdout or cached[1] is not builder:
            rows = [builder.features([ctx], row)[0] for ctx, row in
                    zip(holdout.contexts, holdout.candidates, strict=True)]
            cached = (holdout, builder, np.ascontiguousarray(np.stack(rows), dtype=np.float32))
            self._holdout_features = cached
        return cached[2]

    # --- outputs the serving side reads ------------------------------------------------------
    def popularity_scores(self) -> np.ndarray:
        """log(1 + count) per item, the same scale as the Popularity model's scores."""
        return np.log1p(self.item_counts).astype(np.float32)

    def propensity_estimates(self) -> np.ndarray:
        """Smoothed exposure share per item from logged impressions (uniform before any impression)."""
        return np.asarray((self.impressions + 1.0) / (self.impressions.sum() + self.n_items), np.float32)

    def position_ctr(self) -> np.ndarray:
        """Click-through rate by position (the position-bias curve), smoothed."""
        return ((self.position_clicks + 0.1) / (self.position_impressions + 1.0)).astype(np.float32)

    # --- state: publish and swap in -------------------------------------------------------------
    def _ranker_state(self) -> dict[str, np.ndarray]:
        if self.ranker is None:
            return {}
        return {k: v.detach().cpu().numpy().copy() for k, v in self.ranker.net.state_dict().items()}

    def _load_ranker_state(self, state: dict[str, np.ndarray]) -> None:
        import torch

        if self.ranker is not None and state:
            self.ranker.net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})

    def state_bytes(self) -> bytes:
        """The shareable state (counters + ranker parameters) as an ``.npz`` archive; never pickled.

        ``ranker.*`` holds the weights of the last passed held-out check; steps not checked yet travel
        under ``pending.*`` and examples not stepped yet under ``queued.*``, for the next learner only
        (``load_state_bytes(..., learner=True)``).
        """
        current = self._ranker_state()
        published = self._published_weights(current)
        pending = published is not current
        arrays: dict[str, Any] = {"item_counts": self.item_counts, "impressions": self.impressions, "clicks": self.clicks,
                  "propensity_sum": self.propensity_sum, "position_impressions": self.position_impressions,
                  "position_clicks": self.position_clicks,
                  **{f"ranker.{k}": v for k, v in published.items()},
                  **({f"pending.{k}": v for k, v in current.items()} if pending else {}),
                  **self._queued_arrays()}
        meta = json.dumps({"version": self.version, "n_items": self.n_items, "base": self.base,
                           "unchecked_steps": self._unchecked_steps if pending else 0}).encode()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, meta=np.frombuffer(meta, np.uint8), **arrays)  # counters are mostly zeros
        return buffer.getvalue()

    def published_state(self) -> PublishedState:
        """What serving may take now: the counters and the ranker weights of the last passed check."""
        return PublishedState(version=self.version, base=self.base, n_items=self.n_items,
                              item_counts=self.item_counts.copy(), ranker_weights=self._published_weights())

    def _published_weights(self, current: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The ranker weights serving may load: the last checked ones while steps wait for their check."""
        current = self._ranker_state() if current is None else current
        if self._unchecked_steps and self._checked_state is not None and current:
            return self._checked_state
        return current

    def _queued_arrays(self) -> dict[str, np.ndarray]:
        """The queued SGD examples as flat arrays (histories and times concatenated, with their lengths)."""
        if not self._queued:
            return {}
        ctxs = [c for c, _ in self._queued]
        times = [list(c.times) if c.times is not None else [math.nan] * len(c.history) for c in ctxs]
        return {"queued.lengths": np.array([len(c.history) for c in ctxs], np.int64),
                "queued.history": np.array([i for c in ctxs for i in c.history], np.int64),
                "queued.times": np.array([t for ts in times for t in ts], np.float64),
                "queued.now": np.array([math.nan if c.now is None else c.now for c in ctxs], np.float64),
                "queued.positives": np.array([p for _, p in self._queued], np.int64)}

    @staticmethod
    def _queued_from(arrays: dict[str, np.ndarray]) -> list[tuple[UserContext, int]]:
        if not arrays:
            return []
        ends = np.cumsum(arrays["queued.lengths"])
        starts = ends - arrays["queued.lengths"]
        history, times = arrays["queued.history"].tolist(), arrays["queued.times"].tolist()
        return [(UserContext(history=history[s:e], times=times[s:e], now=None if math.isnan(now) else now), int(p))
                for s, e, now, p in zip(starts.tolist(), ends.tolist(), arrays["queued.now"].tolist(),
                                        arrays["queued.positives"].tolist(), strict=True)]

    def load_state_bytes(self, blob: bytes, version: int | None = None, *, learner: bool = False) -> None:
        """Swap in a published state (another worker's update) without restarting.

        Serving workers take the checked ranker weights; a ``learner`` (the next process to apply events)
        also takes the unchecked steps, still waiting for their held-out check, and the queued SGD examples.
        """
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            meta = json.loads(archive["meta"].tobytes())
            if meta["n_items"] != self.n_items or meta.get("base", "") != self.base:
                raise ValueError(f"online state for {meta['n_items']} items on {meta.get('base')!r}; "
                                 f"this learner has {self.n_items} items on {self.base!r}")
            for name in ("item_counts", "impressions", "clicks", "propensity_sum", "position_impressions",
                         "position_clicks"):
                setattr(self, name, np.array(archive[name], np.float64))
            ranker = {k[len("ranker."):]: archive[k] for k in archive.files if k.startswith("ranker.")}
            pending = {k[len("pending."):]: archive[k] for k in archive.files if k.startswith("pending.")}
            queued = {k: archive[k] for k in archive.files if k.startswith("queued.")}
        self.version = int(meta["version"]) if version is None else version
        self._holdout_score = None  # a new baseline
        self.learner_state = learner or not (pending or queued)
        self._queued = self._queued_from(queued) if learner and self.ranker is not None else []
        if learner and pending and self.ranker is not None:
            self._load_ranker_state(pending)
            self._checked_state = {k: np.array(v) for k, v in ranker.items()}
            self._unchecked_steps = max(int(meta.get("unchecked_steps", 1)), 1)
            return
        self._load_ranker_state(ranker)
        self._checked_state, self._unchecked_steps = None, 0
