"""MovieLens importer: real slices, idempotency, transactional failure with file and line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Max

from catalog.importers import import_movielens
from catalog.models import Genre, Movie, Rating

pytestmark = pytest.mark.django_db


def _snapshot() -> tuple:
    return (Movie.objects.count(), Rating.objects.count(), get_user_model().objects.count(),
            Genre.objects.count(), Movie.objects.aggregate(m=Max("updated_at"))["m"],
            Movie.genres.through.objects.count())


def test_import_loads_movies_users_and_ratings(ml_small_slice: Path) -> None:
    report = import_movielens(ml_small_slice, progress=False)

    toy_story = Movie.objects.get(id=1)
    assert (toy_story.title, toy_story.year, toy_story.tmdb_id, toy_story.imdb_id) == (
        "Toy Story", 1995, 862, "tt0114709")
    assert sorted(toy_story.genres.values_list("name", flat=True)) == [
        "Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert Movie.objects.count() == 20
    assert Rating.objects.count() == 600 == report.counts["ratings created"]
    user = get_user_model().objects.get(username="ml-latest-small-1")
    assert not user.is_active and not user.has_usable_password()
    assert Rating.objects.filter(user=user, source="ml-latest-small").exists()
    assert toy_story.rating_count == Rating.objects.filter(movie=toy_story).count() > 0
    assert "pixar" in toy_story.tags and "Animation" in toy_story.search_text


def test_second_import_changes_nothing(ml_small_slice: Path) -> None:
    import_movielens(ml_small_slice, progress=False)
    before = _snapshot()

    report = import_movielens(ml_small_slice, progress=False)

    assert report.changed == 0, report
    assert _snapshot() == before


def test_command_imports_an_official_style_zip(ml_small_slice: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ml-latest-small.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in ml_small_slice.iterdir():
            zf.write(file, f"ml-latest-small/{file.name}")

    call_command("import_movielens", str(archive), "--quiet")

    assert Rating.objects.filter(source="ml-latest-small").count() == 600


@pytest.mark.parametrize(("bad_line", "message"), [
    ("1,1,abc,964982703", "rating must be a number"),
    ("1,1,7.5,964982703", "rating must be between 0.5 and 5"),
    ("1,999999,4.0,964982703", "movieId 999999 is not in the movies file"),
    ("1,1,4.0", "expected 4 fields"),
])
def test_malformed_ratings_file_changes_nothing_and_names_file_and_line(
        ml_small_slice: Path, bad_line: str, message: str) -> None:
    import_movielens(ml_small_slice, progress=False)
    before = _snapshot()
    ratings = ml_small_slice / "ratings.csv"
    lines = ratings.read_text().splitlines()
    lines.insert(4, bad_line)  # becomes line 5 of the file
    lines[1] = "1,1,2.5,999999999"  # a real change that must not be written either
    ratings.write_text("\n".join(lines) + "\n")

    with pytest.raises(CommandError) as error:
        call_command("import_movielens", str(ml_small_slice), "--quiet")

    assert f"{ratings}, line 5: {message}" in str(error.value)
    assert _snapshot() == before
    assert Rating.objects.get(user__username="ml-latest-small-1", movie_id=1).value == 4.0


def test_malformed_movies_file_names_its_line(ml_small_slice: Path) -> None:
    movies = ml_small_slice / "movies.csv"
    movies.write_text(movies.read_text() + "notanumber,Broken (2000),Drama\n")

    with pytest.raises(CommandError, match=r"movies\.csv, line 22: movieId must be an integer"):
        call_command("import_movielens", str(ml_small_slice), "--quiet")
    assert Movie.objects.count() == 0


def test_changed_rating_in_file_is_updated_not_duplicated(ml_small_slice: Path) -> None:
    import_movielens(ml_small_slice, progress=False)
    ratings = ml_small_slice / "ratings.csv"
    lines = ratings.read_text().splitlines()
    lines[1] = "1,1,2.5,999999999"
    ratings.write_text("\n".join(lines) + "\n")

    report = import_movielens(ml_small_slice, progress=False)

    assert report.counts["ratings updated"] == 1
    assert Rating.objects.get(user__username="ml-latest-small-1", movie_id=1).value == 2.5
    assert Rating.objects.count() == 600


def test_missing_path_and_not_a_release_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file or folder"):
        call_command("import_movielens", str(tmp_path / "nope"), "--quiet")
    with pytest.raises(CommandError, match="not a MovieLens folder"):
        call_command("import_movielens", str(tmp_path), "--quiet")


def test_download_offline_says_so(tmp_path: Path) -> None:
    import httpx

    from catalog.importers.download import download_release
    from catalog.importers.errors import ImportFileError

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Name or service not known", request=request)

    with pytest.raises(ImportFileError, match="is this machine online"):
        download_release("ml-100k", tmp_path, client=httpx.Client(transport=httpx.MockTransport(refuse)))


@pytest.mark.parametrize(("raw", "title", "year"), [
    ("Matrix, The (1999)", "The Matrix", 1999),
    ("Beautiful Mind, A (2001)", "A Beautiful Mind", 2001),
    ("Atalante, L' (1934)", "L'Atalante", 1934),
    ("City of Lost Children, The (Cité des enfants perdus, La) (1995)",
     "The City of Lost Children (Cité des enfants perdus, La)", 1995),
    ("Good, the Bad and the Ugly, The (Buono, il brutto, il cattivo, Il) (1966)",
     "The Good, the Bad and the Ugly (Buono, il brutto, il cattivo, Il)", 1966),
    ("I, Robot (2004)", "I, Robot", 2004),
    ("Toy Story (1995)", "Toy Story", 1995),
    ("Aristocats, The", "The Aristocats", None),
])
def test_titles_read_naturally_with_the_article_in_front(raw: str, title: str, year: int | None) -> None:
    from catalog.importers.readers import split_title

    assert split_title(raw) == (title, year)


@pytest.mark.django_db
def test_the_imported_catalogue_reads_the_matrix_not_matrix_the(ml_small_slice) -> None:  # noqa: ANN001
    from catalog.models import Movie

    import_movielens(ml_small_slice)
    titles = set(Movie.objects.values_list("title", flat=True))
    assert {"The Matrix", "The Shawshank Redemption", "The Usual Suspects"} <= titles
    assert not {t for t in titles if t.endswith((", The", ", A", ", An"))}
