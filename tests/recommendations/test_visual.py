"""Visually similar movies end to end: `build_visual_index` (posters through a fake TMDB image CDN, a tiny
randomly initialised CLIP), the visual endpoint, text-to-poster search, the movie page's row, and the 503 path."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from recommendations import serving as serving_adapter
from recommendations import visual
from tests.factories import MovieFactory
from tests.visual_fixtures import LOOKS, FakeCdn, make_tiny_clip, twin_posters

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(autouse=True)
def _visual_settings(settings, tmp_path):  # noqa: ANN001, ANN202
    settings.ML_ARTIFACTS_DIR = tmp_path / "artifacts"  # no serving bundle: the catalog's rows
    settings.VISUAL_INDEX_DIR = str(tmp_path / "visual")
    settings.POSTER_CACHE_DIR = tmp_path / "posters"
    settings.POSTER_FETCH_INTERVAL_S = 0.0
    serving_adapter.reset_engine()
    visual.visual_reset()
    yield
    visual.visual_reset()
    serving_adapter.reset_engine()


@pytest.fixture
def catalogue(db) -> dict[str, int]:  # noqa: ANN001
    """Eight movies with posters (four looks, each with a near twin), one whose poster the CDN lost, one without."""
    ids: dict[str, int] = {}
    for path in twin_posters():
        ids[path] = MovieFactory(title=f"Poster {path.strip('/').split('.')[0]}", poster_path=path).id
    ids["lost"] = MovieFactory(title="Lost poster", poster_path="/lost.jpg").id
    ids["none"] = MovieFactory(title="No poster", poster_path="").id
    return ids


@pytest.fixture
def cdn() -> FakeCdn:
    return FakeCdn()


def build(clip_dir: Path, cdn: FakeCdn, *args: str) -> str:
    out = io.StringIO()
    call_command("build_visual_index", "--model", str(clip_dir), *args, transport=cdn.transport, stdout=out)
    return out.getvalue()


@pytest.fixture
def built(clip_dir: Path, cdn: FakeCdn, catalogue: dict[str, int]) -> dict[str, int]:
    build(clip_dir, cdn)
    return catalogue


def twin(catalogue: dict[str, int], look: str) -> tuple[int, int]:
    return catalogue[f"/{look}0.jpg"], catalogue[f"/{look}1.jpg"]


# ---- no index built: the feature is off ----------------------------------------------------------------------
def test_without_an_index_the_visual_endpoint_answers_503_saying_how_to_build_one(client, catalogue) -> None:  # noqa: ANN001
    response = client.get(reverse("recommendations_api:movie-visual", args=[catalogue["/disc0.jpg"]]))
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "visual_index_unavailable"
    assert "no poster index has been built" in body["detail"] and "build_visual_index" in body["detail"]


def test_without_an_index_text_to_poster_search_answers_503(client, db) -> None:  # noqa: ANN001
    response = client.get(reverse("recommendations_api:search-visual"), {"q": "dark rainy neon city"})
    assert response.status_code == 503 and "build_visual_index" in response.json()["detail"]


def test_without_an_index_the_movie_page_has_no_looks_like_this_row(client, catalogue) -> None:  # noqa: ANN001
    page = client.get(reverse("catalog:movie-detail", args=[catalogue["/disc0.jpg"]])).content.decode()
    assert 'id="movie-extras"' in page  # the extras (and their rows) did render
    assert "looks-like-this" not in page and "Looks like this" not in page


# ---- the operator's command -----------------------------------------------------------------------------------
def test_the_command_fetches_the_catalogues_posters_from_the_cdn_and_writes_a_checksummed_index(
        clip_dir, cdn, catalogue, settings, tmp_path) -> None:  # noqa: ANN001
    output = build(clip_dir, cdn)
    assert sorted(cdn.requests) == sorted(f"/t/p/w342{p}" for p in [*twin_posters(), "/lost.jpg"])
    assert "8 posters x 16 dims" in output
    assert "8 fetched, 0 already cached, 1 not on the CDN" in output
    manifest = json.loads((tmp_path / "visual" / "manifest.json").read_text())
    assert manifest["model"] == "clip-visual" and manifest["metrics"]["posters"] == 8
    assert set(json.loads((tmp_path / "visual" / "movie_ids.json").read_text())["movie_ids"]) == {
        catalogue[p] for p in twin_posters()}
    assert sorted(p.name for p in (tmp_path / "posters" / "w342").iterdir()) == sorted(
        p.lstrip("/") for p in twin_posters())


def test_a_second_build_reuses_the_cached_posters(clip_dir, cdn, catalogue) -> None:  # noqa: ANN001
    build(clip_dir, cdn)
    first = len(cdn.requests)
    output = build(clip_dir, cdn)
    assert cdn.requests[first:] == ["/t/p/w342/lost.jpg"]  # only the poster it could not get is asked for again
    assert "0 fetched, 8 already cached" in output


def test_weights_that_cannot_be_loaded_offline_fail_the_command_clearly(cdn, catalogue, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(CommandError, match="cannot load CLIP"):
        build(tmp_path / "no-such-model", cdn, "--offline")
    assert not (tmp_path / "visual").exists() and cdn.requests == []  # it failed before fetching anything


def test_a_rebuilt_index_is_served_without_a_restart(client, clip_dir, cdn, catalogue) -> None:  # noqa: ANN001
    build(clip_dir, cdn, "--limit", "2")  # the first two movies: the stripes twins
    stripes, _ = twin(catalogue, "stripes")
    disc, disc_twin = twin(catalogue, "disc")
    url = reverse("recommendations_api:movie-visual", args=[disc])
    assert client.get(url).status_code == 404  # no poster of it in this index
    assert client.get(reverse("recommendations_api:movie-visual", args=[stripes])).status_code == 200
    build(clip_dir, cdn)
    assert client.get(url).json()["items"][0]["movie_id"] == disc_twin


# ---- the endpoint -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("look", LOOKS)
def test_the_movie_with_the_near_identical_poster_comes_first(client, built, look) -> None:  # noqa: ANN001
    first, second = twin(built, look)
    response = client.get(reverse("recommendations_api:movie-visual", args=[first]), {"k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["movie_id"] == first and len(body["items"]) == 3
    assert body["items"][0]["movie_id"] == second
    assert body["items"][0]["title"] == f"Poster {look}1"
    assert body["items"][0]["poster_url"].endswith(f"/{look}1.jpg")
    assert first not in [i["movie_id"] for i in body["items"]]


def test_a_movie_without_an_indexed_poster_is_404_and_bad_k_is_400(client, built) -> None:  # noqa: ANN001
    url = reverse("recommendations_api:movie-visual", args=[built["none"]])
    assert client.get(url).status_code == 404
    assert "no poster in the visual index" in client.get(url).json()["detail"]
    assert client.get(reverse("recommendations_api:movie-visual", args=[123456789])).status_code == 404
    response = client.get(reverse("recommendations_api:movie-visual", args=[built["/disc0.jpg"]]), {"k": 0})
    assert response.status_code == 400 and '"k"' in response.content.decode()


def test_a_corrupted_index_answers_503_instead_of_wrong_neighbours(client, built, tmp_path) -> None:  # noqa: ANN001
    vectors = tmp_path / "visual" / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-4] + b"\x00\x00\x80\x3f")
    response = client.get(reverse("recommendations_api:movie-visual", args=[built["/disc0.jpg"]]))
    assert response.status_code == 503 and "checksum mismatch" in response.json()["detail"]


# ---- text-to-poster search -------------------------------------------------------------------------------------
def test_text_to_poster_search_ranks_the_posters_by_clips_text_tower(client, built) -> None:  # noqa: ANN001
    response = client.get(reverse("recommendations_api:search-visual"), {"q": "dark rainy neon city", "limit": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "visual" and body["query"] == "dark rainy neon city"
    assert len(body["results"]) == 3
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert {r["movie"]["id"] for r in body["results"]} <= {built[p] for p in twin_posters()}


def test_a_blank_visual_search_is_400(client, built) -> None:  # noqa: ANN001
    response = client.get(reverse("recommendations_api:search-visual"), {"q": "   "})
    assert response.status_code == 400


# ---- the movie page -----------------------------------------------------------------------------------------------
def test_the_movie_page_shows_a_looks_like_this_row_with_the_twin_first(client, built) -> None:  # noqa: ANN001
    first, second = twin(built, "checks")
    page = client.get(reverse("catalog:movie-detail", args=[first])).content.decode()
    assert 'data-row="looks-like-this"' in page and "Looks like this" in page
    row = page.split('<section class="movie-row" data-row="looks-like-this"', 1)[1].split("</section>", 1)[0]
    shown = [int(m) for m in re.findall(r'data-movie-id="(\d+)"', row)]
    assert shown[0] == second and first not in shown and len(shown) == 7


def test_a_movie_without_a_poster_gets_no_looks_like_this_row(client, built) -> None:  # noqa: ANN001
    page = client.get(reverse("catalog:movie-detail", args=[built["none"]])).content.decode()
    assert "Looks like this" not in page
