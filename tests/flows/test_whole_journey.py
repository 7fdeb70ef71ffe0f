"""The whole first visit in one journey (issue 20): sign up, onboarding, search, rating with a live refresh, an
API key and a call with it, then an operator's weight change that the member's next page reflects."""

from __future__ import annotations

import os
from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.portal import PortalServer

from .conftest import activate_weights_in_admin, sign_up
from .test_admin_weights import _active_weights, _top_picks
from .test_signup_to_live_rows import rate_card, row_ids

pytestmark = pytest.mark.browser


def test_sign_up_search_rate_live_api_key_call_and_an_admin_weight_change(
        page: Any, browser: Any, base_url: str, portal: PortalServer) -> None:
    sign_up(page, base_url, portal, f"journey{os.getpid()}")

    # onboarding: five ratings, then the personal home page
    expect(page).to_have_url(f"{base_url}/onboarding/")
    cards = page.locator(".grid .card")
    for i, value in enumerate([5.0, 4.5, 4.0, 3.5, 5.0]):
        rate_card(cards.nth(i), value)
    page.get_by_role("button", name="See my recommendations").click()
    expect(page).to_have_url(f"{base_url}/")
    expect(page.locator('#rows section[data-row="top-picks"] .card').first).to_be_visible()

    # search from the home page's box, in its default mode
    page.fill("#hero-q", "toy story")
    page.locator("#hero-q").press("Enter")
    expect(page.locator("main")).to_contain_text("Toy Story")

    # a rating on the home page refreshes the rows live, in place
    page.goto(f"{base_url}/")
    page.wait_for_function("() => document.body.dataset.live === 'open'")
    before = row_ids(page, "top-picks")
    page.locator('#rows section[data-row="top-picks"] .card').first.locator("form[data-rate] label[for$='-10']").click()
    expect(page.locator("#toast")).to_contain_text("You rated")
    page.wait_for_function("() => Number(document.body.dataset.liveUpdates || 0) >= 1")
    assert row_ids(page, "top-picks") != before

    # an API key, and a call with it
    page.goto(f"{base_url}/account/api-keys/")
    page.fill("input[name=name]", "my script")
    page.get_by_role("button", name="Create key").click()
    raw = page.locator("#new-api-key").inner_text().strip()
    headers = {"Authorization": f"Api-Key {raw}"}
    me = page.request.get(f"{base_url}/v1/auth/me", headers=headers)
    assert me.status == 200, me.text()
    picks = page.request.get(f"{base_url}/v1/recommendations/user/{me.json()['id']}?k=5", headers=headers)
    assert picks.status == 200, picks.text()
    assert len(picks.json()["items"]) == 5

    # an operator puts all the weight on one model; the member's next page is ranked by it
    active = _active_weights(portal)
    if not active:
        pytest.skip("no serving bundle was built for the journeys")
    page.goto(f"{base_url}/")
    shown = _top_picks(page)
    least = min(active, key=active.get)
    activate_weights_in_admin(browser, base_url, portal, f"journeyop{os.getpid()}", "whole-journey-1",
                              {m: (1.0 if m == least else 0.0) for m in active})
    page.reload()
    assert _top_picks(page) != shown
