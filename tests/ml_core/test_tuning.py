"""Tuning by trials: a fixed trial budget, seeded and resumable studies, pruning, and the stored choice."""

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import optuna
import pytest

from ml_core import tuning
from ml_core.cli import main
from ml_core.data import interactions_from_arrays
from ml_core.ensemble import fit_or_load
from ml_core.evaluation import leave_one_out
from ml_core.interface import FitOptions, FitReport
from ml_core.models.ease import EASE, EASEConfig
from ml_core.models.popularity import Popularity
from ml_core.models.sasrec import SASRec, SASRecConfig
from ml_core.registry import MODELS
from ml_core.training import run_epochs
from ml_core.tuning import Categorical, Int, LogFloat, tune


def noisy_interactions(seed: int = 0, n_users: int = 80, n_items: int = 60, groups: int = 4):
    """Users mostly pick items of their group and sometimes popular ones: EASE's lambda matters here."""
    rng = np.random.default_rng(seed)
    pop = rng.zipf(1.5, n_items).astype(float)
    pop /= pop.sum()
    users, items, times = [], [], []
    for u in range(n_users):
        own = np.arange(u % groups, n_items, groups)
        picks: list[int] = []
        n = int(rng.integers(6, 16))
        while len(picks) < n:
            i = int(rng.choice(own) if rng.random() < 0.6 else rng.choice(n_items, p=pop))
            if i not in picks:
                picks.append(i)
        users += [u + 1] * n
        items += [i + 1 for i in picks]
        times += (1_000_000 + 60 * np.arange(n) + 7 * u).tolist()
    return interactions_from_arrays(np.array(users), np.array(items), np.array(times), name="noisy")


@pytest.fixture(scope="module")
def split():
    return leave_one_out(noisy_interactions(), seed=0)


OPTIONS = FitOptions(seed=3, progress=False)


def _params(result):
    return [(t["number"], t["params"], t["value"], t["state"]) for t in result.trials]


def test_a_fixed_number_of_trials_runs_and_trial_0_is_the_default(split, tmp_path):
    result = tune(EASE, split, OPTIONS, storage_dir=tmp_path, n_trials=5)
    assert [t["number"] for t in result.trials] == [0, 1, 2, 3, 4]
    assert all(t["state"] == "complete" for t in result.trials)
    assert result.trials[0]["params"] == {"reg": EASEConfig().reg} and result.trials[0]["default"]
    assert len({t["params"]["reg"] for t in result.trials}) == 5
    best = max(result.trials, key=lambda t: t["value"])
    assert result.config.reg == best["params"]["reg"] and result.study["best_trial"] == best["number"]
    assert result.trials[0]["value"] <= best["value"]  # never worse than the defaults on validation
    assert (tmp_path / "ease.db").exists()


def test_the_same_seed_chooses_the_same_configuration_and_another_seed_searches_elsewhere(split, tmp_path):
    first = tune(EASE, split, OPTIONS, storage_dir=tmp_path, n_trials=5)
    again = tune(EASE, split, OPTIONS, n_trials=5)  # in memory: the storage plays no part in the choice
    other = tune(EASE, split, FitOptions(seed=4, progress=False), n_trials=5)
    assert _params(first) == _params(again) and first.config == again.config
    assert [t["params"] for t in other.trials][1:] != [t["params"] for t in first.trials][1:]


def test_resuming_from_storage_continues_to_the_budget_as_if_never_stopped(split, tmp_path):
    short = tune(EASE, split, OPTIONS, storage_dir=tmp_path / "resumed", n_trials=3)
    resumed = tune(EASE, split, OPTIONS, storage_dir=tmp_path / "resumed", n_trials=5)
    whole = tune(EASE, split, OPTIONS, storage_dir=tmp_path / "whole", n_trials=5)
    assert len(short.trials) == 3 and len(resumed.trials) == 5
    assert _params(resumed)[:3] == _params(short)
    assert _params(resumed) == _params(whole)
    assert len(tune(EASE, split, OPTIONS, storage_dir=tmp_path / "resumed", n_trials=5).trials) == 5  # budget met


