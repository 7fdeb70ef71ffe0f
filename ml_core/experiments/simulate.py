"""``python -m ml_core simulate``: members with known true preferences use the real serving engine; the estimators
and tests of :mod:`ml_core.experiments` are scored against the truth, and docs/EXPERIMENTS.md is written.

The world:

* **Truth**: EASE (closed form, lambda 250) fitted on *all* ratings of ml-latest-small. A member's attraction to a
  movie is sigmoid(slope * z + offset), z the member's EASE score standardised over the catalogue; a click on the
  list's slot j happens with probability exam_j * attraction, exam_j = 1 / log2(j + 2) (a position-based model).
* **Serving**: a bundle built by :func:`ml_core.serving_build.build_serving` from the ratings *before* the 80% time
  quantile only (EASE, ItemKNN and popularity; DR weights; retrieval, boosts, MMR, Plackett-Luce as served).
  Members are the users with at least 5 such ratings; a request carries that early history.
* **Logs**: every member asks the :class:`~ml_core.serving.Engine` for ``requests_per_member`` lists at the logging
  temperature; clicks come from the truth. Each candidate policy (weight sets from the ensemble's Dirichlet sampler,
  and temperatures of the bundle's weights) gets its slate distribution from :mod:`ml_core.serving.policy`
  (checked to reproduce the engine's logged propensities) and its true value — expected clicks per list — by
  Monte Carlo over its own slates with the true click probabilities.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..ranking import dirichlet_weights, plackett_luce_propensities, plackett_luce_sample
from .ope import ESTIMATORS, SlateLog, estimate_all

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimConfig:
    """Every knob of the simulation (all of them are printed in the report)."""

    dataset: str = "ml-latest-small"
    min_item_ratings: int = 5  # catalogue: movies with at least this many ratings (keeps EASE's inverse small)
    cut_quantile: float = 0.8  # the bundle sees ratings before this quantile of time; the truth sees all
    min_member_ratings: int = 5
    models: tuple[str, ...] = ("ease", "itemknn", "popularity")
    k: int = 10
    n_candidates: int = 100
    log_temperature: float = 0.25  # ml_core.ranking.DEFAULT_TEMPERATURE
    requests_per_member: int = 8
    n_weight_sets: int = 16  # Dirichlet(1) weight sets (the first is uniform), at the logging temperature
    temperatures: tuple[float, ...] = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)  # of the bundle's weights
    truth_reg: float = 250.0
    attract_slope: float = 1.5
    attract_offset: float = -4.5
    truth_samples: int = 400  # Monte Carlo slates per member for the true value
    dm_samples: int = 64  # Monte Carlo slates per member for the direct method
    ope_repeats: int = 3  # independent logs (the first is the one reported in full) for the error table's spread
    seed: int = 0
    ab_runs: int = 200
    ab_sizes: tuple[int, ...] = (2000, 5000, 10000, 20000, 40000)  # lists per arm (the horizon)
    ab_look_every: int = 250  # lists per arm between two looks of the sequential test
    ab_pre_lists: int = 20  # lists per member before the experiment (CUPED's covariate: their clicks per list)
    ts_arms: int = 4
    ts_horizon: int = 30000
    ts_batch: int = 500
    ts_runs: int = 20
    ts_floor: float = 0.05


@dataclass
class Policy:
    """A candidate serving policy: blend weights over the bundle's models and a Plackett-Luce temperature."""

    name: str
    weights: np.ndarray | None  # None: the bundle's own weights
    temperature: float


@dataclass
class World:
    """The engine, its members, each member's request context and true attraction to every candidate."""

    engine: Any
    histories: list[list[int]]  # movie ids, oldest first
    contexts: list[Any]  # ml_core.serving.policy.RequestContext per member
    attract: np.ndarray  # (n_members, C) true P(click | examined) of each candidate
    exam: np.ndarray  # (k,) examination probability per slot
    features: np.ndarray  # (n_members, C, F) reward-model features (the bundle's normalised scores, popularity)
    bundle_info: dict[str, Any] = field(default_factory=dict)


