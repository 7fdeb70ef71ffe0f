"""`manage.py build_serving_artifacts` on the catalog's ratings: bundle, active weights row, artifact rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from tests.factories import MovieFactory, RatingFactory, UserFactory
from tests.ml_core.serving_bundle import tiny_interactions, tiny_metadata

pytestmark = pytest.mark.django_db


def _catalog_from_tiny_data() -> None:
    meta = tiny_metadata()
    movies = {m: MovieFactory(id=m, title=v["title"], year=v["year"], genres=v["genres"]) for m, v in meta.items()}
    data = tiny_interactions()
    users = {}
    for u, i, t in zip(data.users.tolist(), data.items.tolist(), data.times.tolist(), strict=True):
        raw_user = int(data.user_vocab.raw_ids[u])
        user = users.setdefault(raw_user, UserFactory(username=f"tiny{raw_user}"))
        RatingFactory(user=user, movie=movies[int(data.item_vocab.raw_ids[i])], value=4.0,
                      rated_at=dt.datetime.fromtimestamp(t, tz=dt.UTC))


def test_the_command_builds_a_bundle_and_activates_its_dr_weights(settings, tmp_path) -> None:  # noqa: ANN001
    from recommendations.models import EnsembleWeights, ModelArtifact
    from recommendations.serving_selectors import artifacts_health

    settings.ML_ARTIFACTS_DIR = tmp_path
    _catalog_from_tiny_data()
    call_command("build_serving_artifacts", "--dataset", "catalog", "--quick", "--models", "ease,itemknn",
                 "--no-onnx")
    active = EnsembleWeights.objects.get(is_active=True)
    assert set(active.weights) == {"ease", "itemknn"} and active.dr_value is not None
    assert (tmp_path / "serving" / "manifest.json").exists() and artifacts_health()["ok"]
    names = set(ModelArtifact.objects.values_list("name", flat=True))
    assert {"ease", "itemknn", "bundle", "rating"} <= names
    rating = ModelArtifact.objects.get(name="rating")
    assert set(rating.metrics["test"]) == {"global_mean", "baseline", "model"}


def test_an_empty_catalog_is_a_clear_error(settings, tmp_path) -> None:  # noqa: ANN001
    settings.ML_ARTIFACTS_DIR = tmp_path
    with pytest.raises(CommandError, match="no ratings yet"):
        call_command("build_serving_artifacts", "--dataset", "catalog", "--quick")


def test_a_movielens_layout_folder_builds_with_a_seeded_sample_of_evaluation_users(settings, tmp_path) -> None:  # noqa: ANN001
    """Any MovieLens-layout folder (here one `ml_core synth` writes) serves through the same command; with
    --eval-users the weights are selected and tested on that many seeded users, and the bundle says so."""
    import json

    from ml_core import synth
    from recommendations.models import EnsembleWeights

    settings.ML_ARTIFACTS_DIR = tmp_path / "artifacts"
    folder = tmp_path / "synth-small"
    synth.write_dataset(synth.SynthSpec(users=200, items=300, ratings=8_000, seed=5, chunk_users=64), folder)
    call_command("build_serving_artifacts", "--dataset", str(folder), "--quick", "--models", "ease,itemknn",
                 "--no-onnx", "--eval-users", "60")
    ensemble = json.loads((tmp_path / "artifacts" / "serving" / "ensemble.json").read_text())
    assert ensemble["dataset"] == "synth-small"
    assert ensemble["n_eval_users"] == 60 and ensemble["eval_users_sampled"] is True
    assert ensemble["metrics"]["test"]["n_users"] == 60
    assert (tmp_path / "artifacts" / "synth-small" / "ease" / "manifest.json").exists()
    assert EnsembleWeights.objects.get(is_active=True).weights.keys() == {"ease", "itemknn"}


def test_a_folder_that_is_not_a_dataset_is_a_clear_error(settings, tmp_path) -> None:  # noqa: ANN001
    settings.ML_ARTIFACTS_DIR = tmp_path
    with pytest.raises(CommandError, match="no-such-folder"):
        call_command("build_serving_artifacts", "--dataset", str(tmp_path / "no-such-folder"), "--quick")
