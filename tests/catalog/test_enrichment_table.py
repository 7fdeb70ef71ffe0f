"""The enrichment table shipped with the embedded catalogue (issue 20): a clone without ../shared gets the same
catalogue — overview, tagline, release date, keywords, votes, poster path, collection and directors."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from catalog.importers.enrichment import enrichment_write
from catalog.importers.tmdb import ENRICHED, import_tmdb
from catalog.models import Credit, Movie
from tests.factories import MovieFactory

from .conftest import SHARED

pytestmark = pytest.mark.django_db
SHIPPED = Path(settings.BASE_DIR) / "data" / "ml-latest-small" / "enrichment"
SAMPLE = {1: (862, "tt0114709"), 2: (8844, "tt0113497"), 32: (63, "tt0114746"), 2571: (603, "tt0133093")}


def _movies() -> None:
    for movie_id, (tmdb_id, imdb_id) in SAMPLE.items():
        MovieFactory(id=movie_id, tmdb_id=tmdb_id, imdb_id=imdb_id, overview="", keywords=[], poster_path="")


def _fields() -> dict[int, dict]:
    return {m.id: {k: getattr(m, k) for k in ENRICHED} | {"directors": sorted(
        m.credits.filter(role="director").values_list("person__name", flat=True))} for m in Movie.objects.all()}


def test_the_shipped_table_enriches_without_shared_data(tmp_path: Path) -> None:
    _movies()
    call_command("import_tmdb", "--path", str(tmp_path / "no-dumps"), "--directors", str(tmp_path / "no-hetrec"),
                 "--quiet")
    matrix = Movie.objects.get(id=2571)
    assert matrix.overview and matrix.tagline and matrix.release_date == dt.date(1999, 3, 30)
    assert matrix.runtime == 136 and matrix.poster_path.startswith("/") and matrix.vote_count > 1000
    assert "artificial intelligence" in " ".join(matrix.keywords).lower()
    assert matrix.collection is not None and "Matrix" in matrix.collection.name
    assert list(Credit.objects.filter(movie=matrix, role="director").values_list("person__name", flat=True)) == [
        "Andy Wachowski"]  # HetRec 2011 lists one of the two
    toy = Movie.objects.get(id=1)
    assert toy.overview.startswith("Led by Woody") and "toy" in toy.keywords


def test_the_shipped_table_equals_the_dumps_it_was_built_from(tmp_path: Path) -> None:
    if not (SHARED / "tmdb").exists() or not (SHARED / "hetrec2011").exists():
        pytest.skip("../shared/data/tmdb or hetrec2011 is not on this machine")
    _movies()
    import_tmdb(path=SHARED / "tmdb", directors=SHARED / "hetrec2011", progress=False)
    from_dumps = _fields()
    Movie.objects.all().delete()
    _movies()
    import_tmdb(path=None, directors=None, enrichment=SHIPPED, progress=False)
    assert _fields() == from_dumps


def test_rebuilding_the_table_reproduces_the_shipped_rows(tmp_path: Path) -> None:
    if not (SHARED / "tmdb").exists():
        pytest.skip("../shared/data/tmdb is not on this machine")
    links = tmp_path / "links.csv"
    links.write_text("movieId,imdbId,tmdbId\n" + "".join(f"{m},{i[2:]},{t}\n" for m, (t, i) in SAMPLE.items()))
    enrichment_write(links=links, tmdb=SHARED / "tmdb", directors=SHARED / "hetrec2011", out=tmp_path / "out")
    rebuilt = gzip.decompress((tmp_path / "out" / "tmdb.csv.gz").read_bytes()).decode().splitlines()
    shipped = gzip.decompress((SHIPPED / "tmdb.csv.gz").read_bytes()).decode().splitlines()
    assert rebuilt[0] == shipped[0]
    assert set(rebuilt[1:]) <= set(shipped[1:])  # every rebuilt row is in the shipped table, byte for byte


def test_a_damaged_table_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    _movies()
    (tmp_path / "tmdb.csv.gz").write_bytes(gzip.compress(b"tmdb_id,overview\n862,x\n"))
    with pytest.raises(CommandError, match="missing columns"):
        call_command("import_tmdb", "--path", str(tmp_path / "none"), "--enrichment", str(tmp_path), "--quiet")
    assert not Movie.objects.exclude(overview="").exists()


def test_the_movie_page_shows_tagline_release_date_and_keyword_links(client) -> None:  # noqa: ANN001
    _movies()
    import_tmdb(path=None, directors=None, enrichment=SHIPPED, progress=False)
    html = client.get("/movies/2571/").content.decode()
    matrix = Movie.objects.get(id=2571)
    assert f'<p class="tagline">{matrix.tagline}</p>' in html.replace("&#x27;", "'")
    assert '<time datetime="1999-03-30">30 March 1999</time>' in html
    keyword = matrix.keywords[0]
    assert f'href="/search/?q={keyword.replace(" ", "%20")}">{keyword}</a>' in html