# ---- the world --------------------------------------------------------------------------------------------
def _catalogue(cfg: SimConfig) -> tuple[Any, Any]:
    """(full data, the early part the bundle sees), restricted to movies with enough ratings."""
    from ..data import interactions_from_arrays, load_dataset

    data = load_dataset(cfg.dataset)
    keep = np.bincount(data.items, minlength=data.n_items)[data.items] >= cfg.min_item_ratings
    raw_items = data.item_vocab.raw_ids[data.items[keep]]
    full = interactions_from_arrays(data.user_vocab.raw_ids[data.users[keep]], raw_items, data.times[keep],
                                    data.ratings[keep], name=f"{data.name}-sim")
    old = data.item_vocab.indices(full.item_vocab.raw_ids)  # compact index -> the dataset's index
    full.item_titles.update({i: data.item_titles[o] for i, o in enumerate(old.tolist()) if o in data.item_titles})
    full.item_genres.update({i: data.item_genres[o] for i, o in enumerate(old.tolist()) if o in data.item_genres})
    full.item_years.update({i: data.item_years[o] for i, o in enumerate(old.tolist()) if o in data.item_years})
    early = full.subset(full.times <= np.quantile(full.times, cfg.cut_quantile))
    return full, early


def _truth_scores(full: Any, reg: float) -> np.ndarray:
    """EASE on every rating: (n_users, n_items) scores x_u B, by user index of ``full``."""
    x = full.matrix().astype(np.float64)
    x.data[:] = 1.0
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += reg
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None]
    b[np.diag_indices_from(b)] = 0.0
    scores: np.ndarray = np.asarray(x @ b)
    return scores


def _bundle(cfg: SimConfig, early: Any, root: Path) -> dict[str, Any]:
    """Build the serving bundle once per configuration and data; later runs reuse it."""
    from ..serving_build import build_serving

    key = hashlib.sha256(json.dumps([early.snapshot()["sha256"], cfg.models, cfg.log_temperature, cfg.seed]
                                    ).encode()).hexdigest()[:16]
    stamp = root / "serving" / "simulation-key.txt"
    if stamp.exists() and stamp.read_text() == key:
        return dict(json.loads((root / "serving" / "ensemble.json").read_text()))
    import torch

    torch.set_num_threads(1)
    summary = build_serving(early, None, root / "serving", names=list(cfg.models), model_root=root / "models",
                            quick=True, onnx=False, seed=cfg.seed, temperature=cfg.log_temperature)
    stamp.write_text(key)
    return summary


def build_world(cfg: SimConfig, root: Path) -> World:
    """Data, truth, bundle, engine, members and their request contexts."""
    from ..serving import Tier, load_engine
    from ..serving.policy import request_context

    full, early = _catalogue(cfg)
    info = _bundle(cfg, early, root)
    engine = load_engine(root / "serving", Tier.TORCH)
    truth = _truth_scores(full, cfg.truth_reg)
    movie_ids = np.asarray(engine.movie_ids)
    to_full = full.item_vocab.indices(movie_ids)  # bundle item index -> truth item index
    order = early.chronological_order()
    seqs: dict[int, list[int]] = {}
    for u, i in zip(early.users[order].tolist(), early.items[order].tolist(), strict=True):
        seqs.setdefault(u, []).append(int(early.item_vocab.raw_ids[i]))
    histories, contexts, rows = [], [], []
    for u, hist in sorted(seqs.items()):
        if len(set(hist)) < cfg.min_member_ratings:
            continue
        ctx = request_context(engine, hist, k=cfg.k, n_candidates=cfg.n_candidates)
        if ctx is None or len(ctx.items) < 2 * cfg.k:
            continue
        histories.append(hist)
        contexts.append(ctx)
        rows.append(full.user_vocab.index(int(early.user_vocab.raw_ids[u])))
    c = max(len(ctx.items) for ctx in contexts)
    attract = np.zeros((len(contexts), c))
    n_models = len(engine.weights)
    popularity = np.log1p(np.bincount(early.items, minlength=early.n_items)).astype(np.float64)
    pop_of = popularity[early.item_vocab.indices(movie_ids)]
    features = np.zeros((len(contexts), c, n_models + 2))
    for m, (ctx, row, hist) in enumerate(zip(contexts, rows, histories, strict=True)):
        seen = full.item_vocab.indices(np.asarray(sorted(set(hist)), np.int64))
        s = truth[row].copy()
        s[seen] = np.nan
        z = (s - np.nanmean(s)) / max(float(np.nanstd(s)), 1e-12)
        cand = to_full[ctx.items]
        attract[m, : len(cand)] = 1 / (1 + np.exp(-(cfg.attract_slope * z[cand] + cfg.attract_offset)))
        if ctx.norm is not None:
            features[m, : len(cand), :n_models] = ctx.norm.T
        features[m, : len(cand), n_models] = pop_of[ctx.items]
        features[m, : len(cand), n_models + 1] = ctx.lite
    exam = 1.0 / np.log2(np.arange(cfg.k) + 2.0)
    log.info("simulation world: %d members, %d movies, bundle weights %s", len(contexts), len(movie_ids),
             info.get("weights"))
    return World(engine, histories, contexts, attract, exam, features, info)


