"""Journey: an operator adds ensemble weights in Django admin and activates them; a member's picks change."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.portal import PortalServer

from .conftest import activate_weights_in_admin, sign_in

pytestmark = pytest.mark.browser

FAVOURITES = [(1, 5.0), (260, 4.5), (2571, 4.0), (1214, 5.0), (4993, 4.5), (296, 2.0)]


def _top_picks(page: Any) -> list[str]:
    return page.locator('#rows section[data-row="top-picks"] .card').evaluate_all(
        "cards => cards.map(c => c.dataset.movieId)")


def _active_weights(portal: PortalServer) -> dict[str, float]:
    out = portal.shell("import json\nfrom recommendations.serving_selectors import ensemble_weights_active\n"
                       "row = ensemble_weights_active()\nprint(json.dumps(row.weights if row else {}))\n")
    return json.loads(out.strip().splitlines()[-1])


def test_admin_activates_new_weights_and_the_portal_recommendations_change(
        page: Any, browser: Any, base_url: str, portal: PortalServer, member: dict[str, str]) -> None:
    active = _active_weights(portal)
    if not active:
        pytest.skip("no serving bundle was built for the journeys (build_serving_artifacts failed)")
    portal.shell(
        "from django.contrib.auth import get_user_model\n"
        "from catalog.selectors import movie_get\nfrom catalog.services import rating_upsert\n"
        "from accounts.services import onboarding_complete\n"
        f"u = get_user_model().objects.get(username={member['username']!r})\n"
        f"for movie_id, value in {FAVOURITES!r}:\n"
        "    rating_upsert(user=u, movie=movie_get(movie_id=movie_id), value=value)\n"
        "onboarding_complete(user=u)\n")
    sign_in(page, base_url, member)
    page.goto(f"{base_url}/")
    before = _top_picks(page)
    assert len(before) >= 5

    # The operator: all the weight on the model the active blend trusts least.
    operator = f"operator{os.getpid()}"
    least = min(active, key=active.get)
    weights = {name: (1.0 if name == least else 0.0) for name in active}
    admin = activate_weights_in_admin(browser, base_url, portal, operator, "manual-journey-1", weights)
    expect(admin.locator(".messagelist")).to_contain_text("workers heard from run them so far")

    page.reload()
    after = _top_picks(page)
    assert after != before  # the same member, the same history: only the blend changed
    admin.reload()  # the serving worker that rendered the page has acknowledged the new weights
    expect(admin.locator("#result_list tr", has_text="manual-journey-1")).to_contain_text("1 of 1")
