"""The site has an icon: pages link it, and /favicon.ico (which browsers ask for anyway) leads to it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_pages_link_the_icon_and_favicon_ico_redirects_to_it(client) -> None:  # noqa: ANN001
    html = client.get("/").content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">' in html
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/img/favicon.svg"