def candidate_policies(cfg: SimConfig, n_models: int) -> list[Policy]:
    """The logging policy first, then weight sets (the ensemble's Dirichlet sampler) and temperatures."""
    out = [Policy("logging (bundle weights)", None, cfg.log_temperature)]
    for j, w in enumerate(dirichlet_weights(n_models, cfg.n_weight_sets, seed=cfg.seed + 1)):
        out.append(Policy(f"weights #{j}", w, cfg.log_temperature))
    out += [Policy(f"temperature {t:g}", None, t) for t in cfg.temperatures if t != cfg.log_temperature]
    return out


def policy_tables(world: World, policies: list[Policy]) -> np.ndarray:
    """(n_policies, n_members, C) Plackett-Luce scores (-inf outside each policy's pool)."""
    from ..serving.policy import policy_scores

    c = world.attract.shape[1]
    out = np.full((len(policies), len(world.contexts), c), -np.inf)
    for p, pol in enumerate(policies):
        for m, ctx in enumerate(world.contexts):
            out[p, m, : len(ctx.items)] = policy_scores(world.engine, ctx, pol.weights)
    return out


def expected_clicks(scores: np.ndarray, temperature: float, attract: np.ndarray, exam: np.ndarray, samples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(n_members,) E_{slate ~ PL(scores / temperature)} sum_j exam_j attract[a_j], by Monte Carlo."""
    n, k = scores.shape[0], len(exam)
    total = np.zeros(n)
    rows = np.repeat(np.arange(n), min(samples, 100))
    for start in range(0, samples, 100):
        s = min(100, samples - start)
        r = rows if s == 100 else np.repeat(np.arange(n), s)
        slates = plackett_luce_sample(scores[r], k, temperature, rng)
        gain = np.where(slates >= 0, attract[r[:, None], np.clip(slates, 0, None)], 0.0) * exam[None]
        total += gain.sum(1).reshape(n, s).sum(1)
    return total / samples


# ---- logs and the off-policy study -------------------------------------------------------------------------
@dataclass
class Logs:
    """Served lists: member of each list, slate positions among the member's candidates, and the SlateLog."""

    member: np.ndarray
    positions: np.ndarray
    slates: SlateLog
    propensity_check: float  # max |policy.py's propensity - the engine's logged propensity|


def serve_logs(world: World, cfg: SimConfig, rng: np.random.Generator, table_logging: np.ndarray, log_seed: int = 0
               ) -> Logs:
    """Ask the engine for every member's lists, click by the truth; check policy.py against the engine."""
    from ..serving.policy import slate_positions

    members, positions, props = [], [], []
    for m, hist in enumerate(world.histories):
        for r in range(cfg.requests_per_member):
            result = world.engine.recommend_user(hist, k=cfg.k, n_candidates=cfg.n_candidates,
                                                 temperature=cfg.log_temperature,
                                                 seed=cfg.seed * 1_000_003 + log_seed * 7_919 + m * 97 + r)
            ids = [int(it["movie_id"]) for it in result.items]
            p = np.full(cfg.k, np.nan)
            p[: len(ids)] = [float(it["propensity"]) for it in result.items]
            members.append(m)
            positions.append(slate_positions(world.engine, world.contexts[m], ids, cfg.k))
            props.append(p)
    member, pos, mu = np.asarray(members), np.asarray(positions), np.asarray(props)
    valid = pos >= 0
    ours = plackett_luce_propensities(table_logging[member], pos, cfg.log_temperature)
    check = float(np.nanmax(np.abs(np.where(valid, ours - mu, 0.0))))
    p_click = np.where(valid, world.attract[member[:, None], np.clip(pos, 0, None)] * world.exam[None], 0.0)
    clicks = (rng.random(pos.shape) < p_click).astype(np.float64)
    return Logs(member, pos, SlateLog(np.where(valid, mu, np.nan), clicks, valid), check)


def fit_reward_model(world: World, logs: Logs, cfg: SimConfig) -> np.ndarray:
    """q(member, candidate, slot): logistic regression of clicks on the features and the slot, cross-fitted on two
    member folds (each fold's q comes from the model fitted on the other). (n_members, C, k)."""
    from sklearn.linear_model import LogisticRegression

    n_members, c, f = world.features.shape
    k = cfg.k
    fold = np.random.default_rng(cfg.seed).permutation(n_members) % 2
    q = np.zeros((n_members, c, k))
    valid = logs.slates.valid
    rows = np.repeat(logs.member, k)[valid.ravel()]
    cand = logs.positions[valid]
    slot = np.tile(np.arange(k), len(logs.member))[valid.ravel()]
    x = np.concatenate([world.features[rows, cand], np.eye(k)[slot]], axis=1)
    y = logs.slates.reward[valid]
    for held in (0, 1):
        train = fold[rows] != held
        model = LogisticRegression(C=1.0, max_iter=500).fit(x[train], y[train])
        coef, intercept = model.coef_[0], float(model.intercept_[0])
        members = np.flatnonzero(fold == held)
        base = world.features[members] @ coef[:f] + intercept  # (m, C)
        q[members] = 1 / (1 + np.exp(-(base[..., None] + coef[f:][None, None])))
    return q


def ope_study(world: World, cfg: SimConfig, policies: list[Policy], tables: np.ndarray, logs: Logs,
              q: np.ndarray, rng: np.random.Generator, truths: np.ndarray | None = None) -> dict[str, Any]:
    """Every estimator for every policy next to its true value; the summary table and targets."""
    from scipy.stats import spearmanr

    rows: list[dict[str, Any]] = []
    k = cfg.k
    reward_hat = np.where(logs.slates.valid,
                          q[logs.member[:, None], np.clip(logs.positions, 0, None), np.arange(k)[None]], 0.0)
    for p, pol in enumerate(policies):
        truth = float(truths[p]) if truths is not None else float(
            expected_clicks(tables[p], pol.temperature, world.attract, world.exam, cfg.truth_samples, rng).mean())
        target = plackett_luce_propensities(tables[p][logs.member], logs.positions, pol.temperature)
        target = np.where(logs.slates.valid, target, np.nan)
        slates = plackett_luce_sample(np.repeat(tables[p], cfg.dm_samples, axis=0), k, pol.temperature, rng)
        members = np.repeat(np.arange(len(world.contexts)), cfg.dm_samples)
        gain = np.where(slates >= 0, q[members[:, None], np.clip(slates, 0, None), np.arange(k)[None]], 0.0)
        direct = gain.sum(1).reshape(len(world.contexts), cfg.dm_samples).mean(1)[logs.member]
        est = estimate_all(logs.slates, target, reward_hat, direct)
        rows.append({"policy": pol.name, "temperature": pol.temperature,
                     "weights": None if pol.weights is None else np.round(pol.weights, 3).tolist(), "truth": truth,
                     **{name: asdict(e) for name, e in est.items()}})
        log.info("policy %-26s truth %.4f  IPS %.4f  DR %.4f", pol.name, truth, est["IPS"].value, est["DR"].value)
    truths = np.asarray([r["truth"] for r in rows])
    summary = {}
    for name in ESTIMATORS:
        values = np.asarray([r[name]["value"] for r in rows])
        lows, highs = np.asarray([r[name]["low"] for r in rows]), np.asarray([r[name]["high"] for r in rows])
        err = values - truths
        summary[name] = {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
                         "max_abs": float(np.abs(err).max()), "bias": float(err.mean()),
                         "spearman": float(spearmanr(values, truths)[0]),
                         "coverage": float(((lows <= truths) & (truths <= highs)).mean())}
    targets = {"dr_mae_over_ips_mae": summary["DR"]["mae"] / summary["IPS"]["mae"],
               "dr_spearman": summary["DR"]["spearman"]}
    targets["met"] = bool(targets["dr_mae_over_ips_mae"] <= 0.5 and targets["dr_spearman"] >= 0.9)
    return {"policies": rows, "summary": summary, "targets": targets, "n_lists": logs.slates.n,
            "n_policies": len(policies), "propensity_check": logs.propensity_check,
            "mean_clicks_logged": float(logs.slates.reward.sum(1).mean())}


def run(cfg: SimConfig, root: Path, docs: Path) -> dict[str, Any]:
    """The whole study: world, logs, OPE, A/B accuracy, Thompson vs uniform; writes docs/EXPERIMENTS.md."""
    from .online_sim import ab_study, thompson_study
    from .report import write_simulation_report

    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    world = build_world(cfg, root)
    policies = candidate_policies(cfg, len(world.engine.weights))
    tables = policy_tables(world, policies)
    logs = serve_logs(world, cfg, rng, tables[0])
    q = fit_reward_model(world, logs, cfg)
    report: dict[str, Any] = {"config": asdict(cfg), "n_members": len(world.contexts),
                              "bundle_weights": world.engine.weights}
    report["ope"] = ope_study(world, cfg, policies, tables, logs, q, rng)
    np.savez_compressed(root / "logs.npz", member=logs.member, positions=logs.positions, reward=logs.slates.reward,
                        propensity=logs.slates.propensity, valid=logs.slates.valid, q=q, tables=tables,
                        temperatures=np.asarray([p.temperature for p in policies]),
                        names=np.asarray([p.name for p in policies]))
    truths = np.asarray([r["truth"] for r in report["ope"]["policies"]])
    dr = np.asarray([r["DR"]["value"] for r in report["ope"]["policies"]])
    report["ab"] = ab_study(world, cfg, policies, tables, truths, dr)
    report["thompson"] = thompson_study(world, cfg, policies, tables, truths, dr)
    report["ope_repeats"] = [_ope_summary(0, report["ope"])]
    for rep in range(1, cfg.ope_repeats):  # the same policies and truths, independent logs
        rep_rng = np.random.default_rng([cfg.seed, 17, rep])
        rep_logs = serve_logs(world, cfg, rep_rng, tables[0], log_seed=rep)
        rep_q = fit_reward_model(world, rep_logs, dataclasses.replace(cfg, seed=cfg.seed + rep))
        report["ope_repeats"].append(_ope_summary(rep, ope_study(world, cfg, policies, tables, rep_logs, rep_q,
                                                                 rep_rng, truths)))
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (root / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, default=float))
    write_simulation_report(report, docs)
    return report


