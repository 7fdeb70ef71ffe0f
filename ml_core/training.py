"""Shared training machinery: seeding and the epoch loop with early stopping (tuning: :mod:`ml_core.tuning`)."""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .interface import FitOptions, FitReport

log = logging.getLogger(__name__)

SELECTION_METRIC = "ndcg@10"


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (when imported) so a run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a hard dependency of the neural models
        pass


def validation_ndcg(model: Any, options: FitOptions) -> float | None:
    """Validation NDCG@10 (full ranking) of the model, or None when no split was given."""
    if options.validation is None:
        return None
    from .evaluation import evaluate

    return evaluate(model, options.validation, "valid", full_only=True)[SELECTION_METRIC]


def run_epochs(*, model: Any, options: FitOptions, epochs: int, train_epoch: Callable[[int], float],
               get_state: Callable[[], Any], set_state: Callable[[Any], None],
               eval_every: int = 1, desc: str = "") -> FitReport:
    """Train epoch by epoch; with a validation split, keep the best epoch and stop early.

    train_epoch(epoch) runs one epoch and returns the mean loss. get_state/set_state snapshot
    and restore the parameters of the best epoch. Stops after `options.patience` evaluations
    without a gain, or when `options.on_validation` (the tuner's pruner) returns True; the budget is
    epochs only (`options.max_epochs` overrides the model's), so the result never depends on machine load.
    """
    from tqdm.auto import tqdm

    epochs = options.max_epochs if options.max_epochs is not None else epochs
    # a model whose validation curve is noisy may ask for more patience than the run's default
    patience = max(options.patience, getattr(getattr(model, "config", None), "min_patience", 0))
    start, cpu_start = time.perf_counter(), time.process_time()
    report = FitReport()
    best, best_state, since_best = -1.0, None, 0
    bar = tqdm(range(1, epochs + 1), desc=desc or getattr(model, "name", "train"), disable=not options.progress,
               leave=False)
    for epoch in bar:
        loss = train_epoch(epoch)
        report.epochs = epoch
        report.extra.setdefault("loss", []).append(float(loss))
        if options.validation is not None and (epoch % eval_every == 0 or epoch == epochs):
            ndcg = validation_ndcg(model, options)
            assert ndcg is not None  # options.validation is set
            report.val_curve.append(float(ndcg))
            report.extra.setdefault("val_epochs", []).append(epoch)
            if ndcg > best:
                best, best_state, since_best, report.best_epoch = ndcg, copy.deepcopy(get_state()), 0, epoch
            else:
                since_best += 1
            bar.set_postfix(loss=f"{loss:.4f}", val_ndcg=f"{ndcg:.4f}", best=f"{best:.4f}")
            (log.debug if options.progress else log.info)(
                "%s epoch %d: loss %.4f, val NDCG@10 %.4f (%.0f s)", desc, epoch, loss, ndcg, time.perf_counter() - start)
            if options.on_validation is not None and options.on_validation(epoch, float(ndcg)):
                report.extra["stopped_by"] = "on_validation"
                break
            if since_best >= patience:
                log.info("%s: early stop at epoch %d (best %d, NDCG@10 %.4f)", desc, epoch, report.best_epoch, best)
                break
        else:
            bar.set_postfix(loss=f"{loss:.4f}")
    bar.close()
    if best_state is not None:
        set_state(best_state)
    report.seconds = time.perf_counter() - start
    report.extra["cpu_seconds"] = time.process_time() - cpu_start
    return report
