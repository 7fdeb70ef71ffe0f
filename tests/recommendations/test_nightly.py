"""The nightly job's Django side: event export with a watermark, step records, failure then re-run."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from lakehouse import tables as T
from recommendations import nightly
from recommendations.models import PipelineRun
from tests.factories import MovieFactory, UserFactory

pytestmark = pytest.mark.django_db


def _event(user, movie, kind: str = "click", **kw):  # noqa: ANN001, ANN202
    from events.models import Event

    return Event.objects.create(
        user=user,
        movie=movie,
        kind=kind,
        idempotency_key=f"k{Event.objects.count()}",
        occurred_at=timezone.now() - timedelta(hours=1),
        **kw,
    )


def test_export_writes_each_event_once_in_the_bronze_schema(tmp_path: Path, settings) -> None:  # noqa: ANN001
    settings.EVENTS_EXPORT_LAG_S = 0
    user, movie = UserFactory(), MovieFactory(id=1)
    first = _event(user, movie, "rating", value=4.5)
    _event(user, movie, "impression", propensity=0.2)
    exported = nightly.events_export(directory=tmp_path, now=timezone.now())
    assert exported.rows == 2
    rows = [json.loads(line) for line in exported.path.read_text().splitlines()]
    assert set(rows[0]) == set(T.EVENT_EXPORT_COLUMNS)
    assert rows[0] == {
        T.EVENT_ID: str(first.pk),
        T.USER_ID: user.pk,
        T.MOVIE_ID: 1,
        T.KIND: "rating",
        T.VALUE: 4.5,
        T.CREATED_AT: first.occurred_at.isoformat(),
        T.PROPENSITY: None,
    }
    again = nightly.events_export(directory=tmp_path, now=timezone.now())
    assert (again.rows, again.path) == (0, None)
    third = _event(user, movie, "watch", value=0.9)
    newer = nightly.events_export(directory=tmp_path, now=timezone.now())
    assert [json.loads(x)[T.EVENT_ID] for x in newer.path.read_text().splitlines()] == [str(third.pk)]
    assert len(list(tmp_path.glob("events-*.jsonl"))) == 2


def test_a_failed_step_is_recorded_and_a_rerun_succeeds(tmp_path: Path, settings, monkeypatch) -> None:  # noqa: ANN001
    settings.LAKEHOUSE_EVENTS_DIR = tmp_path
    calls = []

    def flaky(*, layers, stop_spark=False):  # noqa: ANN001, ANN202
        calls.append(layers)
        if len(calls) == 1:
            raise RuntimeError("spark went away")
        return {"rows": 42, "tables": {"bronze_events": {"rows": 42}}}

    monkeypatch.setattr(nightly, "lakehouse_build", flaky)
    with pytest.raises(RuntimeError, match="spark went away"):
        nightly.nightly_run(steps=("export", "bronze", "reload"))
    failed = PipelineRun.objects.get(step="bronze")
    assert failed.status == PipelineRun.Status.FAILED and "spark went away" in failed.error
    assert not PipelineRun.objects.filter(step="reload").exists()
    runs = nightly.nightly_run(steps=("export", "bronze", "reload"))
    assert [(r.step, r.status, r.rows) for r in runs] == [
        ("export", "succeeded", 0),
        ("bronze", "succeeded", 42),
        ("reload", "succeeded", 0),
    ]
    assert runs[1].detail == {"tables": {"bronze_events": {"rows": 42}}}


def test_unknown_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown step"):
        nightly.nightly_run(steps=("export", "deploy"))


def test_the_beat_schedule_runs_the_nightly_task(settings) -> None:  # noqa: ANN001
    from recommendations.tasks import run_nightly_pipeline

    entry = settings.CELERY_BEAT_SCHEDULE["nightly-lakehouse"]
    assert entry["task"] == run_nightly_pipeline.name


# --- retrain -> reload: the serving bundle rebuilt from gold, then served ---------------------------------------
def _write_gold(root: Path, sequences: dict[int, list[int]], dataset: str = "tiny") -> None:
    """gold_user_sequences and gold_item_features as the gold job writes them (the columns training reads)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    users = sorted(sequences)
    write_deltalake(
        str(root / T.GOLD_USER_SEQUENCES),
        pa.table(
            {
                T.DATASET: [dataset] * len(users),
                T.USER_ID: pa.array(users, pa.int64()),
                T.ITEM_IDS: pa.array([sequences[u] for u in users], pa.list_(pa.int64())),
                T.TIMESTAMPS: pa.array(
                    [[1_000_000 + u * 1000 + t * 10 for t in range(len(sequences[u]))] for u in users],
                    pa.list_(pa.int64()),
                ),
                T.RATINGS: pa.array([[4.0] * len(sequences[u]) for u in users], pa.list_(pa.float64())),
                T.LENGTH: pa.array([len(sequences[u]) for u in users], pa.int64()),
            }
        ),
        mode="overwrite",
    )
    movies = sorted({m for seq in sequences.values() for m in seq})
    write_deltalake(
        str(root / T.GOLD_ITEM_FEATURES),
        pa.table(
            {
                T.DATASET: [dataset] * len(movies),
                T.MOVIE_ID: pa.array(movies, pa.int64()),
                T.TITLE: [f"gold title {m}" for m in movies],
                T.GENRES: pa.array([["Drama"] for _ in movies], pa.list_(pa.string())),
                T.YEAR: pa.array([1990 for _ in movies], pa.int64()),
            }
        ),
        mode="overwrite",
    )


