"""Journey: sign up → verify e-mail → onboarding → rate five movies → the home rows change live (websocket)."""

from __future__ import annotations

import itertools
import os
from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.portal import PortalServer

from .conftest import sign_up

pytestmark = pytest.mark.browser
_n = itertools.count(1)


def row_ids(page: Any, row: str) -> list[str]:
    return page.locator(f'#rows section[data-row="{row}"] .card').evaluate_all(
        "cards => cards.map(c => c.dataset.movieId)")


def rate_card(card: Any, value: float) -> None:
    """Click the half-star for ``value`` and wait until the portal says it is saved."""
    index = int(value * 2)  # radios are 0.5, 1.0, ... 5.0 -> ids -1 .. -10
    card.locator(f"form[data-rate] label[for$='-{index}']").click()
    expect(card.locator(".rate-status")).to_have_text(f"{value:g}★")


def test_sign_up_onboard_rate_five_and_watch_rows_change_live(page: Any, base_url: str, portal: PortalServer) -> None:
    name = f"newcomer{os.getpid()}x{next(_n)}"
    sign_up(page, base_url, portal, name)

    expect(page).to_have_url(f"{base_url}/onboarding/")
    expect(page.get_by_role("heading", name="Tell us what you like")).to_be_visible()
    cards = page.locator(".grid .card")
    for i, value in enumerate([5.0, 4.5, 4.0, 3.5, 5.0]):
        rate_card(cards.nth(i), value)
    expect(page.locator("#onboarding-progress [data-rated-count]")).to_have_text("5")
    page.get_by_role("button", name="See my recommendations").click()

    expect(page).to_have_url(f"{base_url}/")
    expect(page.locator('#rows section[data-row="top-picks"] .card').first).to_be_visible()
    expect(page.locator('#rows section[data-row^="because-"]').first).to_be_visible()
    page.wait_for_function("() => document.body.dataset.live === 'open'")  # a function: a string is eval'd, which the CSP forbids
    before = row_ids(page, "top-picks")
    page.evaluate("window.__sameDocument = true")

    first = page.locator('#rows section[data-row="top-picks"] .card').first
    rated_id = first.get_attribute("data-movie-id")
    first.locator("form[data-rate] label[for$='-10']").click()  # 5 stars
    expect(page.locator("#toast")).to_contain_text("You rated")
    page.wait_for_function("() => Number(document.body.dataset.liveUpdates || 0) >= 1")  # pushed over the websocket
    after = row_ids(page, "top-picks")
    assert after != before
    assert rated_id not in after
    assert page.evaluate("window.__sameDocument === true")  # updated in place, no reload
