"""Issue 17: a synthetic million-rating set through the commands a user runs: synth, train, ensemble, serving build.

Slow (13 min on 2 cores at load 1-2: two epochs of each model, validation and test on 500 seeded users). Run with
``pytest -m slow tests/ml_core/test_scale_slow.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml_core.blending import ENSEMBLE_MODELS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(5400)]

ROOT = Path(__file__).resolve().parents[2]
EVAL_USERS = 500


def _ml_core(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ml_core", *args], cwd=ROOT, check=True)


def test_a_million_ratings_train_evaluate_and_serve_end_to_end(tmp_path: Path) -> None:
    data_dir, artifacts, docs = tmp_path / "synth-1m", tmp_path / "artifacts", tmp_path / "docs"
    _ml_core("synth", "--scale", "1m", "--out", str(data_dir), "--no-progress")
    models = ["popularity", "ease", *ENSEMBLE_MODELS]
    _ml_core("train", "--dataset", str(data_dir), "--models", ",".join(models), "--quick", "--eval-users",
             str(EVAL_USERS), "--out", str(artifacts), "--docs", str(docs), "--no-progress")
    trained = artifacts / "synth-1m"
    test = {m: json.loads((trained / m / "metrics.json").read_text())["test"] for m in models}
    assert all(row["n_users"] == EVAL_USERS for row in test.values())
    assert test["ease"]["ndcg@10"] > test["popularity"]["ndcg@10"] > 0  # the set has tastes to learn
    assert "synth-1m" in (docs / "MODEL_CARDS.md").read_text()

    _ml_core("ensemble", "--dataset", str(data_dir), "--out", str(artifacts), "--docs", str(docs), "--quick",
             "--eval-users", str(EVAL_USERS))
    report = json.loads((trained / "ensemble" / "metrics.json").read_text())
    assert report["eval_users"] == EVAL_USERS and report["test"]["ndcg@10"] > test["popularity"]["ndcg@10"]

    from ml_core.data import load_dataset
    from ml_core.serving import Tier, load_engine
    from ml_core.serving_build import build_serving

    data = load_dataset(str(data_dir))
    summary = build_serving(data, None, tmp_path / "serving", model_root=trained, quick=True)
    assert set(summary["models"]) == set(ENSEMBLE_MODELS)
    history = [int(m) for m in data.item_vocab.raw_ids[data.items[data.users == 0]][:20]]
    for tier in (Tier.ONNX, Tier.LITE):
        served = load_engine(tmp_path / "serving", tier).recommend_user(history, k=10)
        assert len(served.items) == 10 and not {i["movie_id"] for i in served.items} & set(history)
