"""The demographic fairness report: hand-computed numbers, the protocol, the CLI, and data without groups."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ml_core import FitOptions
from ml_core.cli import main
from ml_core.data import load_dataset
from ml_core.evaluation import evaluate, leave_one_out
from ml_core.fairness import NoGroupsError, ScorerUnavailable, fairness_report
from ml_core.fairness.metrics import ItemSpace, list_metrics, mean_ci, permutation_p, wilson_ci
from ml_core.fairness.report import rerank
from ml_core.models.ease import EASE
from ml_core.rerank import ItemFacts

# five items: genres A, B, A+B, A, none; popularity 50..10, so item i is in popularity bucket 4 - i
GENRES = np.array([[1, 0], [0, 1], [1, 1], [1, 0], [0, 0]], bool)
POPULARITY = np.array([50.0, 40.0, 30.0, 20.0, 10.0])


def test_group_metrics_match_a_hand_computed_case() -> None:
    space = ItemSpace.build(GENRES, POPULARITY, ["A", "B"])
    ranks = np.array([1, 2, np.inf])  # the third member's held-out movie is not in the list
    tops = np.array([[0, 1], [0, 2], [1, 3]])
    histories = [np.array([3, 2, 0]), np.array([1, 4]), np.array([0])]
    m = list_metrics(ranks, tops, histories, space, k=2, matched_users=3)

    assert m["n_users"] == 3
    assert m["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3) + 0) / 3)  # 0.543643
    assert m["hr@2"] == pytest.approx(2 / 3)
    assert m["hr@2_ci"] == pytest.approx([0.20766, 0.93851], abs=1e-5)  # Wilson, 2 of 3
    assert m["ndcg@2_ci"] == [0.0, 1.0]  # +-0.572 around 0.544, clipped to NDCG's range
    # exposure over the catalogue: items 0..4 shown 2, 2, 1, 1, 0 times -> sorted (0,1,1,2,2):
    # sum_i (2i - n - 1) x_i / (n sum x) = (-2 + 0 + 4 + 8) / (5 * 6) = 1/3
    assert m["gini_exposure"] == pytest.approx(1 / 3)
    assert m["gini_matched"] == pytest.approx(1 / 3)  # the group has exactly 3 members: one draw, itself
    assert m["coverage"] == pytest.approx(0.8)
    # shown genres: A 3.5, B 2.5 (item 2 splits its unit); histories: A 3.5, B 1.5; catalogue: A 2.5, B 1.5
    assert m["kl_genre_history"] == pytest.approx(7 / 12 * math.log((7 / 12) / 0.7) + 5 / 12 * math.log((5 / 12) / 0.3),
                                                  abs=1e-5)  # 0.030523
    assert m["kl_genre_catalogue"] == pytest.approx(7 / 12 * math.log((7 / 12) / 0.625)
                                                    + 5 / 12 * math.log((5 / 12) / 0.375), abs=1e-5)  # 0.003654
    # shown buckets (0..4): 0, 1, 1, 2, 2 of 6; histories 1, 1, 1, 1, 2 of 6; catalogue one item each
    assert m["kl_popularity_history"] == pytest.approx(2 / 6 * math.log(2), abs=1e-4)  # 0.231049
    assert m["kl_popularity_catalogue"] == pytest.approx(2 * (1 / 6) * math.log(5 / 6) + 2 * (2 / 6) * math.log(5 / 3),
                                                         abs=1e-4)  # 0.279777
    assert m["popularity_share"] == pytest.approx([0, 1 / 6, 1 / 6, 2 / 6, 2 / 6], abs=1e-4)


def test_a_group_smaller_than_the_matched_size_has_no_matched_gini() -> None:
    space = ItemSpace.build(GENRES, POPULARITY, ["A", "B"])
    m = list_metrics(np.array([1.0]), np.array([[0, 1]]), [np.array([2])], space, k=2, matched_users=3)
    assert m["gini_matched"] is None and m["ndcg@2_ci"] == [None, None]


def test_intervals_and_permutation_p_by_hand() -> None:
    mean, lo, hi = mean_ci(np.array([0.5, 0.5, 0.25, 0.25]))  # sd 0.144338: half width 1.96 * 0.144338 / 2
    assert (mean, lo, hi) == pytest.approx((0.375, 0.233552, 0.516448), abs=1e-6)
    assert wilson_ci(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
    same = np.array([0.2, 0.4, 0.2, 0.4])
    assert permutation_p(same, np.array([0, 0, 1, 1]), n=200) == 1.0  # equal group means: nothing to explain
    apart = np.r_[np.zeros(30), np.ones(30)]
    assert permutation_p(apart, np.r_[np.zeros(30, int), np.ones(30, int)], n=200) == pytest.approx(1 / 201)


def test_reranker_keeps_k_unseen_candidates_and_boosts_by_anchor_genre() -> None:
    facts = ItemFacts.from_metadata([{"genres": ["A"]}, {"genres": ["B"]}, {"genres": ["A"]}, {"genres": ["B"]}],
                                    POPULARITY[:4])
    vectors = np.eye(4, dtype=np.float32)
    candidates = np.array([1, 2, 3])
    shown = rerank(np.array([1.0, 0.95, 0.0]), candidates, np.array([0]), facts, vectors, k=2)
    # relevance min-max scaled to (1, 0.95, 0); the anchor (item 0) is genre A, so items 1 and 3 (genre B) lose
    # 0.15 for sharing no genre: (0.85, 0.95, -0.15), and item 2 moves above item 1
    assert shown.tolist() == [2, 1]


def _write_dataset(folder: Path, *, with_users: bool = True) -> Path:
    """40 members in two taste groups (F: movies 1-20 Drama, M: 21-40 Action), 4 ratings each, hour apart."""
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True)
    rows, users = ["user_id,item_id,rating,timestamp"], ["user_id,age,gender,occupation"]
    for user in range(1, 41):
        female = user <= 20
        pool = np.arange(1, 21) if female else np.arange(21, 41)
        for j, item in enumerate(rng.choice(pool, size=8, replace=False)):
            rows.append(f"{user},{item},{rng.integers(3, 6)},{1_000_000 + 3600 * j + user}")
        users.append(f"{user},{[17, 30, 60][user % 3]},{'F' if female else 'M'},{'student' if user % 2 else ''}")
    (folder / "interactions.csv").write_text("\n".join(rows) + "\n")
    items = ["item_id,title,genres,year"] + [f"{i},Movie {i},{'Drama' if i <= 20 else 'Action'},{1990 + i}"
                                             for i in range(1, 41)]
    (folder / "items.csv").write_text("\n".join(items) + "\n")
    if with_users:
        (folder / "users.csv").write_text("\n".join(users) + "\n")
    return folder


def test_report_follows_the_evaluation_protocol_and_covers_every_group(tmp_path: Path) -> None:
    data = load_dataset(str(_write_dataset(tmp_path / "tiny")))
    assert set(data.user_attributes) == {"age", "gender", "occupation"}
    report = fairness_report(data, artifacts_dir=tmp_path / "none", min_group_users=5)
    split = leave_one_out(data, seed=42)
    model = EASE()
    model.fit(split.train, FitOptions(seed=42, progress=False))
    protocol = evaluate(model, split, "test", full_only=True)
    assert report["model"]["source"] == "ease"
    assert report["overall"]["before"]["ndcg@10"] == pytest.approx(protocol["ndcg@10"])
    assert report["overall"]["before"]["hr@10"] == pytest.approx(protocol["hr@10"])
    gender = report["attributes"]["gender"]
    assert [g["group"] for g in gender["groups"]] == ["F", "M"]
    assert sum(g["n_users"] for g in gender["groups"]) == report["n_users"] == 40
    assert [g["group"] for g in report["attributes"]["age"]["groups"]] == ["<18", "25-34", "56+"]  # age order
    occupation = report["attributes"]["occupation"]
    assert occupation["n_unknown"] == 20 and occupation["groups"][0]["n_users"] == 20
    # each taste group only ever sees its own genre, so its lists match its history's genre mix
    for group in gender["groups"]:
        assert group["before"]["kl_genre_history"] < 1e-3 < group["before"]["kl_genre_catalogue"]
    json.dumps(report, allow_nan=False)  # storable as JSON (admin, the nightly row)


def test_data_without_demographics_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    data = load_dataset(str(_write_dataset(tmp_path / "plain", with_users=False)))
    with pytest.raises(NoGroupsError, match="no member demographics"):
        fairness_report(data)


def test_cli_writes_the_card_plots_and_json(tmp_path: Path) -> None:
    folder = _write_dataset(tmp_path / "tiny")
    out, docs = tmp_path / "artifacts", tmp_path / "docs"
    assert main(["fairness", "--dataset", str(folder), "--out", str(out), "--docs", str(docs),
                 "--min-group-users", "5"]) == 0
    card = (docs / "FAIRNESS.md").read_text()
    assert "# Fairness report (tiny)" in card and "## By gender" in card and "| F | 20 |" in card
    for attribute in ("age", "gender", "occupation"):
        assert (docs / "img" / f"fairness_tiny_{attribute}.png").stat().st_size > 1000
    stored = json.loads((out / "tiny" / "fairness" / "report.json").read_text())
    assert stored["n_users"] == 40 and stored["model"]["source"] == "ease"


def test_cli_on_data_without_demographics_exits_2_and_says_why(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    folder = _write_dataset(tmp_path / "plain", with_users=False)
    assert main(["fairness", "--dataset", str(folder), "--out", str(tmp_path), "--docs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no member demographics" in err and "users.csv" in err
    assert not (tmp_path / "FAIRNESS.md").exists()


def _export_ensemble(root: Path, dataset: str, data, weights: dict[str, float]) -> None:  # noqa: ANN001
    """Fit each model on ``data`` and store it with the blend weights where `python -m ml_core ensemble` does."""
    from ml_core.registry import MODELS

    for name in weights:
        model = MODELS[name]()
        model.fit(data, FitOptions(seed=42, progress=False))
        model.export(root / dataset / name)
    (root / dataset / "ensemble").mkdir(parents=True, exist_ok=True)
    (root / dataset / "ensemble" / "metrics.json").write_text(json.dumps({"weights": weights}))


def test_the_trained_ensemble_ranks_when_it_was_trained_on_this_split_only(tmp_path: Path) -> None:
    data = load_dataset(str(_write_dataset(tmp_path / "tiny")))
    split = leave_one_out(data, seed=42)
    _export_ensemble(tmp_path / "good", "tiny", split.train, {"ease": 0.7, "popularity": 0.3})
    report = fairness_report(data, artifacts_dir=tmp_path / "good", min_group_users=5)
    assert report["model"]["source"] == "ensemble" and report["model"]["models"] == ["ease", "popularity"]
    # trained on every event, held-out ones included: it would flatter every group, so EASE is fitted instead
    _export_ensemble(tmp_path / "leaky", "tiny", data, {"ease": 0.7, "popularity": 0.3})
    assert fairness_report(data, artifacts_dir=tmp_path / "leaky", min_group_users=5)["model"]["source"] == "ease"
    with pytest.raises(ScorerUnavailable, match="no ensemble trained on this split"):
        fairness_report(data, model="ensemble", artifacts_dir=tmp_path / "leaky")
