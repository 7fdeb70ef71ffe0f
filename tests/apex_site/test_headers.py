"""Content-Security-Policy and Permissions-Policy on every response; the pages need no inline code (issue 14)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.factories import MovieFactory

pytestmark = pytest.mark.django_db
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/(?:ld\+)?json)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|<[^>]+\sstyle\s*=", re.IGNORECASE)


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def _policies(response) -> tuple[str, str]:  # noqa: ANN001
    return response.get("Content-Security-Policy", ""), response.get("Permissions-Policy", "")


@pytest.mark.parametrize("path", ["/", "/movies/", "/accounts/login/", "/v1/movies", "/v1/no-such-thing",
                                  "/no-such-page/", "/v1/schema"])
def test_every_response_carries_both_policies(client, path):
    csp, permissions = _policies(client.get(path))
    assert "default-src 'self'" in csp and "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "camera=()" in permissions and "geolocation=()" in permissions and "microphone=()" in permissions


def test_production_error_pages_get_the_strict_policy_too(client, settings):
    settings.DEBUG = False
    csp, permissions = _policies(client.get("/no-such-page/"))
    assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp and permissions


def test_portal_pages_have_no_inline_scripts_handlers_or_styles(client, alice):
    movie = MovieFactory(title="Alien", poster_path="/poster.jpg")  # a TMDB poster with its fallback
    pages = ["/", "/movies/", f"/movies/{movie.id}/", "/search/?q=alien", "/accounts/login/", "/accounts/signup/"]
    client.force_login(alice)
    pages += ["/", f"/movies/{movie.id}/", "/history/", "/watchlist/", "/me/", "/account/", "/account/api-keys/"]
    for path in pages:
        response = client.get(path, follow=True)
        html = response.content.decode()
        assert response.status_code == 200, path
        assert not INLINE_SCRIPT.search(html), (path, INLINE_SCRIPT.search(html).group(0))
        assert not INLINE_HANDLER.search(html), (path, INLINE_HANDLER.search(html).group(0))
        assert not INLINE_STYLE.search(html), (path, INLINE_STYLE.search(html).group(0))


def test_api_docs_load_their_start_up_script_as_a_file(client):
    response = client.get("/docs")
    html = response.content.decode()
    assert response.status_code == 200 and not INLINE_SCRIPT.search(html)
    script = re.search(r'<script src="([^"]*script=[^"]*)"', html).group(1).replace("&amp;", "&")
    assert client.get(script)["Content-Type"].startswith("application/javascript")
    assert "cdn.jsdelivr.net" not in response["Content-Security-Policy"]  # the assets are ours (sidecar)