def _tiny_sequences(extra_movie: int | None = None) -> dict[int, list[int]]:
    """The shared tiny serving data (four genre clusters, movies 101-140); ``extra_movie`` ends every 2nd history."""
    from tests.ml_core.serving_bundle import tiny_interactions

    data = tiny_interactions()
    seqs: dict[int, list[int]] = {}
    for u, i in zip(data.users.tolist(), data.items.tolist(), strict=True):
        seqs.setdefault(int(data.user_vocab.raw_ids[u]), []).append(int(data.item_vocab.raw_ids[i]))
    if extra_movie is not None:
        for user in list(seqs)[::2]:
            seqs[user].append(extra_movie)
    return seqs


@pytest.fixture
def gold_serving(settings, tmp_path: Path):  # noqa: ANN001, ANN201
    """Gold tables of the tiny data, artifacts in tmp, two fast serving models, one epoch each."""
    from recommendations import serving as serving_adapter

    settings.LAKEHOUSE_ROOT = tmp_path / "lake"
    settings.ML_ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.NIGHTLY_DATASET = "tiny"
    settings.NIGHTLY_MODELS = "popularity"
    settings.NIGHTLY_SERVING_MODELS = ["popularity", "ease"]
    settings.NIGHTLY_MAX_EPOCHS = 1
    settings.APEX_SERVING_TIER = "3"  # FAISS + TF-IDF: loads fast, serves the bundle's item space
    _write_gold(tmp_path / "lake", _tiny_sequences())
    serving_adapter.reset_engine()
    yield tmp_path
    serving_adapter.reset_engine()


