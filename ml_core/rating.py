"""Explicit-rating prediction: "the predicted rating for you" (0.5-5 stars), not a ranking model.

Model: r_ui = mu + b_u + b_i + p_u . q_i.
* Biases by regularised alternating least squares: b_i = sum_u (r - mu - b_u) / (reg_item + n_i) and
  b_u = sum_i (r - mu - b_i) / (reg_user + n_u), repeated ``bias_epochs`` times (Koren 2010, section 2.1).
* A low-rank residual by ALS on e_ui = r - mu - b_u - b_i (ridge ``reg`` on both factor matrices).
* Only mu, b_i and q_i are stored. The user's part (b_u, p_u) is folded in at request time from the
  ratings in the request (one ridge solve of ``embedding_size`` unknowns), so a user who signed up after
  training gets the same treatment as a training user, and evaluation measures exactly what serving does.

Evaluation (:func:`evaluate_ratings`) uses the protocol's chronological split: each user's last rating is
the test target, the second-to-last the validation target (users with fewer than 3 ratings stay in train),
and the history seen at prediction time is every earlier rating. RMSE/MAE are reported for the global mean,
the baseline alone (mu + b_u + b_i) and the full model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .data import Interactions, Vocabulary
from .interface import FitOptions, FitReport

MODEL_NAME = "rating"
MIN_RATING, MAX_RATING = 0.5, 5.0


@dataclass(frozen=True)
class RatingConfig:
    """Biased matrix factorisation for explicit ratings, fitted by alternating least squares."""

    reg_user: float = 3.0  # shrinkage of a user's bias towards 0 (acts like 3 extra ratings at the baseline)
    reg_item: float = 5.0  # shrinkage of an item's bias
    bias_epochs: int = 10  # alternating bias sweeps
    embedding_size: int = 8  # rank of the residual; 0 = baseline only
    reg: float = 15.0  # ridge on user and item factors
    epochs: int = 8  # ALS sweeps over the residual factors


SEARCH_SPACE: list[dict[str, Any]] = [  # tried on validation RMSE by fit_rating_predictor (ridge 3 overfits, 40 zeroes the factors)
    {"embedding_size": 0},
    {"embedding_size": 8, "reg": 8.0},
    {"embedding_size": 8, "reg": 15.0},
    {"embedding_size": 32, "reg": 15.0},
]


def _group(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, bounds): rows of key k are order[bounds[k]:bounds[k + 1]]."""
    order = np.argsort(keys, kind="stable")
    return order, np.searchsorted(keys[order], np.arange(n + 1))


def _ridge_rows(
    fixed: np.ndarray, other: np.ndarray, target: np.ndarray, order: np.ndarray, bounds: np.ndarray, reg: float
) -> np.ndarray:
    """Per entity k: argmin_x sum_rows (target - x . fixed[other])^2 + reg |x|^2 over its rows."""
    dim = fixed.shape[1]
    out = np.zeros((len(bounds) - 1, dim), np.float64)
    eye = reg * np.eye(dim)
    for k in range(len(bounds) - 1):
        rows = order[bounds[k] : bounds[k + 1]]
        if len(rows):
            f = fixed[other[rows]]
            out[k] = np.linalg.solve(f.T @ f + eye, f.T @ target[rows])
    return out


