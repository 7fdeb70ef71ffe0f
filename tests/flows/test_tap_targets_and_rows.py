"""Tap targets are at least 24 x 24 CSS px (WCAG 2.5.8), and "More like this" scrolls sideways with a visible cue."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.browser import DESKTOP, PHONE
from benchmarks.support.portal import PortalServer

from .conftest import sign_in

pytestmark = pytest.mark.browser

MIN_PX = 24

# Every visible control a finger or pointer aims at, with its bounding box. A radio or checkbox inside its <label>
# counts as the label (tapping either works); the half-stars' radios are visually hidden, their labels are the
# targets. Links inside a sentence are WCAG 2.5.8's "inline" exception (the footer's credits, "Sign in to rate it").
SMALL_TARGETS_JS = """(min) => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, .stars label';
  const inSentence = el => el.tagName === 'A' && getComputedStyle(el).display === 'inline'
    && el.parentElement.textContent.trim().length > el.textContent.trim().length + 3;
  const small = [];
  for (const el of document.querySelectorAll(selector)) {
    const target = el.matches('input[type=radio], input[type=checkbox]') && el.closest('label') || el;
    if (el.matches('.sr-only, .visually-hidden, .skip-link') || inSentence(el)) continue;
    if (!target.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
    const box = target.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.width < min - 0.01 || box.height < min - 0.01) {
      small.push(`${target.tagName.toLowerCase()}.${[...target.classList].join('.')} "${
        (target.textContent || target.getAttribute('aria-label') || '').trim().slice(0, 24)}" `
        + `${box.width.toFixed(1)}x${box.height.toFixed(1)}`);
    }
  }
  return small;
}"""


@pytest.fixture
def rater(portal: PortalServer, member: dict[str, str]) -> dict[str, str]:
    """A member with a few ratings, so the home page shows personal rows of cards with rating widgets."""
    portal.shell(
        "from django.contrib.auth import get_user_model\n"
        "from catalog.selectors import movie_get\nfrom catalog.services import rating_upsert\n"
        "from accounts.services import onboarding_complete\n"
        f"u = get_user_model().objects.get(username={member['username']!r})\n"
        "for movie_id, value in [(1, 5.0), (260, 4.5), (2571, 4.0)]:\n"
        "    rating_upsert(user=u, movie=movie_get(movie_id=movie_id), value=value)\n"
        "onboarding_complete(user=u, favourite_genres=['Sci-Fi'])\n")
    return member


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone-390", "desktop-1280"])
def test_every_control_on_the_home_and_movie_pages_is_at_least_24_px(page: Any, base_url: str,
                                                                      rater: dict[str, str],
                                                                      viewport: dict[str, int]) -> None:
    page.set_viewport_size(viewport)
    page.set_default_timeout(60_000)  # the first recommendation page of a run loads the engine
    small: dict[str, list[str]] = {}
    for signed_in in (False, True):
        if signed_in:
            sign_in(page, base_url, rater)
        for path in ("/", "/movies/1/"):
            page.goto(f"{base_url}{path}")
            expect(page.locator(".stars label, .rate-signin").first).to_be_attached()  # cards with their widgets
            found = page.evaluate(SMALL_TARGETS_JS, MIN_PX)
            if found:
                small[f"{path} ({'member' if signed_in else 'visitor'})"] = found[:12]
    assert not small
    half = page.locator("#movie-extras .extras-you .stars label").first.bounding_box()  # the half-star itself
    assert half["width"] >= MIN_PX and half["height"] >= MIN_PX


def test_more_like_this_scrolls_sideways_with_a_fade_and_arrows(page: Any, base_url: str, rater: dict[str, str]) -> None:
    page.set_default_timeout(60_000)
    sign_in(page, base_url, rater, next_path="/movies/1/")
    page.goto(f"{base_url}/movies/1/")
    section = page.locator('section[data-row="more-like-this"]')
    scroller, row = section.locator(".row-scroller"), section.locator(".row-scroll")
    back, forward = section.get_by_role("button", name="Scroll More like this back"), \
        section.get_by_role("button", name="Scroll More like this forward")
    expect(scroller).to_have_class("row-scroller overflows more-right")  # more to the right, none to the left
    assert row.evaluate("r => r.scrollWidth > r.clientWidth && r.scrollLeft === 0")
    fade = "([s, side]) => getComputedStyle(s, side).opacity"  # the fades fade in (a short transition)
    page.wait_for_function(f"a => ({fade})(a) === '1'", arg=[scroller.element_handle(), "::after"])  # right edge
    assert scroller.evaluate("s => getComputedStyle(s, '::before').opacity") == "0"
    expect(forward).to_be_visible()
    expect(back).to_be_hidden()

    forward.click()
    page.wait_for_function("r => r.scrollLeft > 100", arg=row.element_handle())  # the row moved, the page did not
    expect(scroller).to_contain_class("more-left")
    expect(back).to_be_visible()
    page.wait_for_function(f"a => ({fade})(a) === '1'", arg=[scroller.element_handle(), "::before"])  # left edge
    assert page.evaluate("window.scrollX") == 0

    row.evaluate("r => r.scrollTo({left: r.scrollWidth})")  # at the end: no cue to the right any more
    expect(forward).to_be_hidden()
    expect(scroller).not_to_contain_class("more-right")

    # a row whose cards all fit shows no cue at all
    row.evaluate("r => [...r.querySelectorAll('.card')].slice(2).forEach(c => c.remove())")
    expect(scroller).to_have_class("row-scroller")
    expect(back).to_be_hidden()
    expect(forward).to_be_hidden()