def _ope_summary(log_seed: int, ope: dict[str, Any]) -> dict[str, Any]:
    return {"log_seed": log_seed, **{f"{n}_mae": ope["summary"][n]["mae"] for n in ESTIMATORS},
            "dr_spearman": ope["summary"]["DR"]["spearman"], **ope["targets"]}


def add_simulate_arguments(parser: Any) -> None:
    """Options of ``python -m ml_core simulate``."""
    from ..data import REPO_ROOT

    parser.add_argument("--out", default=str(REPO_ROOT / "var" / "experiments" / "simulation"),
                        help="where the bundle (reused while the data and configuration match) and report.json go")
    parser.add_argument("--docs", default=str(REPO_ROOT / "docs"), help="where EXPERIMENTS.md and img/ go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run; the doc says so)")


def run_simulate(args: Any) -> int:
    """The simulate command."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = SimConfig(seed=args.seed)
    if args.quick:
        cfg = dataclasses.replace(cfg, requests_per_member=2, n_weight_sets=4, temperatures=(0.5,), ope_repeats=2,
                                  truth_samples=50, dm_samples=8, ab_runs=10, ab_sizes=(500, 1000),
                                  ts_horizon=2000, ts_runs=2)
    report = run(cfg, Path(args.out), Path(args.docs))
    log.info("simulation done in %.0f s: DR/IPS error %.3f, DR Spearman %.3f", report["seconds"],
             report["ope"]["targets"]["dr_mae_over_ips_mae"], report["ope"]["targets"]["dr_spearman"])
    return 0