class RatingPredictor:
    """mu + b_u + b_i + p_u . q_i with the user part folded in from the request's ratings."""

    name = MODEL_NAME

    def __init__(self, config: RatingConfig | None = None) -> None:
        self.config = config or RatingConfig()
        self.mu = 0.0
        self.item_bias = np.zeros(0, np.float64)
        self.item_factors = np.zeros((0, self.config.embedding_size), np.float64)
        self.item_vocab = Vocabulary(np.zeros(0, np.int64))

    # ---- training ---------------------------------------------------------------------------------------
    def fit(self, data: Interactions, options: FitOptions | None = None) -> FitReport:
        """Fit on every row of ``data`` (its ratings), like every model: seed and epoch cap from ``options``."""
        options = options or FitOptions()
        seed = options.seed
        start = time.perf_counter()
        cfg = self.config
        epochs = cfg.epochs if options.max_epochs is None else min(cfg.epochs, options.max_epochs)
        users, items = data.users, data.items
        r = data.ratings.astype(np.float64)
        self.item_vocab = data.item_vocab
        self.mu = float(r.mean()) if len(r) else 0.0
        n_users, n_items = data.n_users, data.n_items
        n_u = np.bincount(users, minlength=n_users)
        n_i = np.bincount(items, minlength=n_items)
        b_u, b_i = np.zeros(n_users), np.zeros(n_items)
        for _ in range(cfg.bias_epochs):
            b_i = np.bincount(items, r - self.mu - b_u[users], n_items) / (cfg.reg_item + n_i)
            b_u = np.bincount(users, r - self.mu - b_i[items], n_users) / (cfg.reg_user + n_u)
        self.item_bias = b_i
        dim = cfg.embedding_size
        q = np.zeros((n_items, dim))
        if dim:
            resid = r - self.mu - b_u[users] - b_i[items]
            q = np.random.default_rng(seed).normal(0.0, 0.1, (n_items, dim))
            by_user, by_item = _group(users, n_users), _group(items, n_items)
            for _ in range(epochs):
                p = _ridge_rows(q, items, resid, *by_user, cfg.reg)
                q = _ridge_rows(p, users, resid, *by_item, cfg.reg)
        self.item_factors = q
        return FitReport(epochs=epochs if dim else 0, seconds=round(time.perf_counter() - start, 2),
                         n_parameters=int(n_items * (dim + 1) + 1), extra={"config": asdict(cfg)})

    # ---- prediction -------------------------------------------------------------------------------------
    def user_part(self, history: np.ndarray, ratings: np.ndarray) -> tuple[float, np.ndarray]:
        """(b_u, p_u) folded in from item indices and their ratings (unknown items, index -1, are ignored)."""
        cfg = self.config
        known = history >= 0
        hist, r = history[known], np.asarray(ratings, np.float64)[known]
        dim = self.item_factors.shape[1]
        if not len(hist):
            return 0.0, np.zeros(dim)
        b_u = float((r - self.mu - self.item_bias[hist]).sum() / (cfg.reg_user + len(hist)))
        if not dim:
            return b_u, np.zeros(0)
        f = self.item_factors[hist]
        p_u = np.linalg.solve(f.T @ f + cfg.reg * np.eye(dim), f.T @ (r - self.mu - b_u - self.item_bias[hist]))
        return b_u, p_u

    def predict(self, history: np.ndarray, ratings: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Unclipped predictions for candidate item indices (float64); NaN for unknown items (-1)."""
        part = self.user_part(np.asarray(history, np.int64), np.asarray(ratings, np.float64))
        return self.predict_part(part, candidates)

    def predict_part(self, part: tuple[float, np.ndarray], candidates: np.ndarray) -> np.ndarray:
        """:meth:`predict` from a user's folded-in :meth:`user_part` (kept by a caller that predicts again)."""
        b_u, p_u = part
        candidates = np.asarray(candidates, np.int64)
        ok = (candidates >= 0) & (candidates < len(self.item_bias))
        idx = candidates[ok]
        out = np.full(len(candidates), np.nan)
        out[ok] = self.mu + b_u + self.item_bias[idx] + (self.item_factors[idx] @ p_u if len(p_u) else 0.0)
        return out

    def user_part_movies(self, history: Sequence[int], ratings: Sequence[float]) -> tuple[float, np.ndarray]:
        """``user_part`` of a history of raw movie ids with their ratings (what predict_movies folds in)."""
        if len(history) != len(ratings):
            raise ValueError(f"history has {len(history)} movies but {len(ratings)} ratings")
        return self.user_part(np.asarray(self.item_vocab.indices(list(history)), np.int64),
                              np.asarray(ratings, np.float64))

    def predict_movies(
        self, history: Sequence[int], ratings: Sequence[float], movie_ids: Sequence[int],
        part: tuple[float, np.ndarray] | None = None,
    ) -> list[float | None]:
        """Predictions clipped to 0.5-5 for raw movie ids (history: raw ids with their ratings); None if unknown.
        ``part``: :meth:`user_part_movies` of this history, when the caller kept it."""
        part = part if part is not None else self.user_part_movies(history, ratings)
        values = self.predict_part(part, self.item_vocab.indices(list(movie_ids)))
        clipped = np.clip(values, MIN_RATING, MAX_RATING).tolist()  # NaN stays NaN: NaN != NaN below
        return [None if v != v else v for v in clipped]

    # ---- artifacts --------------------------------------------------------------------------------------
    def export(
        self, directory: Path, *, data_snapshot: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None
    ) -> None:
        """config.json, weights.safetensors (mu, item_bias, item_factors), vocab.json, checksummed manifest."""
        from .artifacts import save_artifact, write_manifest

        tensors = {"mu": np.asarray([self.mu]), "item_bias": self.item_bias, "item_factors": self.item_factors}
        save_artifact(
            Path(directory),
            model=MODEL_NAME,
            config=asdict(self.config),
            tensors=tensors,
            vocab={"items": self.item_vocab.to_json()},
            data_snapshot=data_snapshot,
        )
        if metrics is not None:
            write_manifest(Path(directory), metrics=metrics)

    @classmethod
    def load(cls, directory: Path) -> RatingPredictor:
        """Verified load (checksums first; safetensors, never unpickled)."""
        from .artifacts import load_artifact

        content = load_artifact(Path(directory), model=MODEL_NAME)
        model = cls(RatingConfig(**content["config"]))
        model.mu = float(content["tensors"]["mu"][0])
        model.item_bias = content["tensors"]["item_bias"].astype(np.float64)
        model.item_factors = content["tensors"]["item_factors"].astype(np.float64)
        model.item_vocab = Vocabulary.from_json(content["vocab"]["items"])
        return model


def half_stars(value: float) -> float:
    """A prediction for display: clipped to 0.5-5 and rounded to the nearest half star (x.25 rounds up)."""
    return float(np.clip(np.floor(float(value) * 2 + 0.5) / 2, MIN_RATING, MAX_RATING))


# ---- evaluation on the protocol's chronological split ------------------------------------------------------
@dataclass
class RatingSplit:
    """Train rows and, per stage, each target's user, item, rating and the rows seen before it."""

    train: Interactions
    targets: dict[str, dict[str, Any]]


def rating_split(data: Interactions) -> RatingSplit:
    """Per user by time (ties by the tie-break key): last = test, second-to-last = validation (>= 3 ratings)."""
    order = data.chronological_order()
    bounds = data.user_bounds(order)
    has = np.diff(bounds) >= 3
    ends = bounds[1:][has]
    targets, held = {}, np.zeros(len(data), bool)
    for stage, back in (("test", 1), ("valid", 2)):
        rows = order[ends - back]
        held[rows] = True
        histories = [order[bounds[u] : e - back] for u, e in zip(np.flatnonzero(has), ends, strict=True)]
        targets[stage] = {
            "users": data.users[rows],
            "items": data.items[rows],
            "ratings": data.ratings[rows],
            "histories": histories,
        }
    return RatingSplit(data.subset(~held), targets)


def _predict_targets(model: RatingPredictor, data: Interactions, stage: dict[str, Any]) -> np.ndarray:
    return np.asarray(
        [
            model.predict(data.items[h], data.ratings[h], np.asarray([i]))[0]
            for h, i in zip(stage["histories"], stage["items"].tolist(), strict=True)
        ]
    )


def error_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of predictions clipped to 0.5-5 (NaN predictions fall back to the mean of the others)."""
    p = np.clip(np.where(np.isnan(predicted), np.nanmean(predicted), predicted), MIN_RATING, MAX_RATING)
    err = p - np.asarray(actual, np.float64)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "n": int(len(err))}


def evaluate_ratings(
    model: RatingPredictor, data: Interactions, split: RatingSplit, stage: str = "test"
) -> dict[str, dict[str, float]]:
    """RMSE/MAE of the global mean, the baseline (mu + b_u + b_i) and the model on one stage's targets."""
    target = split.targets[stage]
    actual = target["ratings"].astype(np.float64)
    baseline = RatingPredictor(replace(model.config, embedding_size=0))
    baseline.mu, baseline.item_bias, baseline.item_vocab = model.mu, model.item_bias, model.item_vocab
    baseline.item_factors = np.zeros((len(model.item_bias), 0))
    return {
        "global_mean": error_metrics(np.full(len(actual), model.mu), actual),
        "baseline": error_metrics(_predict_targets(baseline, data, target), actual),
        "model": error_metrics(_predict_targets(model, data, target), actual),
    }


def fit_rating_predictor(
    data: Interactions, *, seed: int = 42, space: Sequence[dict[str, Any]] = SEARCH_SPACE
) -> tuple[RatingPredictor, dict[str, Any]]:
    """Pick a configuration by validation RMSE (fitted on train), report it on test; (model, metrics).

    Only rows with a rating take part (site events without a value carry NaN); ValueError when there are none.
    """
    data = data.subset(np.isfinite(data.ratings))
    if not len(data):
        raise ValueError(f"{data.name}: no explicit ratings to learn from")
    split = rating_split(data)
    trials, best, best_rmse = [], None, np.inf
    for params in space:
        model = RatingPredictor(RatingConfig(**params))
        report = model.fit(split.train, FitOptions(seed=seed, progress=False))
        valid = split.targets["valid"]
        rmse = error_metrics(_predict_targets(model, data, valid), valid["ratings"])["rmse"]
        trials.append({"params": dict(params), "valid_rmse": round(rmse, 4), "seconds": report.seconds})
        if rmse < best_rmse:
            best, best_rmse = model, rmse
    if best is None:
        raise ValueError("no configuration to try")
    metrics = {
        "protocol": "chronological last rating per user (test), second-to-last (validation)",
        "dataset": data.name,
        "config": asdict(best.config),
        "valid_rmse": round(best_rmse, 4),
        "test": evaluate_ratings(best, data, split, "test"),
        "trials": trials,
    }
    return best, metrics
