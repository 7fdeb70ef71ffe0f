"""TMDB enrichment: the CSV dumps + HetRec directors on real shared data, and the API client on recorded JSON."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Max

from catalog.importers import import_movielens
from catalog.importers.tmdb import import_tmdb
from catalog.models import ML100K_ID_OFFSET, Credit, Movie, Rating
from catalog.tmdb_client import TMDBClient, TMDBError
from tests.factories import MovieFactory

from .conftest import SHARED

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"


def test_ml100k_with_tmdb_and_directors_from_shared_data(ml100k_slice: Path) -> None:
    if not (SHARED / "tmdb").exists() or not (SHARED / "hetrec2011").exists():
        pytest.skip("../shared/data/tmdb or hetrec2011 is not on this machine")
    import_movielens(ml100k_slice, progress=False)
    call_command("import_tmdb", "--path", str(SHARED / "tmdb"), "--directors", str(SHARED / "hetrec2011"), "--quiet")

    toy_story = Movie.objects.get(ml100k_id=1)
    assert (toy_story.id, toy_story.title, toy_story.tmdb_id) == (1, "Toy Story", 862)  # exact-title match
    assert toy_story.poster_path.startswith("/") and toy_story.overview.startswith("Led by Woody")
    assert toy_story.collection.name == "Toy Story Collection"
    assert "toy" in toy_story.keywords and toy_story.vote_count > 1000
    assert list(toy_story.credits.filter(role="director").values_list("person__name", flat=True)) == [
        "John Lasseter"]
    assert Movie.objects.count() == 1664  # 1,682 items; 18 duplicate titles share one movie
    assert Movie.objects.filter(id__gte=ML100K_ID_OFFSET).count() > 400  # no exact title in ml-latest-small
    assert Rating.objects.filter(source="ml-100k").count() <= 3000
    assert Rating.objects.filter(user__username="ml-100k-196", movie__ml100k_id=242).exists()  # u.data line 1
    # Seven (1995): HetRec's IMDb id disagrees with links.csv, so its (wrong) director is dropped (SOURCE.md)
    assert not Credit.objects.filter(movie_id=47, role="director").exists()

    before = (Credit.objects.count(), Movie.objects.aggregate(m=Max("updated_at"))["m"])
    report = import_tmdb(path=SHARED / "tmdb", directors=SHARED / "hetrec2011", progress=False)
    assert report.changed == 0, report
    assert (Credit.objects.count(), Movie.objects.aggregate(m=Max("updated_at"))["m"]) == before


def _recorded(request: httpx.Request) -> httpx.Response:
    """Serve the recorded TMDB responses: /movie/862 and a 404 for anything else."""
    assert request.url.params["api_key"] == "test-key"
    assert request.url.params["append_to_response"] == "credits,keywords"
    if request.url.path == "/3/movie/862":
        return httpx.Response(200, json=json.loads((FIXTURES / "tmdb_movie_862.json").read_text()))
    return httpx.Response(404, json=json.loads((FIXTURES / "tmdb_404.json").read_text()))


def test_api_enrichment_through_the_real_client() -> None:
    toy_story = MovieFactory(id=1, title="Toy Story", year=1995, tmdb_id=862, overview="")
    MovieFactory(id=2, title="Unknown to TMDB", tmdb_id=99999999, overview="")
    client = TMDBClient("test-key", transport=httpx.MockTransport(_recorded))

    report = import_tmdb(path=None, directors=None, client=client, progress=False)

    toy_story.refresh_from_db()
    assert report.counts["api calls"] == 2
    assert toy_story.runtime == 81 and toy_story.poster_path == "/uXDfjJbdP4ijW5hWSBrPrlKpxab.jpg"
    assert toy_story.collection_id == 10194 and "toy comes to life" in toy_story.keywords
    cast = list(toy_story.credits.filter(role="cast").values_list("person__name", "character"))
    assert cast[0] == ("Tom Hanks", "Woody (voice)") and len(cast) == 5
    assert toy_story.credits.get(role="director").person.tmdb_id == 7879
    assert "John Lasseter" in toy_story.search_text


def test_client_retries_after_429_and_explains_a_bad_key() -> None:
    calls: list[int] = []

    def limited(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"status_code": 25})
        return _recorded(request)

    slept: list[float] = []
    client = TMDBClient("test-key", transport=httpx.MockTransport(limited), sleep=slept.append)
    assert client.movie(862)["title"] == "Toy Story" and slept == [1.0]

    denied = TMDBClient("bad", transport=httpx.MockTransport(lambda r: httpx.Response(
        401, json={"status_code": 7, "status_message": "Invalid API key: You must be granted a valid key."})))
    with pytest.raises(TMDBError, match="Invalid API key"):
        denied.movie(862)


@pytest.mark.slow
def test_full_ml100k_import_is_complete_and_idempotent() -> None:
    source = SHARED / "ml-100k"
    if not source.exists():
        pytest.skip("../shared/data/ml-100k is not on this machine")
    import_movielens(source, progress=False)

    # 100,000 ratings; 307 collapse where ml-100k lists one film under two item ids and a user rated both
    assert Rating.objects.filter(source="ml-100k").count() == 99_693
    assert Movie.objects.count() == 1664
    assert import_movielens(source, progress=False).changed == 0


def test_a_malformed_tmdb_file_changes_nothing_and_names_file_and_line(tmp_path: Path) -> None:
    movie = MovieFactory(id=1, title="Toy Story", tmdb_id=862, overview="")
    folder = tmp_path / "tmdb" / "the-movies-dataset"
    folder.mkdir(parents=True)
    (folder / "keywords.csv").write_text(
        "id,keywords\n"
        "8844,\"[{'id': 10090, 'name': 'board game'}]\"\n"
        "862,\"[{'id': 931, 'name': 'jealousy'\"\n")  # unterminated literal on line 3

    with pytest.raises(CommandError, match=r"keywords\.csv, line 3: column keywords"):
        call_command("import_tmdb", "--path", str(tmp_path / "tmdb"), "--directors", str(tmp_path / "none"),
                     "--quiet")
    movie.refresh_from_db()
    assert movie.keywords == [] and movie.search_text == ""
