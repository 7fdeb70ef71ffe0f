"""The train command: clear errors, artifacts, metrics and model cards."""

import json

import numpy as np
import pytest

from ml_core.cli import main
from ml_core.registry import MODELS
from tests.ml_core.contract import synthetic_interactions


def test_unknown_dataset_exits_2_and_names_the_valid_ones(capsys, tmp_path):
    code = main(["train", "--dataset", "ml-1b", "--models", "ease", "--out", str(tmp_path), "--docs", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "ml-1b" in err and "ml-100k" in err and "ml-latest-small" in err


def test_unknown_model_exits_2_and_lists_the_registry(capsys, tmp_path):
    code = main(["train", "--dataset", "ml-100k", "--models", "ease,gpt5", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "gpt5" in err and all(name in err for name in MODELS)


@pytest.fixture
def movielens_folder(tmp_path):
    """The synthetic log written in the ml-latest-small layout."""
    data = synthetic_interactions()
    folder = tmp_path / "tiny-movielens"
    folder.mkdir()
    lines = ["userId,movieId,rating,timestamp"] + [
        f"{data.user_vocab.raw_ids[u]},{data.item_vocab.raw_ids[i]},4.0,{t}"
        for u, i, t in zip(data.users, data.items, data.times, strict=True)]
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movieId,title,genres"] + [f"{r},Movie {r} (1999),Drama" for r in data.item_vocab.raw_ids]
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    return folder


def test_train_writes_artifacts_metrics_and_cards_and_keeps_other_models(movielens_folder, tmp_path):
    out, docs = tmp_path / "artifacts", tmp_path / "docs"
    args = ["train", "--dataset", str(movielens_folder), "--out", str(out), "--docs", str(docs), "--quick",
            "--no-progress"]
    assert main([*args, "--models", "popularity,ease"]) == 0
    assert main([*args, "--models", "itemknn"]) == 0
    run = json.loads((out / "tiny-movielens" / "metrics.json").read_text())
    assert set(run["models"]) == {"popularity", "ease", "itemknn"}
    ease = run["models"]["ease"]
    assert ease["test"]["ndcg@10"] > run["models"]["popularity"]["test"]["ndcg@10"]
    assert {"sampled_ndcg@10", "coverage@10", "gini@10", "novelty@10"} <= set(ease["test"])
    assert (out / "tiny-movielens" / "ease" / "manifest.json").exists()
    cards = (docs / "MODEL_CARDS.md").read_text()
    assert "### ease" in cards and "### popularity" in cards and "### itemknn" in cards
    assert (docs / "img" / "tiny-movielens_ease_val_ndcg.png").stat().st_size > 0


def test_a_clobbered_run_file_is_repaired_from_the_artifacts(movielens_folder, tmp_path):
    out, docs = tmp_path / "artifacts", tmp_path / "docs"
    assert main(["train", "--dataset", str(movielens_folder), "--out", str(out), "--docs", str(docs), "--quick",
                 "--no-progress", "--models", "popularity,ease"]) == 0
    run_file = out / "tiny-movielens" / "metrics.json"
    run = json.loads(run_file.read_text())
    del run["models"]["ease"]  # as if a concurrent train command wrote its stale copy
    run_file.write_text(json.dumps(run))
    assert main(["cards", "--out", str(out), "--docs", str(docs)]) == 0
    assert "### ease" in (docs / "MODEL_CARDS.md").read_text()


def test_a_dataset_trained_elsewhere_keeps_its_cards_and_a_retrained_one_is_replaced(movielens_folder, tmp_path):
    out, docs = tmp_path / "artifacts", tmp_path / "docs"
    docs.mkdir()
    other = "## aaa-elsewhere\n\nTrained on another checkout.\n\n### ease\n"
    stale = "## tiny-movielens\n\nA stale section that the new run replaces.\n"
    (docs / "MODEL_CARDS.md").write_text("# Model cards\n\nold header\n\n" + other + "\n" + stale)
    assert main(["train", "--dataset", str(movielens_folder), "--out", str(out), "--docs", str(docs), "--quick",
                 "--no-progress", "--models", "popularity"]) == 0
    cards = (docs / "MODEL_CARDS.md").read_text()
    assert "Trained on another checkout." in cards and "A stale section" not in cards and "old header" not in cards
    assert cards.index("## aaa-elsewhere") < cards.index("## tiny-movielens") < cards.index("### popularity")
    assert cards.count("## tiny-movielens") == 1


def test_out_defaults_to_the_env_variable(movielens_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path / "env-artifacts"))
    assert main(["train", "--dataset", str(movielens_folder), "--models", "popularity", "--quick",
                 "--docs", str(tmp_path / "docs"), "--no-progress"]) == 0
    assert np.isfinite(json.loads((tmp_path / "env-artifacts" / "tiny-movielens" / "metrics.json").read_text())
                       ["models"]["popularity"]["test"]["ndcg@10"])


def test_parallel_jobs_give_the_sequential_metrics(movielens_folder, tmp_path):
    args = ["train", "--dataset", str(movielens_folder), "--quick", "--no-progress", "--models", "popularity,ease,itemknn"]
    runs = {}
    for jobs in ("1", "2"):
        out, docs = tmp_path / f"artifacts{jobs}", tmp_path / f"docs{jobs}"
        assert main([*args, "--out", str(out), "--docs", str(docs), "--jobs", jobs]) == 0
        runs[jobs] = json.loads((out / "tiny-movielens" / "metrics.json").read_text())["models"]
        assert "### itemknn" in (docs / "MODEL_CARDS.md").read_text()
    assert set(runs["2"]) == {"popularity", "ease", "itemknn"}
    for name, entry in runs["1"].items():
        assert runs["2"][name]["test"] == entry["test"], name


def test_eval_users_validates_and_tests_on_one_seeded_sample_and_the_card_says_so(movielens_folder, tmp_path):
    """Large sets (issue 17): --eval-users N evaluates a seeded sample of N users, the same for every model."""
    from ml_core.data import load_dataset
    from ml_core.evaluation import leave_one_out

    data = load_dataset(str(movielens_folder))
    full = leave_one_out(data, seed=42)
    sample = leave_one_out(data, seed=42, eval_users=20)
    assert len(sample.eval_users("test")) == 20 and set(sample.eval_users("test")) <= set(full.eval_users("test"))
    assert np.array_equal(sample.eval_users("test"), leave_one_out(data, seed=42, eval_users=20).eval_users("test"))
    assert not np.array_equal(sample.eval_users("test"), leave_one_out(data, seed=7, eval_users=20).eval_users("test"))
    assert np.array_equal(sample.sampled_negatives, full.sampled_negatives)  # the negatives do not move
    assert leave_one_out(data, seed=42, eval_users=10**6).eval_sample is None  # more than there are: all
    out, docs = tmp_path / "artifacts", tmp_path / "docs"
    assert main(["train", "--dataset", str(movielens_folder), "--out", str(out), "--docs", str(docs), "--quick",
                 "--no-progress", "--models", "popularity", "--eval-users", "20"]) == 0
    run = json.loads((out / "tiny-movielens" / "metrics.json").read_text())
    assert run["protocol"]["n_eval_users"] == 20 and run["protocol"]["eval_users_sampled"] is True
    assert "20 test users (a seeded sample: --eval-users)" in (docs / "MODEL_CARDS.md").read_text()


def test_each_ensemble_model_card_says_how_it_compares_with_popularity_and_why_when_short():
    """Issue 15, section 3: the card states the ratio to popularity against the 1.5 x target and the blend weight;
    a tuned model that falls short shows what its study saw on validation against the defaults."""
    from ml_core.cards import _verdict_lines

    def entry(model, ndcg, trials=(), best=None):
        return {"model": model, "test": {"ndcg@10": ndcg}, "valid": {"n_users": 610},
                "trials": [{"number": n, "state": "complete", "value": v} for n, v in trials],
                "tuning": {"source": "tuned", "best_trial": best} if trials else {"source": "defaults"}}

    run = {"models": {"popularity": entry("popularity", 0.02)}, "blend_weights": {"kan": 0.2, "hyperbolic": 0.05}}
    [kan] = _verdict_lines(run, entry("kan", 0.05))
    assert "2.50 x" in kan and "met" in kan and "not met" not in kan and "weight 0.200" in kan
    [short] = _verdict_lines(run, entry("hyperbolic", 0.026, trials=[(0, 0.028), (14, 0.034)], best=14))
    assert "1.30 x" in short and "**not met**" in short and "weight 0.050" in short
    assert "trial 14" in short and "0.0340 against 0.0280 over 610 users" in short
    assert _verdict_lines(run, entry("ease", 0.01)) == []  # baselines carry no target
    assert _verdict_lines({"models": {}}, entry("kan", 0.05)) == []  # no popularity run: nothing to compare


def test_a_run_records_the_cpu_and_torch_kernels_it_trained_on_and_the_card_shows_them(movielens_folder, tmp_path):
    """Models sensitive to float rounding can land elsewhere on another instruction set: the card says where."""
    import torch

    out, docs = tmp_path / "artifacts", tmp_path / "docs"
    assert main(["train", "--dataset", str(movielens_folder), "--out", str(out), "--docs", str(docs), "--quick",
                 "--no-progress", "--models", "popularity"]) == 0
    platform = json.loads((out / "tiny-movielens" / "metrics.json").read_text())["platform"]
    assert platform["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and platform["cpu"]
    assert f"kernels {platform['cpu_capability']})" in (docs / "MODEL_CARDS.md").read_text()
