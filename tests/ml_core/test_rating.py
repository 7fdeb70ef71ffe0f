"""The explicit-rating predictor: accuracy against the global mean on real ratings, fold-in, artifacts, serving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml_core.artifacts import ArtifactError
from ml_core.data import load_dataset
from ml_core.rating import (
    RatingConfig,
    RatingPredictor,
    evaluate_ratings,
    fit_rating_predictor,
    half_stars,
    rating_split,
)
from ml_core.serving import Tier, load_engine


@pytest.fixture(scope="module")
def slice_data():  # noqa: ANN201
    """The first 150 users of the embedded ml-latest-small (about 20,000 real ratings)."""
    data = load_dataset("ml-latest-small")
    return data.subset(data.users < 150)


@pytest.fixture(scope="module")
def fitted(slice_data):  # noqa: ANN001, ANN201
    return fit_rating_predictor(slice_data, seed=0)


def test_the_predictor_beats_the_global_mean_on_real_ratings(fitted) -> None:  # noqa: ANN001
    model, metrics = fitted
    test = metrics["test"]
    assert test["model"]["n"] == test["global_mean"]["n"] > 100
    assert test["model"]["rmse"] < test["global_mean"]["rmse"]
    assert test["model"]["mae"] < test["global_mean"]["mae"]
    assert test["baseline"]["rmse"] < test["global_mean"]["rmse"]
    assert metrics["valid_rmse"] == min(t["valid_rmse"] for t in metrics["trials"])


def test_the_split_holds_out_each_users_last_two_ratings_by_time(slice_data) -> None:  # noqa: ANN001
    split = rating_split(slice_data)
    test, valid = split.targets["test"], split.targets["valid"]
    assert len(split.train) == len(slice_data) - len(test["items"]) - len(valid["items"])
    for u, history in zip(test["users"][:20].tolist(), test["histories"][:20], strict=True):
        rows = np.flatnonzero(slice_data.users == u)
        last = rows[np.lexsort((slice_data.tiebreak[rows], slice_data.times[rows]))][-1]  # equal times: the key
        assert slice_data.times[history].max() <= slice_data.times[last] and last not in history


def test_a_users_own_ratings_move_the_prediction(fitted, slice_data) -> None:  # noqa: ANN001
    model, _ = fitted
    movies = slice_data.item_vocab.raw_ids[:30].tolist()
    target = movies[-1]
    fan = model.predict_movies(movies[:20], [5.0] * 20, [target])[0]
    critic = model.predict_movies(movies[:20], [1.0] * 20, [target])[0]
    newcomer = model.predict_movies([], [], [target])[0]
    assert critic < newcomer < fan
    assert all(0.5 <= v <= 5.0 for v in (fan, critic, newcomer))


def test_unknown_movies_get_none_and_mismatched_input_is_refused(fitted) -> None:  # noqa: ANN001
    model, _ = fitted
    assert model.predict_movies([1], [4.0], [987654321]) == [None]
    with pytest.raises(ValueError, match="2 movies but 1 ratings"):
        model.predict_movies([1, 2], [4.0], [3])


def test_export_then_load_predicts_the_same_and_a_tampered_file_is_refused(fitted, tmp_path: Path) -> None:  # noqa: ANN001
    model, metrics = fitted
    model.export(tmp_path / "rating", metrics=metrics)
    loaded = RatingPredictor.load(tmp_path / "rating")
    history, ratings, movies = [1, 2, 3], [4.0, 2.5, 5.0], [6, 10, 32, 47]
    assert loaded.predict_movies(history, ratings, movies) == model.predict_movies(history, ratings, movies)
    weights = tmp_path / "rating" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        RatingPredictor.load(tmp_path / "rating")


def test_baseline_only_configuration_equals_the_baseline_row(slice_data) -> None:  # noqa: ANN001
    split = rating_split(slice_data)
    model = RatingPredictor(RatingConfig(embedding_size=0))
    model.fit(split.train)
    result = evaluate_ratings(model, slice_data, split)
    assert result["model"] == result["baseline"]


def test_half_stars_round_for_display() -> None:
    assert [half_stars(v) for v in (3.74, 3.75, 4.2, 0.1, -2.0, 7.0)] == [3.5, 4.0, 4.0, 0.5, 0.5, 5.0]


def test_the_serving_engine_predicts_ratings_from_the_bundle(serving_bundle: Path) -> None:
    engine = load_engine(serving_bundle, Tier.LITE)  # numpy only: every tier has it
    value = engine.predict_rating([101, 102, 103], [5.0, 4.0, 5.0], 104)
    assert value is not None and 0.5 <= value <= 5.0
    assert engine.predict_rating([101], [4.0], 987654) is None
    assert (serving_bundle / "rating" / "manifest.json").exists()


def test_rows_without_a_rating_are_left_out_and_none_at_all_is_refused(slice_data) -> None:  # noqa: ANN001
    unrated = slice_data.subset(slice_data.users < 40)
    unrated.ratings = unrated.ratings.copy()
    unrated.ratings[::3] = np.nan  # clicks and watches from the lakehouse carry no value
    model, metrics = fit_rating_predictor(unrated, seed=0, space=[{"embedding_size": 0}])
    assert np.isfinite(model.mu) and metrics["test"]["model"]["n"] > 0
    unrated.ratings[:] = np.nan
    with pytest.raises(ValueError, match="no explicit ratings"):
        fit_rating_predictor(unrated)


def test_the_predictor_fits_with_fit_options_like_every_model(slice_data) -> None:  # noqa: ANN001
    from ml_core.interface import FitOptions, FitReport

    train = rating_split(slice_data).train
    full, capped = RatingPredictor(RatingConfig(epochs=4)), RatingPredictor(RatingConfig(epochs=4))
    report = full.fit(train, FitOptions(seed=5, progress=False))
    assert isinstance(report, FitReport) and report.epochs == 4 and report.n_parameters > 0
    assert capped.fit(train, FitOptions(seed=5, progress=False, max_epochs=1)).epochs == 1  # the epoch cap applies
    assert not np.allclose(full.item_factors, capped.item_factors)
    again = RatingPredictor(RatingConfig(epochs=4))
    again.fit(train, FitOptions(seed=5, progress=False))
    np.testing.assert_array_equal(again.item_factors, full.item_factors)  # the seed comes from the options
