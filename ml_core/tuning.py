"""Tuning by trials: each model's search space, one resumable Optuna study per (dataset, model), the stored choice.

Every model class declares ``search_space`` (parameter name -> one of the distributions below, with ranges
taken from its paper and reference implementation) and may declare ``n_trials``. ``tune`` runs a fixed
number of trials with Optuna's TPE sampler (fixed seed) and median pruning on the validation NDCG@10 that
the epoch loop reports; trial 0 is always the model's default configuration, so the choice is never worse
than the defaults on validation. Nothing depends on the clock: the budget is a trial count and each trial
an epoch count, so two runs with the same seed, data and thread count choose the same configuration.

The study lives in ``<artifacts>/<dataset>/tuning/<model>.db`` (SQLite) under a name built from the model,
the training data snapshot, the search space and the seed: re-running continues up to the trial budget.
The choice is written to ``<artifacts>/<dataset>/tuned/<model>.json``; ``train`` without ``--tune``, the
nightly job and ``build_serving_artifacts`` read it back (the defaults for a dataset never tuned). Choices made
by the project's own tuning runs ship in ``ml_core/tuned/<dataset>/<model>.json`` (copied there from a run's
``tuned`` folder): a checkout without that run's artifacts uses them when its training data is the one they were
tuned on (the training snapshot's hash is part of the study name), and a local choice always wins.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .interface import FitOptions, FitReport

if TYPE_CHECKING:
    from .models.base import RecommenderBase

log = logging.getLogger(__name__)

DEFAULT_TRIALS = 20  # per model, unless the model or --trials says otherwise
TPE_STARTUP_TRIALS = 6  # random trials (after the default) before TPE models the history
PRUNE_STARTUP_TRIALS = 5  # completed trials before the median pruner may stop one
PRUNE_WARMUP_EPOCHS = 2  # epochs a trial always runs before it may be pruned
TRIAL_ERRORS = (RuntimeError, ValueError, FloatingPointError)  # a failing configuration fails its trial, not the run


# --- search-space declarations (plain values; Optuna is imported only when tuning) -----------------------
@dataclass(frozen=True)
class Float:
    """A float searched low..high inclusive: uniformly (dropout, margins), or on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def decode(self, raw: Any) -> Any:
        return float(raw)

    def optuna(self) -> Any:
        """The Optuna distribution ``suggest`` draws from (to replay stored trials into a study)."""
        import optuna

        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def encode(self, value: Any) -> Any:
        return float(value)

    def contains(self, value: Any) -> bool:
        inside: bool = self.low <= value <= self.high
        return inside


@dataclass(frozen=True)
class LogFloat(Float):
    """A float searched on a log scale (learning rates, regularisation weights)."""

    log: bool = True


@dataclass(frozen=True)
class Int:
    """An integer low..high inclusive, on a log scale when ``log`` (window lengths, neighbour counts)."""

    low: int
    high: int
    log: bool = False

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def decode(self, raw: Any) -> Any:
        return int(raw)

    def optuna(self) -> Any:
        """The Optuna distribution ``suggest`` draws from (to replay stored trials into a study)."""
        import optuna

        return optuna.distributions.IntDistribution(self.low, self.high, log=self.log)

    def encode(self, value: Any) -> Any:
        return int(value)

    def contains(self, value: Any) -> bool:
        inside: bool = self.low <= value <= self.high
        return inside


@dataclass(frozen=True)
class Categorical:
    """One of a few values; tuples (layer widths) are searched under their JSON label."""

    choices: tuple[Any, ...]

    @staticmethod
    def _label(value: Any) -> Any:
        return value if value is None or isinstance(value, bool | int | float | str) else json.dumps(list(value))

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, [self._label(c) for c in self.choices])

    def optuna(self) -> Any:
        """The Optuna distribution ``suggest`` draws from (to replay stored trials into a study)."""
        import optuna

        return optuna.distributions.CategoricalDistribution([self._label(c) for c in self.choices])

    def decode(self, raw: Any) -> Any:
        for choice in self.choices:
            if self._label(choice) == raw or (isinstance(raw, list) and self._label(choice) == json.dumps(raw)):
                return choice
        raise ValueError(f"{raw!r} is not one of {self.choices!r}")

    def encode(self, value: Any) -> Any:
        return self._label(tuple(value) if isinstance(value, list) else value)

    def contains(self, value: Any) -> bool:
        return any(self._label(c) == self.encode(value) for c in self.choices)