def test_a_study_shipped_as_a_record_goes_on_in_a_fresh_storage_as_if_never_stopped(split, tmp_path):
    short = tune(EASE, split, OPTIONS, storage_dir=tmp_path / "first-machine", n_trials=3)
    record = json.loads(json.dumps({"study": short.study, "trials": short.trials}))  # what ml_core/tuned/ holds
    resumed = tune(EASE, split, OPTIONS, storage_dir=tmp_path / "second-machine", n_trials=5, resume_from=record)
    whole = tune(EASE, split, OPTIONS, storage_dir=tmp_path / "whole", n_trials=5)
    assert _params(resumed) == _params(whole) and resumed.config == whole.config
    assert [t["seconds"] for t in resumed.trials[:3]] == [t["seconds"] for t in short.trials]  # replayed, not rerun
    other = {**record, "study": {**record["study"], "name": "another-study"}}  # another dataset's: ignored
    fresh = tune(EASE, split, OPTIONS, storage_dir=tmp_path / "third-machine", n_trials=1, resume_from=other)
    assert len(fresh.trials) == 1 and fresh.trials[0]["default"]


def test_an_interrupted_trial_runs_again_and_does_not_count(split, tmp_path):
    tune(EASE, split, OPTIONS, storage_dir=tmp_path, n_trials=2)
    name = tuning.study_name(EASE, split, tuning.space_of(EASE), OPTIONS.seed)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'ease.db'}")
    stuck = study.ask({"reg": optuna.distributions.FloatDistribution(1.0, 1e4, log=True)})  # a killed session's
    result = tune(EASE, split, OPTIONS, storage_dir=tmp_path, n_trials=3)
    states = {t["number"]: t for t in result.trials}
    assert states[stuck.number]["state"] == "fail" and states[stuck.number]["interrupted"]
    assert sum(t["state"] == "complete" for t in result.trials) == 3
    assert states[stuck.number + 1]["params"] == stuck.params


@dataclass(frozen=True)
class CurveConfig:
    """`sign` 1 ranks by popularity (a good curve), negative signs rank against it (a bad one)."""

    sign: float = 1.0
    epochs: int = 4


class CurvePopularity(Popularity):
    """Popularity trained for a few epochs through the shared epoch loop, so it reports a validation curve."""

    name = "curve_popularity"
    config_cls = CurveConfig
    search_space: ClassVar[dict] = {"sign": Categorical((1.0, -1.0, -2.0, -3.0))}

    def fit(self, data, options: FitOptions) -> FitReport:
        self._remember_data(data)
        counts = np.log1p(np.bincount(data.items, minlength=data.n_items).astype(np.float32))

        def train_epoch(epoch: int) -> float:
            self.item_scores = (self.config.sign * counts * epoch).astype(np.float32)
            return 0.0

        return run_epochs(model=self, options=options, epochs=self.config.epochs, train_epoch=train_epoch,
                          get_state=lambda: self.item_scores.copy(), set_state=lambda s: None)


def test_a_trial_that_reports_a_bad_curve_is_pruned(split):
    result = tune(CurvePopularity, split, OPTIONS, n_trials=8, prune_startup_trials=1, prune_warmup_epochs=0)
    pruned = [t for t in result.trials if t["state"] == "pruned"]
    assert pruned and all(t["params"]["sign"] < 0 and t["epochs"] < CurveConfig.epochs for t in pruned)
    assert all(t["epochs"] == CurveConfig.epochs for t in result.trials if t["params"]["sign"] > 0)
    assert result.config.sign == 1.0 and result.trials[0]["state"] == "complete"


class FragilePopularity(CurvePopularity):
    """Fails to train with strongly negative signs, as a configuration that diverges would."""

    name = "fragile_popularity"

    def fit(self, data, options: FitOptions) -> FitReport:
        if self.config.sign < -1.5:
            raise FloatingPointError("loss is NaN")
        return super().fit(data, options)


def test_a_failing_configuration_fails_its_trial_and_the_budget_still_holds(split):
    result = tune(FragilePopularity, split, OPTIONS, n_trials=8)
    failed = [t for t in result.trials if t["state"] == "fail"]
    assert len(result.trials) == 8 and failed
    assert all(t["params"]["sign"] < -1.5 and "loss is NaN" in t["error"] and not t["interrupted"] for t in failed)
    assert result.config.sign == 1.0


def test_a_torch_model_tunes_in_a_few_short_trials(split):
    base = SASRecConfig(embedding_size=8, ff_size=16, n_layers=1, eval_every=1)
    space = {"learning_rate": LogFloat(1e-3, 1e-2), "max_len": Int(5, 20), "n_heads": Categorical((1, 2))}
    result = tune(SASRec, split, FitOptions(seed=3, progress=False, max_epochs=2), n_trials=3, space=space,
                  base_config=base)
    assert len(result.trials) == 3 and result.trials[0]["params"]["max_len"] == base.max_len
    assert all(t["epochs"] <= 2 for t in result.trials)
    assert result.model.config == result.config and result.report.val_curve


