"""Regenerate the README's screenshots: the main portal pages at desktop and phone widths, in Debian's Chromium.

    .venv/bin/python benchmarks/screenshots.py [--out docs/screenshots]

Starts a real APEX server (uvicorn) on a throw-away copy of the embedded catalog (the browser journeys'
prepared database), signs in a demo member with a few favourites, and saves one PNG per page and width.
Posters come from TMDB's image CDN as a visitor's browser loads them; where the CDN cannot be reached (or with
--no-cdn) each poster falls back to its placeholder. The log says how many posters loaded from the CDN.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.support.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE  # noqa: E402
from benchmarks.support.portal import PortalServer  # noqa: E402

logger = logging.getLogger("screenshots")

DEMO = {"username": "demo", "password": "Cinema-Paradiso-1988"}
FAVOURITES = [(1, 5.0), (260, 4.5), (2571, 4.5), (318, 4.0), (1214, 5.0), (4993, 4.5), (296, 3.5)]
SHOTS = [  # (file stem, path, signed in)
    ("home-visitor", "/", False),
    ("login", "/accounts/login/", False),
    ("home", "/", True),
    ("movie", "/movies/1196/", True),  # not among the demo's ratings: shows the predicted rating
    ("search", "/search/?q=space%20adventure%20with%20robots", True),  # the search box's default mode
    ("onboarding", "/onboarding/", True),
    ("history", "/history/", True),
    ("account", "/me/", True),
    ("api-keys", "/account/api-keys/", True),
]
# posters on the page that came from the CDN, and all posters (placeholders included)
POSTERS_JS = """() => { const all = [...document.querySelectorAll('img.poster')];
  return [all.filter(i => i.complete && i.naturalWidth > 0 && i.currentSrc.startsWith('https://image.tmdb.org/')).length,
          all.length]; }"""


def _demo_member(server: PortalServer) -> None:
    server.create_user(username=DEMO["username"], password=DEMO["password"])
    server.shell(
        "from django.contrib.auth import get_user_model\n"
        "from catalog.selectors import movie_get\nfrom catalog.services import rating_upsert\n"
        "from accounts.services import onboarding_complete\n"
        f"u = get_user_model().objects.get(username={DEMO['username']!r})\n"
        f"for movie_id, value in {FAVOURITES!r}:\n"
        "    rating_upsert(user=u, movie=movie_get(movie_id=movie_id), value=value)\n"
        "onboarding_complete(user=u, favourite_genres=['Sci-Fi', 'Adventure'])\n")


def capture(out: Path, *, cdn: bool = True) -> list[Path]:
    """Save every page in SHOTS at both widths; returns the files written."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="apex-shots-") as tmp:
        server = PortalServer(Path(tmp))
        server.prepare()
        server.manage("build_search_index", "--quiet", timeout=1800)  # the journeys' database has no search index
        _demo_member(server)
        server.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                for width_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                    for signed_in in (False, True):
                        context = browser.new_context(viewport=viewport, device_scale_factor=1)
                        page = context.new_page()
                        if not cdn:
                            page.route("https://image.tmdb.org/**", lambda route: route.abort())
                        if signed_in:
                            page.goto(f"{server.url}/accounts/login/")
                            page.fill("input[name=login]", DEMO["username"])
                            page.fill("input[name=password]", DEMO["password"])
                            page.locator("form button[type=submit]").last.click()
                            page.wait_for_load_state()
                        for stem, path, needs_login in SHOTS:
                            if needs_login != signed_in:
                                continue
                            page.goto(f"{server.url}{path}")
                            page.wait_for_load_state("networkidle")
                            page.evaluate("() => document.fonts.ready")
                            from_cdn, posters = page.evaluate(POSTERS_JS)
                            target = out / f"{stem}-{width_name}.png"
                            page.screenshot(path=str(target), full_page=width_name == "phone" and stem == "movie")
                            written.append(target)
                            logger.info("wrote %s (%d of %d posters from TMDB's CDN, the rest placeholders)",
                                        target.relative_to(REPO), from_cdn, posters)
                        context.close()
                browser.close()
        finally:
            server.stop()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--no-cdn", action="store_true", help="refuse TMDB's image CDN: placeholders only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    files = capture(args.out, cdn=not args.no_cdn)
    logger.info("%d screenshots in %.1f s", len(files), time.perf_counter() - started)


if __name__ == "__main__":
    main()
