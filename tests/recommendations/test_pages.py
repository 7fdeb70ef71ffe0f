"""Portal pages through Django's test client: rows, rating and watchlist forms (with and without JS), undo."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from catalog.models import Rating
from tests.factories import MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def _no_serving_bundle(settings, tmp_path):  # noqa: ANN001, ANN202
    """These tests cover the catalog-backed rows; the engine-backed ones run in the browser journeys."""
    from recommendations import serving as serving_adapter

    settings.ML_ARTIFACTS_DIR = tmp_path
    serving_adapter.reset_engine()
    yield
    serving_adapter.reset_engine()


@pytest.fixture
def client(client, django_capture_on_commit_callbacks):  # noqa: ANN001, ANN201
    """The test client, running each request's after-commit work (event relay and apply) as production does."""
    post = client.post

    def post_and_commit(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        with django_capture_on_commit_callbacks(execute=True):
            return post(*args, **kwargs)

    client.post = post_and_commit
    return client


@pytest.fixture
def shelf(db):  # noqa: ANN001, ANN201
    """A small catalog: popular Sci-Fi and Drama titles, a franchise pair, and well-rated rarities."""
    from catalog.models import Collection

    alien_saga = Collection.objects.create(id=8091, name="Alien Collection")
    movies = {
        "alien": MovieFactory(id=1214, title="Alien", year=1979, genres=["Sci-Fi", "Horror"], rating_count=80,
                              rating_mean=4.1, collection=alien_saga),
        "aliens": MovieFactory(id=1200, title="Aliens", year=1986, genres=["Sci-Fi", "Action"], rating_count=70,
                               rating_mean=4.0, collection=alien_saga),
        "matrix": MovieFactory(id=2571, title="The Matrix", year=1999, genres=["Sci-Fi", "Action"],
                               rating_count=270, rating_mean=4.2),
        "forrest": MovieFactory(id=356, title="Forrest Gump", year=1994, genres=["Drama", "Comedy"],
                                rating_count=330, rating_mean=4.2),
        "stalker": MovieFactory(id=1232, title="Stalker", year=1979, genres=["Sci-Fi", "Drama"], rating_count=12,
                                rating_mean=4.4),
    }
    for n in range(8):
        movies[f"drama{n}"] = MovieFactory(id=5000 + n, title=f"Quiet Drama {n}", year=2000 + n,
                                           genres=["Drama"], rating_count=40 - n, rating_mean=3.5)
    for n in range(36):  # enough movies that every row fills although no movie appears in two rows of a page
        genre = ("Comedy", "Sci-Fi", "Thriller", "Romance")[n % 4]
        movies[f"other{n}"] = MovieFactory(id=6000 + n, title=f"Catalogue {genre} {n}", year=1990 + n % 20,
                                           genres=[genre], rating_count=30 - n % 20, rating_mean=3.2)
    return movies


def _rate(user, movie, value: float, minutes_ago: int = 0) -> Rating:  # noqa: ANN001
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return RatingFactory(user=user, movie=movie, value=value, rated_at=when)


def test_visitor_home_shows_trending_and_discover_rows_with_reasons(client, shelf) -> None:  # noqa: ANN001
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-row="trending"' in html and 'data-row="discover"' in html
    assert "Stalker" in html  # the well-rated rarity is a long-tail pick
    assert "Why this?" in html and "Sign in to rate" in html


def test_new_member_is_sent_to_onboarding(client, carol, shelf) -> None:  # noqa: ANN001
    client.force_login(carol)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("recommendations:onboarding")


def test_onboarding_shows_a_group_and_progress_then_finishes(client, carol, shelf) -> None:  # noqa: ANN001
    client.force_login(carol)
    _rate(carol, shelf["matrix"], 4.5)
    page = client.get(reverse("recommendations:onboarding")).content.decode()
    assert "1</span> rated" in page and "4</span> to go" in page
    assert "Forrest Gump" in page and "The Matrix" not in page  # rated already: not offered again
    response = client.post(reverse("recommendations:onboarding"), {"action": "finish"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200  # onboarded now: home, not onboarding


def test_member_sees_because_you_watched_row_for_a_recent_favourite(client, alice, shelf) -> None:  # noqa: ANN001
    _rate(alice, shelf["alien"], 5.0)
    client.force_login(alice)
    html = client.get("/").content.decode()
    assert "Because you watched Alien" in html
    assert 'data-row="top-picks"' in html
    row = html.split('<section class="movie-row" data-row="because-1214"')[1].split("</section>")[0]
    assert row.index("Aliens") < row.index("The Matrix")  # same franchise first


def test_rating_without_javascript_redirects_back_with_an_undo_message(client, alice, shelf) -> None:  # noqa: ANN001
    client.force_login(alice)
    url = reverse("recommendations:rating-set", args=[shelf["matrix"].id])
    response = client.post(url, {"value": "4.5", "next": "/history/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/history/"
    html = response.content.decode()
    assert "You rated The Matrix 4.5★." in html and "Undo" in html
    assert Rating.objects.get(user=alice, movie=shelf["matrix"]).value == 4.5


def test_rating_with_javascript_answers_json_and_undo_restores_the_previous_value(client, alice, shelf) -> None:  # noqa: ANN001
    _rate(alice, shelf["matrix"], 3.0)
    client.force_login(alice)
    url = reverse("recommendations:rating-set", args=[shelf["matrix"].id])
    data = client.post(url, {"value": "5"}, **JSON).json()
    assert data["ok"] and data["value"] == 5.0 and data["was_rated"] is True
    assert Rating.objects.get(user=alice, movie=shelf["matrix"]).value == 5.0
    undone = client.post(data["undo_url"], **JSON).json()
    assert undone["ok"] and "Restored your rating of The Matrix to 3★" in undone["message"]
    assert Rating.objects.get(user=alice, movie=shelf["matrix"]).value == 3.0


def test_undo_of_a_first_rating_removes_it(client, alice, shelf) -> None:  # noqa: ANN001
    client.force_login(alice)
    client.post(reverse("recommendations:rating-set", args=[shelf["alien"].id]), {"value": "2"}, **JSON)
    client.post(reverse("recommendations:undo"), **JSON)
    assert not Rating.objects.filter(user=alice, movie=shelf["alien"]).exists()


@pytest.mark.parametrize("value", ["0.3", "5.5", "4.25", "lots", "nan"])
def test_a_bad_rating_is_refused_with_a_message(client, alice, shelf, value: str) -> None:  # noqa: ANN001
    client.force_login(alice)
    response = client.post(reverse("recommendations:rating-set", args=[shelf["alien"].id]), {"value": value}, **JSON)
    assert response.status_code == 400
    assert "0.5 to 5 in half steps" in response.json()["error"]
    assert not Rating.objects.filter(user=alice).exists()


def test_rating_an_unknown_movie_is_404(client, alice, shelf) -> None:  # noqa: ANN001
    client.force_login(alice)
    assert client.post(reverse("recommendations:rating-set", args=[987654321]), {"value": "4"}).status_code == 404


def test_visitors_must_sign_in_to_rate(client, shelf) -> None:  # noqa: ANN001
    response = client.post(reverse("recommendations:rating-set", args=[shelf["alien"].id]), {"value": "4"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_clearing_a_rating_removes_it(client, alice, shelf) -> None:  # noqa: ANN001
    _rate(alice, shelf["alien"], 4.0)
    client.force_login(alice)
    data = client.post(reverse("recommendations:rating-set", args=[shelf["alien"].id]), {"clear": "1"}, **JSON).json()
    assert data["ok"] and data["value"] is None
    assert not Rating.objects.filter(user=alice, movie=shelf["alien"]).exists()


def test_watchlist_toggle_then_page_then_undo(client, alice, shelf) -> None:  # noqa: ANN001
    client.force_login(alice)
    url = reverse("recommendations:watchlist-toggle", args=[shelf["stalker"].id])
    data = client.post(url, {"on": "1"}, **JSON).json()
    assert data["ok"] and data["on"] is True
    assert "Stalker" in client.get(reverse("recommendations:watchlist")).content.decode()
    client.post(reverse("recommendations:undo"), **JSON)
    assert "Stalker" not in client.get(reverse("recommendations:watchlist")).content.decode()


def test_history_lists_ratings_newest_first(client, alice, shelf) -> None:  # noqa: ANN001
    _rate(alice, shelf["alien"], 4.0, minutes_ago=30)
    _rate(alice, shelf["forrest"], 3.5, minutes_ago=5)
    client.force_login(alice)
    html = client.get(reverse("recommendations:history")).content.decode()
    assert html.index("Forrest Gump") < html.index("Alien")
    assert "2 movies" in html
    assert "30\xa0minutes ago" in html and "5\xa0minutes ago" in html  # timesince joins with no-break spaces


def test_a_rating_made_moments_ago_reads_just_now(client, alice, shelf) -> None:  # noqa: ANN001
    _rate(alice, shelf["alien"], 4.0, minutes_ago=0)
    client.force_login(alice)
    html = client.get(reverse("recommendations:history")).content.decode()
    assert "just now" in html and "0 minutes ago" not in html


def test_rows_fragment_is_just_the_rows(client, alice, shelf) -> None:  # noqa: ANN001
    client.force_login(alice)
    html = client.get(reverse("recommendations:rows-fragment")).content.decode()
    assert html.lstrip().startswith("<section") and "<html" not in html


def test_movie_extras_show_your_rating_and_related_rows(client, alice, shelf) -> None:  # noqa: ANN001
    _rate(alice, shelf["alien"], 4.5)
    client.force_login(alice)
    html = client.get(reverse("recommendations:movie-extras", args=[shelf["alien"].id])).content.decode()
    assert 'value="4.5" checked' in html
    assert 'data-row="more-like-this"' in html and "Aliens" in html  # same franchise first


def test_account_page_pulls_profile_plan_usage_and_keys_together(client, bob, shelf, stripe_configured) -> None:  # noqa: ANN001
    from accounts.services import api_key_create

    api_key_create(user=bob, name="bob's app")
    client.force_login(bob)
    html = client.get(reverse("recommendations:account")).content.decode()
    assert 'data-plan="pro"' in html and "bob&#x27;s app" in html and "Usage this month" in html
    assert "Manage subscription" in html  # a paying member manages the plan in Stripe's portal


def test_account_page_saves_favourite_genres_and_drops_unknown_ones(client, carol, shelf) -> None:  # noqa: ANN001
    from accounts.selectors import profile_get

    client.force_login(carol)
    html = client.get(reverse("recommendations:account")).content.decode()
    assert 'name="genres" value="Horror"' in html and "(no genres listed)" not in html

    response = client.post(reverse("recommendations:account"), {"genres": ["Horror", "Drama", "Polka"]})

    assert response.status_code == 302 and response["Location"] == reverse("recommendations:account")
    assert profile_get(user=carol).favourite_genres == ["Horror", "Drama"]
    assert 'value="Horror" checked' in client.get(reverse("recommendations:account")).content.decode()


def test_free_members_are_offered_the_paid_plans(client, alice, shelf, stripe_configured) -> None:  # noqa: ANN001
    client.force_login(alice)
    html = client.get(reverse("recommendations:account")).content.decode()
    assert 'data-plan="free"' in html
    assert "Upgrade to Pro · $29/month" in html and "Upgrade to Enterprise · $299/month" in html


def test_home_queries_do_not_grow_with_the_rows(client, alice, shelf, django_assert_max_num_queries) -> None:  # noqa: ANN001
    for key in ("alien", "matrix", "forrest"):
        _rate(alice, shelf[key], 4.5)
    client.force_login(alice)
    with django_assert_max_num_queries(60):
        assert client.get("/").status_code == 200


def test_no_movie_appears_in_two_rows_of_one_home_page(alice, shelf) -> None:  # noqa: ANN001
    from recommendations import pages

    _rate(alice, shelf["alien"], 5.0)
    rows = pages.home_context(user=alice)["rows"]
    shown = [p.movie.id for row in rows for p in row.picks]
    assert len(rows) >= 3 and len(shown) == len(set(shown)), [(r.key, [p.movie.id for p in r.picks]) for r in rows]


def test_trending_counts_the_last_week_and_says_so_when_it_is_the_all_time_list(alice, bob, shelf) -> None:  # noqa: ANN001
    from recommendations import rows

    quiet = rows.row_trending(rated={})
    assert quiet.title == "Popular all time" and quiet.picks[0].movie.title == "Forrest Gump"  # the most rated
    recent = [shelf[f"drama{n}"] for n in range(7)]
    for n, movie in enumerate(recent):
        _rate(alice, movie, 4.0, minutes_ago=n)
    _rate(bob, recent[3], 4.0)
    old = RatingFactory(user=bob, movie=shelf["forrest"], value=5.0,
                        rated_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))  # outside the window
    row = rows.row_trending(rated={})
    assert row.title == "Trending this week"
    assert row.picks[0].movie == recent[3] and "2 people" in row.picks[0].reason
    assert {p.movie.id for p in row.picks} == {m.id for m in recent} and old.movie_id not in {p.movie.id for p in row.picks}
