"""Phone (390 px) and desktop widths, form labels, text contrast (WCAG AA) and keyboard reachability."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.browser import DESKTOP, PHONE
from benchmarks.support.portal import PortalServer

from .conftest import sign_in

pytestmark = pytest.mark.browser

PAGES = ["/", "/movies/1/", "/history/", "/watchlist/", "/me/", "/onboarding/"]

# Every form control needs an accessible name: a <label>, aria-label(ledby), or its own text.
UNLABELLED_JS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby') && !(el.textContent || '').trim() && !el.title)
  .map(el => el.outerHTML.slice(0, 120))"""

# Text whose contrast against its effective background is below WCAG AA (4.5:1, or 3:1 for large text).
LOW_CONTRAST_JS = """() => {
  const parse = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.backgroundImage !== 'none') return null;      // image or gradient: judged by eye, not here
      const c = parse(s.backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.checkVisibility() || el.closest('.sr-only')) continue;
    const s = getComputedStyle(el), bg = background(el);
    if (!bg) continue;
    const fg = parse(s.color);
    const [a, b] = [lum(fg.slice(0, 3)), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return bad;
}"""


@pytest.fixture
def rated_member(portal: PortalServer, member: dict[str, str]) -> dict[str, str]:
    """A member with a few favourites, so every row and page has content."""
    portal.shell(
        "from django.contrib.auth import get_user_model\n"
        "from catalog.selectors import movie_get\nfrom catalog.services import rating_upsert\n"
        "from accounts.services import onboarding_complete\n"
        f"u = get_user_model().objects.get(username={member['username']!r})\n"
        "for movie_id, value in [(1, 5.0), (260, 4.5), (2571, 4.0), (318, 3.5), (1214, 5.0)]:\n"
        "    rating_upsert(user=u, movie=movie_get(movie_id=movie_id), value=value)\n"
        "onboarding_complete(user=u, favourite_genres=['Sci-Fi'])\n")
    return member


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone-390", "desktop-1280"])
def test_pages_fit_the_screen_and_have_labels_and_contrast(page: Any, base_url: str, rated_member: dict[str, str],
                                                           viewport: dict[str, int]) -> None:
    page.set_viewport_size(viewport)
    sign_in(page, base_url, rated_member)
    problems: dict[str, Any] = {}
    for path in PAGES:
        page.goto(f"{base_url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 1:
            problems[f"{path} overflows by px"] = overflow
        unlabelled = page.evaluate(UNLABELLED_JS)
        if unlabelled:
            problems[f"{path} unlabelled"] = unlabelled
        low = page.evaluate(LOW_CONTRAST_JS)
        if low:
            problems[f"{path} low contrast"] = low[:10]
        if not page.locator("h1").count():
            problems[f"{path} has no h1"] = True
    assert not problems


def test_rows_scroll_sideways_on_a_phone_and_lay_out_wide_on_a_desktop(page: Any, base_url: str,
                                                                       rated_member: dict[str, str]) -> None:
    sign_in(page, base_url, rated_member)
    page.set_viewport_size(PHONE)
    page.goto(f"{base_url}/")
    row = page.locator("#rows .row-scroll").first
    expect(row).to_be_visible()
    assert row.evaluate("r => r.scrollWidth > r.clientWidth")  # the row scrolls inside itself
    page.set_viewport_size(DESKTOP)
    page.goto(f"{base_url}/")
    tops = page.locator('#rows section[data-row="top-picks"] .card').evaluate_all(
        "cards => cards.slice(0, 5).map(c => Math.round(c.getBoundingClientRect().top))")
    assert len(tops) == 5 and len(set(tops)) == 1  # side by side on one line


def test_why_this_opens_on_tap_and_keyboard(page: Any, base_url: str, rated_member: dict[str, str]) -> None:
    sign_in(page, base_url, rated_member)
    page.goto(f"{base_url}/")
    why = page.locator("#rows details.why").first
    why.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(why.locator("p")).to_be_visible()
    assert why.locator("p").inner_text().strip()
