"""docs/ENSEMBLE.md keeps one section per dataset: a run replaces its own and leaves the others."""

from __future__ import annotations

from pathlib import Path

from ml_core.ensemble import _write_section


def test_each_dataset_keeps_its_own_section(tmp_path: Path) -> None:
    card = tmp_path / "ENSEMBLE.md"
    _write_section(card, "ml-latest-small", "# Ensemble card (ml-latest-small)\n\nfirst run\n")
    _write_section(card, "ml-100k", "# Ensemble card (ml-100k)\n\nml-100k run\n")
    _write_section(card, "ml-latest-small", "# Ensemble card (ml-latest-small)\n\nsecond run\n")
    text = card.read_text()
    assert "second run" in text and "first run" not in text and "ml-100k run" in text
    assert text.index("(ml-100k)") < text.index("(ml-latest-small)")  # sorted by dataset
    assert text.count("<!-- ensemble:ml-100k -->") == 1 and text.count("<!-- /ensemble:ml-latest-small -->") == 1


def _report(ensemble: float, best: float) -> dict:
    metrics = lambda ndcg: {"ndcg@10": ndcg, "ndcg@10_untied": ndcg, "hr@10": 0.1, "mrr@10": 0.05,  # noqa: E731
                            "coverage@10": 0.2, "gini@10": 0.9, "novelty@10": 2.0}
    selection = {"n_weight_vectors": 200, "propensity_gamma": 0.5, "dr_value": 0.5, "dr_stderr": 0.01, "dr_ips": 0.4,
                 "dr_direct": 0.3, "valid_ndcg@10_of_dr_choice": 0.1, "valid_ndcg@10_best_of_samples": 0.1,
                 "valid_ndcg@10_uniform": 0.09, "dr_vs_valid_ndcg_pearson": 0.9}
    return {"dataset": "some-data", "created_at": "now", "seed": 42, "weights": {"a": 0.6, "b": 0.4},
            "selection": selection, "test": metrics(ensemble), "singles_test": {"a": metrics(best), "b": metrics(best / 2)}}


def test_the_verdict_measures_the_target_against_this_datasets_best_single_model(tmp_path: Path) -> None:
    from ml_core.ensemble import write_ensemble_card

    card = tmp_path / "ENSEMBLE.md"
    write_ensemble_card(_report(0.0570, 0.0516), card, "cmd")  # 1.105 x the best single model: met
    assert "target >= 0.0568 (1.1 x the best single model) met" in card.read_text()
    write_ensemble_card(_report(0.0560, 0.0516), card, "cmd")
    text = card.read_text()
    assert "target >= 0.0568 (1.1 x the best single model) not met" in text and "Why:" in text


def test_the_ensemble_selects_and_tests_on_a_seeded_user_sample_when_asked(tmp_path: Path) -> None:
    """`ensemble --eval-users N` (large sets): selection and test on the same seeded users as `train --eval-users`."""
    import numpy as np

    from ml_core.ensemble import run
    from tests.ml_core.contract import synthetic_interactions

    data = synthetic_interactions()
    folder = tmp_path / "tiny"
    folder.mkdir()
    rows = ["user_id,item_id,rating,timestamp"] + [
        f"{data.user_vocab.raw_ids[u]},{data.item_vocab.raw_ids[i]},4,{t}" for u, i, t in zip(data.users, data.items, data.times,
                                                                                     strict=True)]
    (folder / "interactions.csv").write_text("\n".join(rows) + "\n")
    report = run(str(folder), ["popularity", "ease"], tmp_path / "artifacts", quick=True, eval_users=40)
    assert report["eval_users"] == 40 and report["test"]["n_users"] == 40
    assert all(m["n_users"] == 40 for m in report["singles_test"].values())
    assert np.isclose(sum(report["weights"].values()), 1.0, atol=1e-3)
    write = tmp_path / "ENSEMBLE.md"
    from ml_core.ensemble import write_ensemble_card

    write_ensemble_card({**report, "created_at": "now"}, write, "cmd")
    assert "seeded sample of 40 users" in write.read_text()
