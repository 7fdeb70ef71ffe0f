"""The CLIP poster index (ml_core.retrieval.visual) on a tiny randomly initialised CLIP and generated posters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml_core.artifacts import ArtifactError
from ml_core.builds import ClipEncoder, build_visual_index
from ml_core.serving import VisualIndex
from tests.visual_fixtures import LOOKS, make_tiny_clip, twin_posters


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> ClipEncoder:
    return ClipEncoder.load(make_tiny_clip(tmp_path_factory.mktemp("clip")))


@pytest.fixture(scope="module")
def posters(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, Path]]:
    """Movie 100 + 2i and 101 + 2i share a look (near twins); the looks differ in pattern and colour."""
    folder = tmp_path_factory.mktemp("posters")
    files = []
    for i, (name, data) in enumerate(twin_posters().items()):
        path = folder / name.lstrip("/")
        path.write_bytes(data)
        files.append((100 + i, path))
    return files


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, encoder: ClipEncoder,
          posters: list[tuple[int, Path]]) -> VisualIndex:
    out = tmp_path_factory.mktemp("built") / "visual"
    build_visual_index(out, encoder=encoder, posters=posters, batch_size=3)  # batches that split the twins
    return VisualIndex.load(out)


def test_movies_with_near_identical_posters_are_each_others_nearest_neighbours(index: VisualIndex) -> None:
    assert len(index) == 2 * len(LOOKS)
    for i in range(len(LOOKS)):
        first, second = 100 + 2 * i, 101 + 2 * i
        assert index.similar(first, 1)[0][0] == second
        assert index.similar(second, 1)[0][0] == first


def test_similar_movies_leave_out_the_movie_itself_and_come_best_first(index: VisualIndex) -> None:
    hits = index.similar(100, 7)
    assert [m for m, _ in hits].count(100) == 0
    assert len(hits) == 7
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)


def test_a_movie_without_a_poster_in_the_index_is_a_key_error(index: VisualIndex) -> None:
    assert 999 not in index
    with pytest.raises(KeyError):
        index.similar(999, 3)


def test_text_search_uses_the_saved_text_tower_which_embeds_like_the_full_model(
        index: VisualIndex, encoder: ClipEncoder) -> None:
    query = "dark rainy neon city"
    hits = index.search_text(query, 3)
    assert len(hits) == 3 and all(m in index for m, _ in hits)
    expected = encoder.encode_texts([query])[0]
    assert index._text is not None
    np.testing.assert_allclose(index._text.encode([query])[0], expected, atol=1e-5)
    # the best hit is the poster whose image vector is closest to the full model's text vector
    best = int(np.argmax(index.index.vectors @ expected))
    assert hits[0][0] == int(index.movie_ids[best])


def test_manifest_records_the_model_the_posters_and_checksums(index: VisualIndex, encoder: ClipEncoder) -> None:
    metrics = index.manifest["metrics"]
    assert metrics["model"] == encoder.source and metrics["posters"] == 8 and metrics["dims"] == 16
    assert set(index.manifest["files"]) >= {"faiss.index", "vectors.npy", "movie_ids.json"}


def test_an_altered_index_file_is_refused(tmp_path: Path, encoder: ClipEncoder,
                                          posters: list[tuple[int, Path]]) -> None:
    out = tmp_path / "visual"
    build_visual_index(out, encoder=encoder, posters=posters[:4])
    ids = out / "movie_ids.json"
    ids.write_text(ids.read_text().replace("100", "555"))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        VisualIndex.load(out)


def test_undecodable_posters_are_skipped_and_counted(tmp_path: Path, encoder: ClipEncoder,
                                                     posters: list[tuple[int, Path]]) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"<html>not a poster</html>")
    manifest = build_visual_index(tmp_path / "visual", encoder=encoder, posters=[*posters[:2], (7, broken)])
    assert manifest["metrics"]["posters"] == 2 and manifest["metrics"]["undecodable"] == 1
    assert 7 not in VisualIndex.load(tmp_path / "visual")


def test_a_rebuild_replaces_the_index_and_nothing_to_index_keeps_the_old_one(
        tmp_path: Path, encoder: ClipEncoder, posters: list[tuple[int, Path]]) -> None:
    out = tmp_path / "visual"
    build_visual_index(out, encoder=encoder, posters=posters[:2])
    build_visual_index(out, encoder=encoder, posters=posters[2:5])
    assert sorted(VisualIndex.load(out).movie_ids.tolist()) == [102, 103, 104]
    with pytest.raises(ArtifactError, match="no poster"):
        build_visual_index(out, encoder=encoder, posters=[])
    assert len(VisualIndex.load(out)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["visual"]  # no staging or old folders left


def test_offline_loading_of_weights_that_are_not_here_says_so(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="offline"):
        ClipEncoder.load(tmp_path / "nothing-saved-here")


# openai/clip-vit-base-patch32's preprocessor_config.json as the hub serves it (recorded)
OPENAI_PREPROCESSOR = {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                       "feature_extractor_type": "CLIPFeatureExtractor",
                       "image_mean": [0.48145466, 0.4578275, 0.40821073],
                       "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}


def test_the_published_vit_b_32_preprocessing_loads_without_torchvision(tmp_path: Path) -> None:
    import json

    from PIL import Image
    from transformers import CLIPImageProcessorPil

    (tmp_path / "preprocessor_config.json").write_text(json.dumps(OPENAI_PREPROCESSOR))
    processor = CLIPImageProcessorPil.from_pretrained(str(tmp_path), local_files_only=True)
    white = processor(images=[Image.new("RGB", (342, 513), (255, 255, 255))], return_tensors="pt")["pixel_values"]
    assert tuple(white.shape) == (1, 3, 224, 224)  # shortest edge to 224, then the centre 224 x 224
    expected = (1 - np.array(OPENAI_PREPROCESSOR["image_mean"])) / np.array(OPENAI_PREPROCESSOR["image_std"])
    np.testing.assert_allclose(white[0, :, 100, 100].numpy(), expected, rtol=1e-4)