def test_every_model_declares_a_search_space_that_contains_its_defaults():
    for name, cls in MODELS.items():
        space, base = tuning.space_of(cls), cls.config_cls()
        assert all(dist.contains(getattr(base, key)) for key, dist in space.items()), name
        assert tuning.trials_for(cls, None, space) == (tuning.DEFAULT_TRIALS if space else 1), name
    assert {"max_len", "learning_rate", "dropout"} <= set(tuning.space_of(MODELS["sasrec"]))
    assert {"steps", "noise_scale"} <= set(tuning.space_of(MODELS["diffusion"]))
    assert {"ode_steps", "time_unit_s"} <= set(tuning.space_of(MODELS["neural_ode"]))
    assert "curvature" in tuning.space_of(MODELS["hyperbolic"])


@pytest.fixture
def noisy_folder(tmp_path):
    """The noisy log written in the ml-latest-small layout."""
    data = noisy_interactions()
    folder = tmp_path / "noisy-movielens"
    folder.mkdir()
    rows = [f"{data.user_vocab.raw_ids[u]},{data.item_vocab.raw_ids[i]},4.0,{t}"
            for u, i, t in zip(data.users, data.items, data.times, strict=True)]
    (folder / "ratings.csv").write_text("\n".join(["userId,movieId,rating,timestamp", *rows]) + "\n")
    movies = [f"{r},Movie {r} (1999),Drama" for r in data.item_vocab.raw_ids]
    (folder / "movies.csv").write_text("\n".join(["movieId,title,genres", *movies]) + "\n")
    return folder


def test_train_tune_stores_the_choice_and_train_reuses_it(noisy_folder, tmp_path):
    out, docs = tmp_path / "artifacts", tmp_path / "docs"
    args = ["train", "--dataset", str(noisy_folder), "--out", str(out), "--docs", str(docs), "--no-progress",
            "--models", "ease,popularity", "--seed", "3"]
    assert main([*args, "--tune", "--trials", "4"]) == 0
    root = out / "noisy-movielens"
    stored = json.loads((root / "tuned" / "ease.json").read_text())
    entry = json.loads((root / "metrics.json").read_text())["models"]["ease"]
    assert len(stored["trials"]) == 4 and (root / "tuning" / "ease.db").exists()
    assert entry["tuning"]["source"] == "tuned" and entry["trials"] == stored["trials"]
    assert entry["hyperparameters"]["reg"] == stored["params"]["reg"]
    assert len(json.loads((root / "metrics.json").read_text())["models"]["popularity"]["trials"]) == 1
    cards = (docs / "MODEL_CARDS.md").read_text()
    assert "4 trials (4 complete, 0 pruned, 0 failed)" in cards and "in 1 session(s)" in cards
    assert (docs / "img" / "noisy-movielens_ease_trials.png").stat().st_size > 0

    assert main([*args, "--tune", "--trials", "5", "--models", "ease"]) == 0  # a later session continues the study
    stored = json.loads((root / "tuned" / "ease.json").read_text())
    assert len(stored["trials"]) == 5 and [s["trials_run"] for s in stored["sessions"]] == [4, 1]
    assert all(s["torch_threads"] >= 1 for s in stored["sessions"])  # what a refit must match to give the same model
    assert "5 trials (5 complete, 0 pruned, 0 failed)" in (docs / "MODEL_CARDS.md").read_text()

    stored["params"]["reg"] = 77.0  # as if the study had chosen 77: train without --tune must train that
    (root / "tuned" / "ease.json").write_text(json.dumps(stored))
    assert main(args) == 0
    entry = json.loads((root / "metrics.json").read_text())["models"]["ease"]
    assert entry["hyperparameters"]["reg"] == 77.0 and entry["tuning"]["source"] == "tuned"
    assert json.loads((root / "ease" / "config.json").read_text())["reg"] == 77.0