def test_the_nightly_retrain_builds_a_bundle_from_gold_that_the_engine_then_serves(gold_serving: Path) -> None:
    from ml_core.serving_artifacts import verify_bundle
    from recommendations import serving as serving_adapter
    from recommendations.models import EnsembleWeights, ModelArtifact

    for movie_id in [*range(101, 141), 500]:  # the catalog shares gold's id space and holds one more movie
        MovieFactory(id=movie_id, title=f"Catalog Title {movie_id}")
    first = {r.step: r for r in nightly.nightly_run(steps=("retrain", "reload"))}
    bundle = first["retrain"].detail["bundle"]
    assert first["retrain"].rows == sum(len(s) for s in _tiny_sequences().values())
    assert bundle["models"] == ["popularity", "ease"] and bundle["gold_versions"][T.GOLD_USER_SEQUENCES] == 0
    assert first["reload"].detail["version"] == bundle["version"] == first["reload"].detail["bundle"]["version"]
    serving = gold_serving / "artifacts" / "serving"
    assert verify_bundle(serving)["ok"] and verify_bundle(serving)["version"] == bundle["version"]
    served = serving_adapter.get_engine()
    assert served.manifest_version == bundle["version"] and 999 not in served.movie_ids
    movie_meta = {m: served.metadata(m) for m in served.movie_ids}
    assert movie_meta[101]["title"] == "Catalog Title 101" and movie_meta[500]["title"] == "Catalog Title 500"
    assert EnsembleWeights.objects.get(is_active=True).version == bundle["weights_version"]

    _write_gold(gold_serving / "lake", _tiny_sequences(extra_movie=999))  # new events reached gold overnight
    second = {r.step: r for r in nightly.nightly_run(steps=("retrain", "reload"))}
    new = second["retrain"].detail["bundle"]
    assert new["version"] != bundle["version"] and new["gold_versions"][T.GOLD_USER_SEQUENCES] == 1
    assert serving_adapter.get_engine() is served  # the same process, reloaded in place on the published version
    assert served.manifest_version == new["version"] == second["reload"].detail["version"] and 999 in served.movie_ids
    assert served.metadata(999)["title"] == "gold title 999"
    assert EnsembleWeights.objects.get(is_active=True).version == second["reload"].detail["bundle"]["weights_version"]
    assert second["reload"].detail["bundle"]["weights_activated"]
    again = nightly.nightly_run(steps=("reload",))[0].detail  # a re-run of the reload alone changes nothing
    assert (again["version"], again["bundle"]["weights_activated"]) == (new["version"], False)
    assert ModelArtifact.objects.filter(version=new["version"], name__in=["popularity", "ease", "bundle"]).count() == 3


def test_a_failed_bundle_build_keeps_the_served_bundle_and_a_rerun_replaces_it(gold_serving: Path, monkeypatch) -> None:  # noqa: ANN001
    import ml_core.serving_build as serving_build
    from ml_core.serving_artifacts import verify_bundle
    from recommendations import serving as serving_adapter

    old = nightly.nightly_run(steps=("retrain", "reload"))[0].detail["bundle"]["version"]
    served = serving_adapter.get_engine()

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("killed while calibrating")

    monkeypatch.setattr(serving_build, "calibrate_gating", broken)  # fails after the new bundle's files are written
    with pytest.raises(RuntimeError, match="killed while calibrating"):
        nightly.nightly_run(steps=("retrain", "reload"))
    failed = PipelineRun.objects.filter(step="retrain").order_by("-started_at")[0]
    assert failed.status == PipelineRun.Status.FAILED and "killed while calibrating" in failed.error
    assert PipelineRun.objects.filter(step="reload").count() == 1  # the failed night did not ask for a reload
    serving = gold_serving / "artifacts" / "serving"
    assert verify_bundle(serving) == {**verify_bundle(serving), "ok": True, "version": old}
    assert serving_adapter.get_engine().manifest_version == old

    monkeypatch.undo()
    runs = nightly.nightly_run(steps=("retrain", "reload"))
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert serving_adapter.get_engine().manifest_version == runs[1].detail["version"] != old
    assert served.manifest_version == runs[0].detail["bundle"]["version"]  # reloaded in place
    assert verify_bundle(serving)["ok"] and not (serving.parent / ".serving.building").exists()


def test_the_nightly_rebuild_evaluates_on_at_most_nightly_eval_users_seeded_members(gold_serving: Path, settings) -> None:  # noqa: ANN001
    """At a real catalogue's size full ranking over every member would take the night: the retrain and the bundle
    validate, select weights and test on a seeded sample of NIGHTLY_EVAL_USERS members."""
    import json

    settings.NIGHTLY_EVAL_USERS = 7
    run = nightly.nightly_run(steps=("retrain",))[0]
    assert run.status == "succeeded", run.error
    assert run.detail["models"]["popularity"]["test"]["n_users"] == 7
    assert run.detail["bundle"]["test"]["n_users"] == 7
    ensemble = json.loads((gold_serving / "artifacts" / "serving" / "ensemble.json").read_text())
    assert ensemble["n_eval_users"] == 7 and ensemble["eval_users_sampled"] is True
