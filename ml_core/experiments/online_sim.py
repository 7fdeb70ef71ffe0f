"""Online experiments in the simulated world: fixed-split A/B runs judged by the always-valid test, and Thompson
allocation against a uniform split (regret). Lists are drawn from each policy's Plackett-Luce pool exactly as the
engine draws them (the pools come from :mod:`ml_core.serving.policy`), clicks from the true model."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..ranking import plackett_luce_sample
from .stats import ArmStats, cuped_arms, msprt_monitor, thompson_allocation


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


def position(experiment: str, member: int) -> float:
    """A member's fixed place in [0, 1) for one experiment: blake2b(experiment:member) as a fraction."""
    digest = hashlib.blake2b(f"{experiment}:{member}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def bucket(experiment: str, member: int, shares: np.ndarray) -> int:
    """Deterministic arm of a member: their position cut by the shares (the arms own consecutive intervals), as
    the experiments app assigns members; when shares move, only members where the intervals moved change arm."""
    return int(np.searchsorted(np.cumsum(shares) / np.sum(shares), position(experiment, member), side="right"))


# the analysis unit: one value per member (what the experiments app computes), the same with CUPED on each member's
# pre-experiment clicks per list, and every list as a unit (the naive, wrong one)
UNITS = ("member", "member+CUPED", "list")


def _member_values(members: np.ndarray, clicks: np.ndarray, ends: np.ndarray, n_members: int
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """At each look: (members seen so far, each one's clicks per list so far)."""
    sums, counts, prev, out = np.zeros(n_members), np.zeros(n_members), 0, []
    for e in ends.tolist():
        sums += np.bincount(members[prev:e], weights=clicks[prev:e], minlength=n_members)
        counts += np.bincount(members[prev:e], minlength=n_members)
        prev = e
        seen = np.flatnonzero(counts > 0)
        out.append((seen, sums[seen] / counts[seen]))
    return out


def _looks(arms: list[tuple[np.ndarray, np.ndarray]], ends: np.ndarray, unit: str, n_members: int,
           pre: np.ndarray | None) -> list[tuple[ArmStats, ArmStats]]:
    """(control, treatment) statistics at each look for one analysis unit."""
    if unit == "list":
        stats = []
        for _, clicks in arms:
            c1, c2 = np.cumsum(clicks), np.cumsum(clicks ** 2)
            stats.append([ArmStats(int(e), float(c1[e - 1]), float(c2[e - 1])) for e in ends.tolist()])
        return list(zip(stats[0], stats[1], strict=True))
    series = [_member_values(m, c, ends, n_members) for m, c in arms]
    out = []
    for (seen_c, v_c), (seen_t, v_t) in zip(series[0], series[1], strict=True):
        if unit == "member" or pre is None:
            out.append((ArmStats.from_values(v_c), ArmStats.from_values(v_t)))
        else:
            (c, t), _ = cuped_arms([v_c, v_t], [pre[seen_c], pre[seen_t]])
            out.append((c, t))
    return out


def _decision(arms: list[tuple[np.ndarray, np.ndarray]], ends: np.ndarray, unit: str, n_members: int,
              pre: np.ndarray | None = None) -> tuple[int | None, float, float]:
    """(first look index at which the monitored mSPRT rejects, or None; the difference then; the difference at the
    last look) for arms [(members, clicks), (members, clicks)]; ``pre``: each member's pre-period value (CUPED)."""
    looks = _looks(arms, ends, unit, n_members, pre)
    series = msprt_monitor(looks, binary=False)
    first = next((j for j, t in enumerate(series) if t.reject), None)
    return first, (series[first].difference if first is not None else 0.0), series[-1].difference


def ab_study(world: Any, cfg: Any, policies: list[Any], tables: np.ndarray, truths: np.ndarray, dr: np.ndarray
             ) -> dict[str, Any]:
    """Control = the logging policy, treatment = the candidate with the best DR estimate; 50/50 by member hash.

    Each run monitors the mSPRT every ``ab_look_every`` lists per arm; the winner is the arm the test declares
    better at its first rejection. Accuracy at horizon N = share of runs that declared the truly better arm by N
    lists per arm (undecided runs count as misses). Each run has an A/A twin (the same split, the control policy on
    both sides) whose rejections are false positives. Both analysis units of :data:`UNITS` are reported."""
    control, treatment = 0, int(np.argmax(dr[1:]) + 1)
    arms = (control, treatment)
    better = treatment if truths[treatment] > truths[control] else control
    pools = Pools(tables, world.attract)
    n_members = len(world.contexts)
    sizes = sorted(cfg.ab_sizes)
    ends = np.arange(cfg.ab_look_every, sizes[-1] + 1, cfg.ab_look_every)
    # per unit and run: (lists per arm at the decision, whether it named the better arm, A/A twin's decision, signs)
    outcome: dict[str, list[tuple[int | None, bool, int | None, list[bool]]]] = {u: [] for u in UNITS}
    for run in range(cfg.ab_runs):
        rng = np.random.default_rng([cfg.seed, 11, run])
        side = np.asarray([bucket(f"ab-{cfg.seed}-{run}", m, np.array([0.5, 0.5])) for m in range(n_members)])
        # the pre-experiment period: every member gets ab_pre_lists lists from the control policy
        pre_members = np.repeat(np.arange(n_members), cfg.ab_pre_lists)
        pre_clicks = pools.clicks(control, pre_members, policies[control].temperature, world.exam, rng)
        pre = np.bincount(pre_members, weights=pre_clicks, minlength=n_members) / cfg.ab_pre_lists
        served, twin = [], []
        for a, policy in enumerate(arms):
            members = rng.choice(np.flatnonzero(side == a), sizes[-1])
            served.append((members, pools.clicks(policy, members, policies[policy].temperature, world.exam, rng)))
            twin.append((members, pools.clicks(control, members, policies[control].temperature, world.exam, rng)))
        for unit in UNITS:
            first, diff, _ = _decision(served, ends, unit, n_members, pre)
            signs = [(_decision([(m[:n], c[:n]) for m, c in served], ends[ends <= n][-1:], unit, n_members,
                                pre)[2] > 0) == (better == treatment) for n in sizes]
            aa_first = _decision(twin, ends, unit, n_members, pre)[0]
            outcome[unit].append((int(ends[first]) if first is not None else None,
                                  (diff > 0) == (better == treatment),
                                  int(ends[aa_first]) if aa_first is not None else None, signs))
    rows = []
    for s, n in enumerate(sizes):
        row: dict[str, Any] = {"lists_per_arm": n}
        for unit in UNITS:
            runs = outcome[unit]
            decided = [right for t, right, _, _ in runs if t is not None and t <= n]
            row[unit] = {"correct": sum(decided) / cfg.ab_runs, "wrong": (len(decided) - sum(decided)) / cfg.ab_runs,
                         "aa_false_positive": sum(a is not None and a <= n for _, _, a, _ in runs) / cfg.ab_runs,
                         "sign_correct": float(np.mean([f[s] for _, _, _, f in runs]))}
            row[unit]["undecided"] = 1 - row[unit]["correct"] - row[unit]["wrong"]
        rows.append(row)
    stops = {u: [t for t, _, _, _ in outcome[u] if t is not None] for u in UNITS}
    return {"control": policies[control].name, "treatment": policies[treatment].name,
            "truth_control": float(truths[control]), "truth_treatment": float(truths[treatment]),
            "dr_treatment": float(dr[treatment]), "better": policies[better].name, "runs": cfg.ab_runs,
            "look_every": cfg.ab_look_every, "rows": rows, "n_members": n_members, "pre_lists": cfg.ab_pre_lists,
            "median_stop": {u: float(np.median(t)) if t else None for u, t in stops.items()}}


def thompson_study(world: Any, cfg: Any, policies: list[Any], tables: np.ndarray, truths: np.ndarray,
                   dr: np.ndarray) -> dict[str, Any]:
    """K arms (logging policy, DR's best, DR's median and worst candidates): Thompson (floor per arm) against a
    uniform split, both in batches. As in the experiments app, members keep a fixed position and the arms own
    intervals as wide as the current shares (re-computed after each batch from member-level statistics); regret
    per list = best arm's true value - the served arm's true value."""
    order = np.argsort(dr[1:]) + 1
    arms = list(dict.fromkeys([0, int(order[-1]), int(order[len(order) // 2]), int(order[0])]))[: cfg.ts_arms]
    values = truths[arms]
    best = float(values.max())
    pools = Pools(tables, world.attract)
    n_members = len(world.contexts)
    n_batches = cfg.ts_horizon // cfg.ts_batch
    curves: dict[str, np.ndarray] = {}
    final_share: dict[str, float] = {}
    k = len(arms)
    for strategy in ("thompson", "uniform"):
        regret = np.zeros((cfg.ts_runs, n_batches))
        last_share = []
        for run in range(cfg.ts_runs):
            rng = np.random.default_rng([cfg.seed, 13, run])
            u = np.asarray([position(f"ts-{cfg.seed}-{run}", m) for m in range(n_members)])
            sums, counts = np.zeros((k, n_members)), np.zeros((k, n_members))
            for t in range(n_batches):
                if strategy == "thompson":  # on member-level statistics, as the experiments app's monitor does
                    stats = [ArmStats.from_values(sums[a][counts[a] > 0] / counts[a][counts[a] > 0])
                             for a in range(k)]
                    shares = thompson_allocation(stats, binary=False, floor=cfg.ts_floor, seed=run * 100_003 + t)
                else:
                    shares = np.full(k, 1 / k)
                arm_of = np.minimum(np.searchsorted(np.cumsum(shares) / shares.sum(), u, side="right"), k - 1)
                members = rng.integers(0, n_members, cfg.ts_batch)
                drawn = arm_of[members]
                for a, policy in enumerate(arms):
                    sel = drawn == a
                    if sel.any():
                        c = pools.clicks(policy, members[sel], policies[policy].temperature, world.exam, rng)
                        sums[a] += np.bincount(members[sel], weights=c, minlength=n_members)
                        counts[a] += np.bincount(members[sel], minlength=n_members)
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