Distribution = LogFloat | Float | Int | Categorical


def space_of(model_cls: type[RecommenderBase]) -> dict[str, Distribution]:
    """The model's declared search space ({} for a model with nothing to tune)."""
    space = getattr(model_cls, "search_space", None) or {}
    if not isinstance(space, dict):
        raise TypeError(f"{model_cls.__name__}.search_space must map parameter names to distributions")
    return dict(space)


def trials_for(model_cls: type[RecommenderBase], requested: int | None, space: dict[str, Distribution]) -> int:
    """The trial budget: --trials, else the model's own ``n_trials``, else DEFAULT_TRIALS; 1 with nothing to tune."""
    if not space:
        return 1
    return max(1, requested if requested is not None else getattr(model_cls, "n_trials", DEFAULT_TRIALS))


def default_params(base: Any, space: dict[str, Distribution]) -> dict[str, Any]:
    """The configuration's values of the searched parameters, in the search encoding (trial 0)."""
    return {name: dist.encode(getattr(base, name)) for name, dist in space.items()}


def apply_params(base: Any, space: dict[str, Distribution], params: dict[str, Any]) -> Any:
    """``base`` with the searched parameters replaced (unknown or no longer searched names are ignored)."""
    fields = {f.name for f in dataclasses.fields(base)}
    return replace(base, **{k: space[k].decode(v) for k, v in params.items() if k in space and k in fields})


# --- the study ------------------------------------------------------------------------------------------
@dataclass
class TuningResult:
    """The selected model, its fit report and configuration, and every trial of the study."""

    model: Any
    report: FitReport
    config: Any
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # training seconds of every trial of the study, earlier sessions included
    study: dict[str, Any] = field(default_factory=dict)


def study_name(model_cls: type[RecommenderBase], split: Any, space: dict[str, Distribution], seed: int) -> str:
    """Stable for the same model, training data, search space and seed (so a re-run resumes it)."""
    space_key = hashlib.sha256(repr(sorted(space.items())).encode()).hexdigest()[:8]
    return f"{model_cls.name}-{split.train.snapshot()['sha256'][:12]}-space{space_key}-seed{seed}"


