"""Journeys: search and open a movie; add it to the watchlist; rate with the keyboard; history with undo."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.portal import PortalServer

from .conftest import sign_in

pytestmark = pytest.mark.browser


def test_search_and_open_a_movie(page: Any, base_url: str, portal: PortalServer, member: dict[str, str]) -> None:
    sign_in(page, base_url, member, next_path="/search/?q=matrix")
    page.goto(f"{base_url}/search/?q=matrix&mode=keyword")
    result = page.get_by_role("link", name="Matrix", exact=False).first
    expect(result).to_be_visible()
    result.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Matrix")
    extras = page.locator("#movie-extras")
    expect(extras.get_by_role("heading", name="Your rating")).to_be_visible()
    expect(extras.locator('section[data-row="more-like-this"] .card').first).to_be_visible()


def test_add_to_watchlist_from_the_movie_page_and_undo(page: Any, base_url: str, portal: PortalServer,
                                                      member: dict[str, str]) -> None:
    sign_in(page, base_url, member, next_path="/movies/1/")
    page.goto(f"{base_url}/movies/1/")  # Toy Story
    toggle = page.locator("#movie-extras .extras-you form[data-watchlist] button")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#toast")).to_contain_text("Added Toy Story")

    page.goto(f"{base_url}/watchlist/")
    expect(page.locator('.card[data-movie-id="1"]')).to_be_visible()
    page.goto(f"{base_url}/movies/1/")
    page.locator("#movie-extras .extras-you form[data-watchlist] button").click()  # take it off again
    expect(page.locator("#toast")).to_contain_text("Removed Toy Story")
    page.locator("#toast").get_by_role("button", name="Undo").click()  # …and undo that
    expect(page.locator("#toast")).to_contain_text("Put back Toy Story")
    page.goto(f"{base_url}/watchlist/")
    expect(page.locator('.card[data-movie-id="1"]')).to_be_visible()


def test_tab_to_the_rating_widget_and_rate_with_arrow_keys(page: Any, base_url: str, portal: PortalServer,
                                                           member: dict[str, str]) -> None:
    sign_in(page, base_url, member, next_path="/movies/1/")
    page.goto(f"{base_url}/movies/1/")
    for _ in range(120):  # Tab through the page (past the franchise row's cards) to "Your rating"
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('#movie-extras .extras-you form[data-rate] input')"):
            break
    else:
        pytest.fail("the rating widget is not reachable with Tab")
    label = page.evaluate("document.activeElement.labels[0].textContent.trim()")
    assert label == "0.5 stars"
    outline = page.evaluate("getComputedStyle(document.activeElement.labels[0]).outlineStyle")
    assert outline != "none"  # the focused half-star is visibly marked
    for _ in range(7):
        page.keyboard.press("ArrowRight")  # 0.5 -> 4.0
    form = page.locator("#movie-extras .extras-you form[data-rate]")
    expect(form.locator(".rate-status")).to_have_text("4★")
    page.goto(f"{base_url}/history/")
    item = page.locator('.history-item[data-movie-id="1"]')
    expect(item.locator("input[type=radio][value='4']")).to_be_checked()


def test_history_undo_without_javascript(page: Any, base_url: str, portal: PortalServer,
                                         member: dict[str, str], browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False, base_url=base_url)
    plain = context.new_page()
    plain.route("https://image.tmdb.org/**", lambda route: route.abort())
    sign_in(plain, base_url, member, next_path="/movies/2571/")
    plain.goto(f"{base_url}/movies/2571/")
    extras = plain.locator("#movie-extras")
    extras.locator("form[data-rate] label[for$='-9']").first.click()  # 4.5 stars
    extras.get_by_role("button", name="Rate").first.click()  # no JS: the form posts and the page reloads
    expect(plain.locator(".messages")).to_contain_text("You rated The Matrix 4.5★")
    plain.locator(".messages").get_by_role("button", name="Undo").click()
    expect(plain.locator(".messages")).to_contain_text("Removed your rating of The Matrix")
    plain.goto(f"{base_url}/history/")
    expect(plain.locator('.history-item[data-movie-id="2571"]')).to_have_count(0)
    context.close()
