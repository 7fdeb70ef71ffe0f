"""Online experiments in the simulated world: fixed-split A/B runs judged by the always-valid test, and Thompson
allocation against a uniform split (regret). Lists are drawn from each policy's Plackett-Luce pool exactly as the
engine draws them (the pools come from :mod:`ml_core.experiments.policy`), clicks from the true model."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..ranking import plackett_luce_sample
from .stats import ArmStats, msprt_monitor, thompson_allocation


class Pools:
    """Each policy's pool per member, compressed to the pool's items: (n_policies, n_members, P)."""

    def __init__(self, tables: np.ndarray, attract: np.ndarray) -> None:
        width = int(np.isfinite(tables).sum(-1).max())
        order = np.argsort(-tables, axis=-1, kind="stable")[..., :width]
        self.scores = np.take_along_axis(tables, order, axis=-1)
        self.attract = np.take_along_axis(np.broadcast_to(attract[None], tables.shape), order, axis=-1)

    def clicks(self, policy: int, members: np.ndarray, temperature: float, exam: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
        """Clicks per list (n,) for lists served to ``members`` by ``policy``."""
        slates = plackett_luce_sample(self.scores[policy, members], len(exam), temperature, rng)
        p = np.where(slates >= 0, np.take_along_axis(self.attract[policy, members], np.clip(slates, 0, None), 1), 0.0)
        clicks: np.ndarray = (rng.random(p.shape) < p * exam[None]).sum(1).astype(np.float64)
        return clicks


def bucket(experiment: str, member: int, shares: np.ndarray) -> int:
    """Deterministic arm of a member: blake2b(experiment:member) as a uniform number in [0, 1), cut by the shares."""
    digest = hashlib.blake2b(f"{experiment}:{member}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2 ** 64
    return int(np.searchsorted(np.cumsum(shares) / np.sum(shares), u, side="right"))


def _stats_at(values: np.ndarray, ends: np.ndarray) -> list[ArmStats]:
    c1, c2 = np.cumsum(values), np.cumsum(values ** 2)
    return [ArmStats(int(e), float(c1[e - 1]), float(c2[e - 1])) for e in ends.tolist()]


def _first_rejection(values: list[np.ndarray], ends: np.ndarray) -> int | None:
    """Index of the first look at which the monitored mSPRT rejects equal means (None: it never does)."""
    looks = list(zip(_stats_at(values[0], ends), _stats_at(values[1], ends), strict=True))
    return next((j for j, t in enumerate(msprt_monitor(looks, binary=False)) if t.reject), None)


def ab_study(world: Any, cfg: Any, policies: list[Any], tables: np.ndarray, truths: np.ndarray, dr: np.ndarray
             ) -> dict[str, Any]:
    """Control = the logging policy, treatment = the candidate with the best DR estimate; 50/50 by member hash.

    Each run monitors the mSPRT every ``ab_look_every`` lists per arm; the winner is the arm the test declares
    better at its first rejection. Accuracy at horizon N = share of runs that declared the truly better arm by N
    lists per arm (undecided runs count as misses). Each run has an A/A twin (the same split, the control policy on
    both sides) whose rejections are false positives."""
    control, treatment = 0, int(np.argmax(dr[1:]) + 1)
    arms = (control, treatment)
    better = treatment if truths[treatment] > truths[control] else control
    pools = Pools(tables, world.attract)
    n_members = len(world.contexts)
    n_max = max(cfg.ab_sizes)
    ends = np.arange(cfg.ab_look_every, n_max + 1, cfg.ab_look_every)
    stop_at, winner, fixed_right, aa_stop = [], [], [], []
    for run in range(cfg.ab_runs):
        rng = np.random.default_rng([cfg.seed, 11, run])
        side = np.asarray([bucket(f"ab-{cfg.seed}-{run}", m, np.array([0.5, 0.5])) for m in range(n_members)])
        values, same = [], []
        for a, policy in enumerate(arms):
            members = rng.choice(np.flatnonzero(side == a), n_max)
            values.append(pools.clicks(policy, members, policies[policy].temperature, world.exam, rng))
            # the A/A twin: the same split, both halves served by the control policy
            same.append(pools.clicks(control, members, policies[control].temperature, world.exam, rng))
        first = _first_rejection(values, ends)
        stop_at.append(int(ends[first]) if first is not None else None)
        diff = values[1][: ends[first]].mean() - values[0][: ends[first]].mean() if first is not None else 0.0
        winner.append(None if first is None else (treatment if diff > 0 else control))
        fixed_right.append([bool((values[1][:n].mean() > values[0][:n].mean()) == (better == treatment))
                            for n in cfg.ab_sizes])
        aa_first = _first_rejection(same, ends)
        aa_stop.append(int(ends[aa_first]) if aa_first is not None else None)
    rows = []
    for s, n in enumerate(cfg.ab_sizes):
        decided = [w for w, t in zip(winner, stop_at, strict=True) if t is not None and t <= n]
        rows.append({"lists_per_arm": n, "correct": sum(w == better for w in decided) / cfg.ab_runs,
                     "wrong": sum(w != better for w in decided) / cfg.ab_runs,
                     "undecided": 1 - len(decided) / cfg.ab_runs,
                     "aa_false_positive": sum(t is not None and t <= n for t in aa_stop) / cfg.ab_runs,
                     "fixed_horizon_sign_correct": float(np.mean([f[s] for f in fixed_right]))})
    stops = [t for t in stop_at if t is not None]
    return {"control": policies[control].name, "treatment": policies[treatment].name,
            "truth_control": float(truths[control]), "truth_treatment": float(truths[treatment]),
            "dr_treatment": float(dr[treatment]), "better": policies[better].name, "runs": cfg.ab_runs,
            "look_every": cfg.ab_look_every, "rows": rows,
            "median_stop": float(np.median(stops)) if stops else None}


def thompson_study(world: Any, cfg: Any, policies: list[Any], tables: np.ndarray, truths: np.ndarray,
                   dr: np.ndarray) -> dict[str, Any]:
    """K arms (logging policy, DR's best, DR's median and worst candidates): Thompson (floor per arm) against a
    uniform split, both in batches; regret per list = best arm's true value - the served arm's true value."""
    order = np.argsort(dr[1:]) + 1
    arms = list(dict.fromkeys([0, int(order[-1]), int(order[len(order) // 2]), int(order[0])]))[: cfg.ts_arms]
    values = truths[arms]
    best = float(values.max())
    pools = Pools(tables, world.attract)
    n_members = len(world.contexts)
    n_batches = cfg.ts_horizon // cfg.ts_batch
    curves: dict[str, np.ndarray] = {}
    final_share: dict[str, float] = {}
    for strategy in ("thompson", "uniform"):
        regret = np.zeros((cfg.ts_runs, n_batches))
        last_share = []
        for run in range(cfg.ts_runs):
            rng = np.random.default_rng([cfg.seed, 13, run])
            n, total, total_sq = np.zeros(len(arms)), np.zeros(len(arms)), np.zeros(len(arms))
            for t in range(n_batches):
                if strategy == "thompson":
                    shares = thompson_allocation([ArmStats(int(a), b, c) for a, b, c in zip(n, total, total_sq,
                                                                                           strict=True)],
                                                 binary=False, floor=cfg.ts_floor, seed=run * 100_003 + t)
                else:
                    shares = np.full(len(arms), 1 / len(arms))
                drawn = rng.choice(len(arms), cfg.ts_batch, p=shares)
                members = rng.integers(0, n_members, cfg.ts_batch)
                for a, policy in enumerate(arms):
                    sel = drawn == a
                    if sel.any():
                        c = pools.clicks(policy, members[sel], policies[policy].temperature, world.exam, rng)
                        n[a], total[a], total_sq[a] = n[a] + len(c), total[a] + c.sum(), total_sq[a] + (c * c).sum()
                regret[run, t] = (best - values[drawn]).sum()
            last_share.append(float(shares[int(np.argmax(values))]))
        curves[strategy] = np.cumsum(regret, axis=1)
        final_share[strategy] = float(np.mean(last_share))
    x = (np.arange(n_batches) + 1) * cfg.ts_batch
    return {"arms": [policies[a].name for a in arms], "truths": values.tolist(), "best": best,
            "lists": x.tolist(), "batch": cfg.ts_batch, "runs": cfg.ts_runs, "floor": cfg.ts_floor,
            "regret_mean": {s: c.mean(0).tolist() for s, c in curves.items()},
            "regret_p10": {s: np.quantile(c, 0.1, axis=0).tolist() for s, c in curves.items()},
            "regret_p90": {s: np.quantile(c, 0.9, axis=0).tolist() for s, c in curves.items()},
            "final_regret": {s: float(c[:, -1].mean()) for s, c in curves.items()},
            "final_best_share": final_share}
