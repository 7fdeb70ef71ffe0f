"""Artifacts: checksums verified on load, nothing unpickled, clear errors."""

import json

import numpy as np
import pytest

from ml_core.artifacts import ArtifactError, load_artifact, save_artifact, verify_artifact, write_manifest
from ml_core.registry import load_model


def _save(directory):
    save_artifact(directory, model="ease", config={"reg": 1.0}, tensors={"weights": np.eye(3, dtype=np.float32)},
                  vocab={"items": [1, 2, 3], "users": [7]}, data_snapshot={"name": "tiny", "sha256": "ab"})


def test_manifest_lists_every_file_with_its_sha256(tmp_path):
    _save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"config.json", "weights.safetensors", "vocab.json"}
    assert manifest["model"] == "ease" and manifest["data_snapshot"]["name"] == "tiny"
    content = load_artifact(tmp_path, model="ease")
    np.testing.assert_array_equal(content["tensors"]["weights"], np.eye(3, dtype=np.float32))


def test_changed_file_is_refused_naming_the_file(tmp_path):
    _save(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"items": [1, 2, 4], "users": [7]}))
    with pytest.raises(ArtifactError, match=r"vocab\.json: checksum mismatch"):
        load_artifact(tmp_path)


def test_missing_file_and_missing_manifest_are_refused(tmp_path):
    _save(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        verify_artifact(tmp_path)
    with pytest.raises(ArtifactError, match="manifest missing"):
        verify_artifact(tmp_path / "nowhere")


def test_metrics_are_added_and_checksummed(tmp_path):
    _save(tmp_path)
    write_manifest(tmp_path, metrics={"test": {"ndcg@10": 0.5}})
    manifest = verify_artifact(tmp_path)
    assert "metrics.json" in manifest["files"] and manifest["metrics"]["test"]["ndcg@10"] == 0.5
    assert manifest["model"] == "ease"


def test_wrong_model_name_is_refused(tmp_path):
    _save(tmp_path)
    with pytest.raises(ArtifactError, match="expected 'sasrec'"):
        load_artifact(tmp_path, model="sasrec")


def test_load_model_picks_the_class_from_the_manifest(tmp_path):
    _save(tmp_path)
    model = load_model(tmp_path)
    assert model.name == "ease" and model.n_items == 3
