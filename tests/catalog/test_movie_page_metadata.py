"""Movie pages: the TMDB poster (the browser loads it from the image CDN, the placeholder when it cannot), the
overview, the runtime as people say it, keywords as links; movies without metadata keep a good placeholder."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from catalog.templatetags.catalog_tags import runtime
from tests.factories import MovieFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("minutes", "text"), [(112, "1 h 52 min"), (45, "45 min"), (120, "2 h"), (61, "1 h 1 min"),
                                               (None, ""), (0, "")])
def test_runtime_reads_in_hours_and_minutes(minutes: int | None, text: str) -> None:
    assert runtime(minutes) == text


def test_a_movie_page_shows_the_cdn_poster_with_its_fallback_overview_runtime_and_keyword_links(client: Client) -> None:
    movie = MovieFactory(title="Blade Runner", year=1982, poster_path="/63N9uy8nd9j7Eog2axPQ8lbr3Wj.jpg", runtime=117,
                         overview="A blade runner must pursue and terminate four replicants.",
                         keywords=["dystopia", "artificial intelligence"])
    html = client.get(movie.get_absolute_url()).content.decode()

    poster = re.search(r'<img class="poster poster-large"[^>]*>', html).group(0)
    assert 'src="https://image.tmdb.org/t/p/w342/63N9uy8nd9j7Eog2axPQ8lbr3Wj.jpg"' in poster
    assert 'data-fallback="data:image/svg+xml' in poster and "onerror" not in poster  # apex.js swaps it (CSP)
    assert "<li>1 h 57 min</li>" in html and "117 min" not in html
    assert "A blade runner must pursue and terminate four replicants." in html
    assert '<a class="chip" href="/search/?q=artificial%20intelligence">artificial intelligence</a>' in html
    assert '<a class="chip" href="/search/?q=dystopia">dystopia</a>' in html


def test_a_movie_without_metadata_keeps_the_placeholder_poster(client: Client) -> None:
    movie = MovieFactory(title="Obscure Short", year=1931, poster_path="", runtime=None, overview="", keywords=[])
    html = client.get(movie.get_absolute_url()).content.decode()

    poster = re.search(r'<img class="poster poster-large placeholder"[^>]*>', html).group(0)
    assert 'src="data:image/svg+xml' in poster and "image.tmdb.org" not in poster
    assert "Obscure%20Short" in poster  # the placeholder shows the title (and year)
    assert "Keywords" not in html and " min</li>" not in html


def test_the_content_security_policy_lets_images_come_from_tmdb_s_cdn_only(client: Client) -> None:
    policy = client.get("/").headers["Content-Security-Policy"]
    img_src = next(part.split()[1:] for part in policy.split(";") if part.split()[:1] == ["img-src"])
    assert "https://image.tmdb.org" in img_src  # posters
    assert "data:" in img_src  # placeholders
    assert "https:" not in img_src and "*" not in img_src  # no other host