def test_a_dataset_never_tuned_trains_the_defaults_and_says_so(noisy_folder, tmp_path):
    out, docs = tmp_path / "artifacts", tmp_path / "docs"
    assert main(["train", "--dataset", str(noisy_folder), "--out", str(out), "--docs", str(docs), "--no-progress",
                 "--models", "ease"]) == 0
    entry = json.loads((out / "noisy-movielens" / "metrics.json").read_text())["models"]["ease"]
    assert entry["hyperparameters"]["reg"] == EASEConfig().reg and entry["tuning"]["source"] == "defaults"
    assert "the model's defaults (no tuning study stored" in (docs / "MODEL_CARDS.md").read_text()


def test_tune_refuses_quick(noisy_folder, tmp_path, capsys):
    assert main(["train", "--dataset", str(noisy_folder), "--out", str(tmp_path), "--docs", str(tmp_path),
                 "--models", "ease", "--tune", "--quick"]) == 2
    assert "--quick" in capsys.readouterr().err


def test_the_serving_build_refits_a_model_when_the_stored_choice_changes(split, tmp_path, caplog):
    options = FitOptions(seed=3, progress=False)
    model, _ = fit_or_load("ease", split, options, tmp_path / "ease", quick=False)
    assert model.config.reg == EASEConfig().reg
    (tmp_path / "tuned").mkdir()
    (tmp_path / "tuned" / "ease.json").write_text(json.dumps({"model": "ease", "params": {"reg": 33.0}}))
    model, entry = fit_or_load("ease", split, options, tmp_path / "ease", quick=False)
    assert model.config.reg == 33.0 and entry["hyperparameters"]["reg"] == 33.0
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ml_core.ensemble"):
        fit_or_load("ease", split, options, tmp_path / "ease", quick=False)  # unchanged choice: reused
    assert "reusing ease" in caplog.text


def test_a_stored_choice_decodes_tuples_back(tmp_path):
    from ml_core.models.diffusion import DiffRec

    (tmp_path / "diffusion.json").write_text(json.dumps({"model": "diffusion", "params": {"hidden_dims": [600]}}))
    config, record = tuning.load_choice(tmp_path, DiffRec)
    assert config.hidden_dims == (600,) and record is not None
    assert tuning.load_choice(Path(tmp_path / "elsewhere"), DiffRec)[1] is None


def test_a_shipped_choice_applies_only_to_the_training_data_it_was_tuned_on(tmp_path, monkeypatch):
    from ml_core.models.diffusion import DiffRec

    shipped = tmp_path / "shipped"
    (shipped / "mydata").mkdir(parents=True)
    record = {"model": "diffusion", "params": {"hidden_dims": [600]}, "study": {"name": "diffusion-abcdef012345-space1-seed42"}}
    (shipped / "mydata" / "diffusion.json").write_text(json.dumps(record))
    monkeypatch.setattr(tuning, "SHIPPED_DIR", shipped)
    tuned = tmp_path / "artifacts" / "mydata" / "tuned"
    config, found = tuning.load_choice(tuned, DiffRec, snapshot="abcdef012345" + "9" * 52)
    assert config.hidden_dims == (600,) and found is not None and found["path"].startswith(str(shipped))
    assert tuning.load_choice(tuned, DiffRec, snapshot="f" * 64)[1] is None  # other data: the defaults
    assert tuning.load_choice(tmp_path / "artifacts" / "other" / "tuned", DiffRec)[1] is None  # other dataset
    tuned.mkdir(parents=True)
    (tuned / "diffusion.json").write_text(json.dumps({"model": "diffusion", "params": {"hidden_dims": [300]}}))
    config, found = tuning.load_choice(tuned, DiffRec, snapshot="f" * 64)  # a local choice always wins
    assert config.hidden_dims == (300,) and found is not None and found["path"] == str(tuned / "diffusion.json")


def test_an_artifact_trained_before_a_config_field_existed_is_reused_with_its_default(split, tmp_path, caplog,
                                                                                     monkeypatch):
    """A field added to a model's config (its default keeps the old behaviour) must not refit every stored model."""
    import dataclasses

    from ml_core.registry import MODELS

    options = FitOptions(seed=3, progress=False)
    fit_or_load("ease", split, options, tmp_path / "ease", quick=False)
    grown = dataclasses.make_dataclass("GrownEASEConfig", [("new_knob", int, 0)], bases=(EASEConfig,), frozen=True)
    monkeypatch.setattr(MODELS["ease"], "config_cls", grown)
    with caplog.at_level(logging.INFO, logger="ml_core.ensemble"):
        fit_or_load("ease", split, options, tmp_path / "ease", quick=False)
    assert "reusing ease" in caplog.text  # a changed choice still refits: the test above
