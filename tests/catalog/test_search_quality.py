"""Search people can use (issue 20): typo tolerance, semantic text about the plot, hybrid by default, a relevance
cut-off, and no bare numbers on result cards. Runs on SQLite and on PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from catalog import fuzzy, semantic
from catalog.hybrid import DEFAULT_MODE, popularity_rerank, rrf, semantic_cut
from catalog.services import movie_search_text_refresh
from tests.factories import MovieFactory

from .movies import create_classics

pytestmark = pytest.mark.django_db

MORE = [  # real TMDB overviews, taglines and keywords of the embedded catalogue
    (2571, "The Matrix", 1999, ["Action", "Sci-Fi", "Thriller"], "Welcome to the Real World.",
     ["artificial intelligence", "virtual reality", "dystopia", "cyberpunk"],
     "Set in the 22nd century, The Matrix tells the story of a computer hacker who joins a group of underground "
     "insurgents fighting the vast and powerful computers who now rule the earth."),
    (6365, "The Matrix Reloaded", 2003, ["Action", "Adventure", "Sci-Fi", "Thriller"], "Free your mind.",
     ["artificial intelligence", "virtual reality", "dystopia"],
     "Six months after the events depicted in The Matrix, Neo has proved to be a good omen for the free humans, "
     "as more and more humans are being freed from the matrix and brought to Zion."),
    (2005, "Matilda", 1996, ["Children", "Comedy", "Fantasy"], "A little magic goes a long way.",
     ["telekinesis", "school", "bookworm"],
     "A gifted girl with neglectful parents discovers she has telekinetic powers and helps her kind teacher "
     "stand up to the tyrannical headmistress."),
    (858, "The Godfather", 1972, ["Crime", "Drama"], "An offer you can't refuse.",
     ["mafia", "crime family", "organized crime", "new york"],
     "Spanning the years 1945 to 1955, a chronicle of the fictional Italian-American Corleone crime family."),
    (60069, "WALL·E", 2008, ["Adventure", "Animation", "Children", "Romance", "Sci-Fi"],
     "An adventure beyond the ordinar-E.", ["robot", "outer space", "post apocalyptic", "love story"],
     "WALL·E is the last robot left on an Earth that has been overrun with garbage and all humans have fled to "
     "outer space. When a ship arrives with a sleek new type of robot, WALL·E thinks he's finally found a friend "
     "and stows away on the ship when it leaves."),
]


@pytest.fixture
def catalogue() -> list:
    movies = create_classics()
    for index, (movie_id, title, year, genres, tagline, keywords, overview) in enumerate(MORE):
        movies.append(MovieFactory(id=movie_id, title=title, year=year, genres=genres, tagline=tagline,
                                   keywords=keywords, overview=overview, rating_count=90 - index))
    movie_search_text_refresh()
    return movies


@pytest.fixture(scope="module")
def shared_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifacts folder for the module: its embedding cache makes each rebuild after the first cheap."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture
def indexed(catalogue: list, shared_artifacts: Path, settings) -> list:  # noqa: ANN001
    settings.ML_ARTIFACTS_DIR = shared_artifacts
    call_command("build_search_index", "--quiet")
    return catalogue


@pytest.fixture
def no_index(tmp_path: Path, settings) -> None:  # noqa: ANN001
    settings.ML_ARTIFACTS_DIR = tmp_path / "empty"


def _titles(response) -> list[str]:  # noqa: ANN001
    return [r["movie"]["title"] for r in response.json()["results"]]


# Typo tolerance -----------------------------------------------------------------------------------------------

def test_edit_distance_counts_a_swap_as_one_edit() -> None:
    assert fuzzy.osa_distance("matirx", "matrix", 2) == 1
    assert fuzzy.osa_distance("godfater", "godfather", 2) == 1
    assert fuzzy.osa_distance("matirx", "matilda", 1) == 2  # over the limit: limit + 1
    assert [fuzzy.allowed_edits(w) for w in ("ring", "matirx", "godfater")] == [1, 1, 2]
    assert fuzzy.allowed_edits("war") == 0


def test_keyword_search_forgives_typos(catalogue: list, no_index: None) -> None:
    api = APIClient()

    matrix = api.get("/v1/search", {"q": "matirx", "mode": "keyword"})
    godfather = api.get("/v1/search", {"q": "godfater", "mode": "keyword"})

    assert _titles(matrix)[:2] == ["The Matrix", "The Matrix Reloaded"]
    assert "Matilda" not in _titles(matrix)  # shares more trigrams with "matirx" than "matrix" does
    assert matrix.json()["corrections"] == [{"typed": "matirx", "title_word": "matrix"}]
    assert all(r["matched_by"] == ["spelling"] for r in matrix.json()["results"])
    assert _titles(godfather) == ["The Godfather"]


def test_words_that_titles_have_are_not_corrected(catalogue: list, no_index: None) -> None:
    results = APIClient().get("/v1/search", {"q": "the matrix", "mode": "keyword"}).json()

    assert results["corrections"] == []
    assert [r["movie"]["title"] for r in results["results"]][:2] == ["The Matrix", "The Matrix Reloaded"]
    assert {tuple(r["matched_by"]) for r in results["results"]} == {("words",)}


def test_the_search_page_says_which_spelling_it_used(client, catalogue: list, no_index: None) -> None:  # noqa: ANN001
    html = client.get(reverse("catalog:search"), {"q": "matirx"}).content.decode()

    assert "The Matrix" in html and "matirx → matrix" in html


# Semantic text, hybrid fusion, cut-off --------------------------------------------------------------------------

def test_the_semantic_text_is_the_plot_keywords_and_genres_with_the_title_at_a_low_weight() -> None:
    fields = semantic.movie_fields({"title": "WALL·E", "tagline": "An adventure beyond the ordinar-E.",
                                    "overview": "WALL·E is the last robot left on Earth.", "genres": ["Sci-Fi"],
                                    "keywords": ["robot", "outer space"], "tags": ["pixar"]})

    assert fields["plot"] == "An adventure beyond the ordinar-E. WALL·E is the last robot left on Earth."
    assert fields["descriptors"] == "Genres: Sci-Fi. Keywords: robot, outer space, pixar."
    assert fields["title"] == "WALL·E"
    assert semantic.FIELD_WEIGHTS["title"] < min(semantic.FIELD_WEIGHTS["plot"], semantic.FIELD_WEIGHTS["descriptors"])


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = rrf({"keyword": [1, 2, 3], "meaning": [3, 4]}, k=60)

    assert [item for item, _, _ in fused] == [3, 1, 2, 4]  # 3 is in both lists
    assert fused[0][2] == ("keyword", "meaning")
    assert fused[0][1] == pytest.approx(1 / 63 + 1 / 61)


def test_semantic_cut_keeps_the_relevant_head() -> None:
    hits = [(1, 0.62), (2, 0.55), (3, 0.44), (4, 0.30)]

    assert semantic_cut(hits, floor=0.35, margin=0.15) == [(1, 0.62), (2, 0.55)]
    assert semantic_cut([(1, 0.3), (2, 0.2)], floor=0.35, margin=0.15) == []


def test_the_popularity_prior_only_reorders_movies_about_as_close() -> None:
    hits = [(1, 0.60), (2, 0.58), (3, 0.40)]
    ranked = popularity_rerank(hits, {1: 0, 2: 300, 3: 300}, most=300, weight=0.15)

    assert [item for item, _ in ranked] == [2, 1, 3]  # 3 is well known but much further away
    assert ranked[0][1] == pytest.approx(0.58 + 0.15)


def test_hybrid_is_the_default_and_finds_a_plot_no_title_names(indexed: list) -> None:
    api = APIClient()

    robots = api.get("/v1/search", {"q": "space adventure with robots"}).json()
    keyword_only = api.get("/v1/search", {"q": "space adventure with robots", "mode": "keyword"}).json()

    assert DEFAULT_MODE == "hybrid" and robots["mode"] == "hybrid" and robots["semantic_available"] is True
    top = [r["movie"]["title"] for r in robots["results"]][:3]
    assert "WALL·E" in top
    wall_e = next(r for r in robots["results"] if r["movie"]["title"] == "WALL·E")
    assert "meaning" in wall_e["matched_by"]
    assert [r["score"] for r in robots["results"]] == sorted((r["score"] for r in robots["results"]), reverse=True)
    assert keyword_only["mode"] == "keyword" and all(r["matched_by"] == ["words"] for r in keyword_only["results"])


def test_a_query_with_few_relevant_movies_gets_few_results(indexed: list) -> None:
    api = APIClient()

    typo = api.get("/v1/search", {"q": "matirx", "limit": 24}).json()["results"]
    fish = api.get("/v1/search/ai", {"q": "a lost fish in the sea", "limit": 24}).json()["results"]

    assert len(indexed) == 13
    assert {r["movie"]["title"] for r in typo} <= {"The Matrix", "The Matrix Reloaded"}
    assert [r["movie"]["title"] for r in typo][0] == "The Matrix"
    assert fish[0]["movie"]["title"] == "Finding Nemo" and len(fish) < len(indexed)


# The search box and the result cards ----------------------------------------------------------------------------

def test_the_search_forms_default_to_the_mode_their_placeholders_promise(client, catalogue: list,  # noqa: ANN001
                                                                         no_index: None) -> None:
    search = client.get(reverse("catalog:search"), {"q": "nemo"}).content.decode()
    home = client.get("/").content.decode()

    assert 'placeholder="Title, person, topic or mood"' in search
    assert 'value="hybrid" checked' in search and 'value="keyword" checked' not in search
    assert "Try “space adventure with robots”" in home
    assert 'value="hybrid" checked' in home and 'value="keyword" checked' not in home


def test_result_cards_label_why_a_movie_matched_and_show_no_bare_score(client, indexed: list) -> None:  # noqa: ANN001
    html = client.get(reverse("catalog:search"), {"q": "space adventure with robots"}).content.decode()

    assert 'class="score"' not in html
    assert "Matches similar meaning" in html or "Matches your words and similar meaning" in html


def test_a_card_given_a_score_labels_it() -> None:
    from django.template.loader import render_to_string

    movie = MovieFactory.build(id=1, title="Toy Story", rating_mean=4.0)
    html = render_to_string("partials/movie_card.html", {"movie": movie, "stats": True, "score": 0.5})

    assert "Relevance score 0.50" in html
