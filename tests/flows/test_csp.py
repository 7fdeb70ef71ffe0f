"""The Content-Security-Policy blocks nothing the portal itself uses: scripts, styles, posters, the websocket."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.portal import PortalServer

from .conftest import sign_in

pytestmark = pytest.mark.browser


def test_portal_pages_run_under_the_content_security_policy(page: Any, base_url: str, portal: PortalServer,
                                                             member: dict[str, str]) -> None:
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "console.error('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI))")
    page.set_default_timeout(60_000)  # the first recommendation page of a run loads the engine
    sign_in(page, base_url, member, next_path="/movies/")
    response = page.goto(f"{base_url}/movies/1/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "camera=()" in response.headers["permissions-policy"]
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.wait_for_function("() => window.getComputedStyle(document.body).backgroundColor !== 'rgba(0, 0, 0, 0)'")
    page.goto(f"{base_url}/")
    page.wait_for_load_state("networkidle")
    # TMDB posters are refused here (conftest), so every poster must have fallen back to its placeholder:
    # apex.js does it now that no inline onerror handler may run
    page.wait_for_function("() => [...document.querySelectorAll('img[data-fallback]')]"
                           ".every(img => img.src === img.dataset.fallback)")
    assert violations == []