def tune(model_cls: type[RecommenderBase], split: Any, options: FitOptions, *, storage_dir: Path | None = None,
         n_trials: int | None = None, space: dict[str, Distribution] | None = None, base_config: Any = None,
         prune_startup_trials: int = PRUNE_STARTUP_TRIALS, prune_warmup_epochs: int | None = None,
         resume_from: dict[str, Any] | None = None) -> TuningResult:
    """Run the study up to its trial budget (resuming a stored one) and return the best configuration's model.

    ``storage_dir`` holds ``<model>.db``; without it the study lives in memory. ``options.seed`` seeds both
    the sampler and every fit, ``options.max_epochs`` caps every trial. ``resume_from``: a stored choice's record
    (:func:`load_choice`); when it is this study's and the storage holds no trial yet, its trials are replayed
    into the storage first, so a study shipped in ``ml_core/tuned/`` goes on where it stopped (a study can
    run in slices, on different machines).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = space_of(model_cls) if space is None else space
    base = base_config if base_config is not None else model_cls.config_cls()
    budget = trials_for(model_cls, n_trials, space)
    warmup = prune_warmup_epochs if prune_warmup_epochs is not None else getattr(
        model_cls, "prune_warmup_epochs", PRUNE_WARMUP_EPOCHS)
    name = study_name(model_cls, split, space, options.seed)
    kept: dict[str, Any] = {}  # the best model fitted in this session: {"number", "value", "model", "report"}
    started, started_at = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with _study_lock(storage_dir, model_cls.name):
        study = optuna.create_study(
            storage=_storage_url(storage_dir, model_cls.name), study_name=name, direction="maximize",
            load_if_exists=True, pruner=optuna.pruners.MedianPruner(n_startup_trials=prune_startup_trials,
                                                                    n_warmup_steps=warmup))
        if not study.trials and resume_from is not None and resume_from.get("study", {}).get("name") == name:
            replay_trials(study, resume_from.get("trials", []), space)
        _retry_interrupted(study)
        if not study.trials:
            study.enqueue_trial(default_params(base, space), user_attrs={"default": True})
        objective = _objective(model_cls, split, options, space, base, kept)
        before = _finished(study)
        while (done := _finished(study)) < budget:
            study.sampler = _sampler(options.seed, len(study.trials))
            study.optimize(objective, n_trials=1, catch=TRIAL_ERRORS)
            if _finished(study) <= done:  # never loop on a trial that did not count
                raise RuntimeError(f"tuning {name}: trial {len(study.trials) - 1} neither finished nor failed")
            log.info("%s: trial %d of %d done", model_cls.name, done + 1, budget)
        best = _best_trial(study)
        run_here = _finished(study) - before
    config = apply_params(base, space, best.params)
    if kept.get("number") == best.number:
        model, report = kept["model"], kept["report"]
    else:  # chosen in an earlier session: refit it (same seed, same epochs: the same model)
        model, report, _ = fit_config(model_cls, config, split, options)
    trials = trial_history(study, space)
    import torch

    # torch's thread count changes float reductions, so a configuration refitted with another count can land on
    # another model (the same seed and epochs): recorded so that a card's refit can be compared with its trial
    session = {"started_at": started_at, "trials_run": run_here, "seconds": round(time.perf_counter() - started, 1),
               "torch_threads": torch.get_num_threads()}
    return TuningResult(model=model, report=report, config=config, trials=trials,
                        seconds=round(sum(t["seconds"] or 0.0 for t in trials), 2),
                        study={"name": name, "storage": str(_db_path(storage_dir, model_cls.name) or "memory"),
                               "n_trials": budget, "best_trial": best.number, "best_value": best.value,
                               "sampler": f"TPE (seed {options.seed})",
                               "pruner": f"median on validation NDCG@10 after {prune_startup_trials} trials, "
                                         f"from epoch {warmup}",
                               "max_epochs": options.max_epochs, "session": session})


def fit_config(model_cls: type[RecommenderBase], config: Any, split: Any, options: FitOptions) -> tuple[Any, FitReport, float]:
    """Fit one configuration with validation early stopping; (model, report, validation NDCG@10)."""
    from .training import set_seed, validation_ndcg

    set_seed(options.seed)
    opts = replace(options, validation=split)
    model = model_cls(config)
    cpu = time.process_time()
    report = model.fit(split.train, opts)
    report.extra.setdefault("cpu_seconds", time.process_time() - cpu)
    score = max(report.val_curve) if report.val_curve else validation_ndcg(model, opts)
    assert score is not None  # opts carries the validation split
    return model, report, float(score)


def _objective(model_cls: type[RecommenderBase], split: Any, options: FitOptions, space: dict[str, Distribution], base: Any,
               kept: dict[str, Any]) -> Any:
    import optuna

    def objective(trial: Any) -> float:
        def on_validation(epoch: int, value: float) -> bool:
            trial.report(value, epoch)
            trial.set_user_attr("epochs", epoch)
            prune: bool = trial.should_prune()
            return prune

        start = time.perf_counter()
        try:
            config = replace(base, **{k: dist.decode(dist.suggest(trial, k)) for k, dist in space.items()})
            model, report, score = fit_config(model_cls, config, split, replace(options, on_validation=on_validation))
        except Exception as exc:  # the configuration's own failure (a bug ends the session: optimize re-raises)
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:300])
            raise
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        trial.set_user_attr("epochs", report.epochs)
        trial.set_user_attr("best_epoch", report.best_epoch)
        if report.extra.get("stopped_by") == "on_validation":
            log.info("%s trial %d pruned at epoch %d", model_cls.name, trial.number, report.epochs)
            raise optuna.TrialPruned()
        log.info("%s trial %d %s: val NDCG@10 %.4f (%d epochs, %.1f s)", model_cls.name, trial.number,
                 trial.params, score, report.epochs, time.perf_counter() - start)
        if not math.isfinite(score):
            trial.set_user_attr("error", "non-finite validation NDCG@10")
        elif score > kept.get("value", -math.inf):
            kept.update(number=trial.number, value=score, model=model, report=report)
        return score

    return objective


def _sampler(seed: int, number: int) -> Any:
    """TPE seeded from (seed, trial number): a resumed study samples exactly as an uninterrupted one."""
    import numpy as np
    import optuna

    trial_seed = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=trial_seed, n_startup_trials=TPE_STARTUP_TRIALS)


def _finished(study: Any) -> int:
    """Trials that count against the budget: complete, pruned, or failed by their configuration."""
    from optuna.trial import TrialState

    return sum(1 for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and not _interrupted(t)))


def _interrupted(trial: Any) -> bool:
    """Failed without an error of its configuration: the session stopped (killed, Ctrl-C) during the trial."""
    return trial.state.name == "FAIL" and "error" not in trial.user_attrs


def _retry_interrupted(study: Any) -> None:
    """Trials left running or stopped by an ended session fail and their configuration is queued again."""
    from optuna.trial import TrialState

    for t in study.trials:
        if t.state == TrialState.RUNNING:
            study.tell(t.number, state=TrialState.FAIL)
    trials = study.trials
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if _interrupted(t) and t.number not in retried:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, "default": t.user_attrs.get("default", False)})
            log.warning("%s: trial %d was interrupted; its configuration runs again", study.study_name, t.number)


def _best_trial(study: Any) -> Any:
    from optuna.trial import TrialState

    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"tuning {study.study_name}: no trial completed (see the failed trials above)")
    return max(complete, key=lambda t: (t.value, -t.number))  # ties: the earlier trial (the default first)


def trial_history(study: Any, space: dict[str, Distribution]) -> list[dict[str, Any]]:
    """Every trial as plain values: number, params, value (None unless complete), state, epochs, seconds."""
    out = []
    for t in study.trials:
        if t.state.name in ("RUNNING", "WAITING"):
            continue
        params = {k: _jsonable(space[k].decode(v)) if k in space else v for k, v in t.params.items()}
        last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
        out.append({"number": t.number, "params": params, "value": t.value, "state": t.state.name.lower(),
                    "last_reported": last, "epochs": t.user_attrs.get("epochs"),
                    "best_epoch": t.user_attrs.get("best_epoch"), "seconds": t.user_attrs.get("seconds"),
                    "default": bool(t.user_attrs.get("default")), "retry_of": t.user_attrs.get("retry_of"),
                    "interrupted": _interrupted(t), "error": t.user_attrs.get("error"),
                    "curve": {str(epoch): v for epoch, v in sorted(t.intermediate_values.items())}})
    return out


def replay_trials(study: Any, trials: list[dict[str, Any]], space: dict[str, Distribution]) -> None:
    """Add stored trials (:func:`trial_history`'s records, in order) to an empty study, as they ended: the sampler
    and the pruner then see the same history as in the session that ran them (a record from before validation
    curves were stored gives the pruner its last reported value only)."""
    import optuna
    from optuna.trial import TrialState

    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}
    for t in trials:
        if t.get("state") not in states or not set(t.get("params", {})) <= set(space):
            raise ValueError(f"{study.study_name}: stored trial {t.get('number')} does not fit the search space")
        curve = {int(e): float(v) for e, v in (t.get("curve") or {}).items()}
        if not curve and t.get("last_reported") is not None and t.get("epochs"):
            curve = {int(t["epochs"]): float(t["last_reported"])}
        attrs = {k: t[k] for k in ("epochs", "best_epoch", "seconds", "error", "retry_of") if t.get(k) is not None}
        if t.get("default"):
            attrs["default"] = True
        study.add_trial(optuna.trial.create_trial(
            state=states[t["state"]], value=t.get("value") if t["state"] == "complete" else None,
            params={k: space[k].encode(v) for k, v in t["params"].items()},
            distributions={k: space[k].optuna() for k in t["params"]}, intermediate_values=curve, user_attrs=attrs))
    log.info("%s: %d stored trials replayed", study.study_name, len(trials))


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _db_path(storage_dir: Path | None, model: str) -> Path | None:
    return Path(storage_dir) / f"{model}.db" if storage_dir is not None else None


def _storage_url(storage_dir: Path | None, model: str) -> str | None:
    path = _db_path(storage_dir, model)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


@contextmanager
def _study_lock(storage_dir: Path | None, model: str) -> Iterator[None]:
    """One tuning session per stored study: a second one fails at once instead of failing the first's trials."""
    if storage_dir is None:
        yield
        return
    Path(storage_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(storage_dir) / f"{model}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RuntimeError(f"{model} is already being tuned from {storage_dir}") from exc
        yield


# --- the stored choice ----------------------------------------------------------------------------------
SHIPPED_DIR = Path(__file__).resolve().parent / "tuned"  # the project's own tuning runs, by dataset name


def tuned_path(tuned_dir: Path, model: str) -> Path:
    return Path(tuned_dir) / f"{model}.json"


def choice_path(tuned_dir: Path | None, model: str, snapshot: str | None = None) -> Path | None:
    """The stored choice for ``model``: ``<tuned_dir>/<model>.json`` when it exists, else the one shipped in
    ``ml_core/tuned/<dataset>/`` (``<dataset>`` = the folder above ``tuned_dir``) if it was tuned on training data
    with the hash ``snapshot`` (sha256 of the train split; any snapshot when None), else None."""
    stored = _stored(tuned_dir, model, snapshot)
    return None if stored is None else stored[0]


def _stored(tuned_dir: Path | None, model: str, snapshot: str | None) -> tuple[Path, dict[str, Any] | None] | None:
    """(path, record) of :func:`choice_path`'s file; the record is None when the file is the local one and was
    not read (a shipped file is read once, to check its study name, and handed on)."""
    if tuned_dir is None:
        return None
    local = tuned_path(tuned_dir, model)
    if local.exists():
        return local, None
    shipped = tuned_path(SHIPPED_DIR / Path(tuned_dir).parent.name, model)
    if not shipped.exists():
        return None
    try:
        record = json.loads(shipped.read_text())
        name = str(record.get("study", {}).get("name", ""))
    except (json.JSONDecodeError, AttributeError):
        return None
    if snapshot is not None and f"-{snapshot[:12]}-" not in name:
        log.info("%s: tuned on other training data than this dataset's (%s); using the defaults",
                 shipped, snapshot[:12])
        return None
    return shipped, record


def save_choice(tuned_dir: Path, model_cls: type[RecommenderBase], result: TuningResult, *, dataset: str) -> Path:
    """Write the chosen configuration and the study's trial history to ``<tuned_dir>/<model>.json``."""
    space = space_of(model_cls)
    params = {k: _jsonable(getattr(result.config, k)) for k in space}
    record: dict[str, Any] = {"model": model_cls.name, "dataset": dataset, "params": params,
              "config": config_dict(result.config), "study": result.study, "trials": result.trials,
              "tuning_seconds": result.seconds, "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path = tuned_path(tuned_dir, model_cls.name)
    _, previous = load_choice(tuned_dir, model_cls)  # the local choice, else the shipped one (a resumed study)
    same = previous is not None and previous.get("study", {}).get("name") == result.study.get("name")
    record["sessions"] = [*(previous.get("sessions", []) if previous is not None and same else []),
                          result.study.get("session", {})]
    record["wall_seconds"] = round(sum(s.get("seconds", 0.0) for s in record["sessions"]), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def load_choice(tuned_dir: Path | None, model_cls: type[RecommenderBase], *, snapshot: str | None = None
                ) -> tuple[Any, dict[str, Any] | None]:
    """(config, record): the stored choice (:func:`choice_path`) applied to today's defaults, or (defaults, None)
    when none is stored. The record's ``path`` says which file it came from."""
    base = model_cls.config_cls()
    stored = _stored(tuned_dir, model_cls.name, snapshot)
    if stored is None:
        return base, None
    path, record = stored
    try:
        record = record if record is not None else json.loads(path.read_text())
        record["path"] = str(path)
        space = space_of(model_cls)
        return apply_params(base, space, {k: space[k].encode(v) for k, v in record["params"].items() if k in space}
                            ), record
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        log.warning("%s: unreadable stored configuration (%s); using the defaults", path, exc)
        return base, None


def config_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as a plain dict (for metrics and cards)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config or {})
