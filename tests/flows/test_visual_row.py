"""Journey: an operator builds the visual index (tiny CLIP, posters from a local stand-in for TMDB's CDN); a
visitor opening a movie sees the "Looks like this" row with the movie whose poster is its near twin first."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.portal import REPO, PortalServer
from tests.visual_fixtures import make_tiny_clip, twin_posters

pytestmark = pytest.mark.browser


@pytest.fixture
def poster_cdn() -> Iterator[str]:
    """TMDB's image CDN over HTTP: ``/w342/<poster path>`` answers the generated JPEGs, anything else 404."""
    posters = twin_posters()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = posters.get(self.path.removeprefix("/w342"))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "image/jpeg" if body else "text/plain")
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@pytest.fixture
def indexed(portal: PortalServer, poster_cdn: str, tmp_path: Path) -> Iterator[dict[str, int]]:
    """Eight catalogue movies get the generated posters; the operator's command builds the index the server uses."""
    paths = list(twin_posters())
    before = dict(json.loads(portal.shell(
        "import json\nfrom catalog.models import Movie\n"
        "print(json.dumps(list(Movie.objects.filter(id__gte=3000).order_by('id').values_list('id', 'poster_path')[:8])))"
    ).strip().splitlines()[-1]))
    movies = dict(zip(paths, [int(i) for i in before], strict=True))
    portal.shell("from catalog.models import Movie\n" + "".join(
        f"Movie.objects.filter(id={i}).update(poster_path={p!r})\n" for p, i in movies.items()))
    env = {**portal.env(), "POSTER_CDN_URL": poster_cdn, "POSTER_CACHE_DIR": str(tmp_path / "posters"),
           "POSTER_FETCH_INTERVAL_S": "0"}
    done = subprocess.run([sys.executable, str(REPO / "manage.py"), "build_visual_index", "--model",
                           str(make_tiny_clip(tmp_path / "clip"))], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "8 posters" in done.stdout
    try:
        yield movies
    finally:  # the other journeys share this server: leave no index and no posters behind
        shutil.rmtree(portal.artifacts / "visual", ignore_errors=True)
        portal.shell("from catalog.models import Movie\n" + "".join(
            f"Movie.objects.filter(id={i}).update(poster_path={p!r})\n" for i, p in before.items()))


def test_a_movie_page_shows_the_movie_whose_poster_looks_like_it(page: Any, base_url: str,
                                                                 indexed: dict[str, int]) -> None:
    movie, twin = indexed["/disc0.jpg"], indexed["/disc1.jpg"]
    page.goto(f"{base_url}/movies/{movie}/")
    row = page.locator('#movie-extras section[data-row="looks-like-this"]')
    expect(row.get_by_role("heading", name="Looks like this")).to_be_visible()
    expect(row.locator(".card").first).to_have_attribute("data-movie-id", str(twin))
    expect(row.locator(f'.card[data-movie-id="{movie}"]')).to_have_count(0)
    row.locator(".card a").first.click()
    expect(page).to_have_url(f"{base_url}/movies/{twin}/")
    expect(page.locator('#movie-extras section[data-row="looks-like-this"] .card').first).to_have_attribute(
        "data-movie-id", str(movie))
