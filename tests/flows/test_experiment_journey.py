"""Journey: an operator creates a two-arm experiment in admin and starts it; members get recommendations and click
through the API; the operator reads the results (table, figure, API) and concludes it."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.portal import PortalServer

from .conftest import PASSWORD

pytestmark = pytest.mark.browser

MEMBERS = 12
RATED = [(1, 5.0), (260, 4.5), (2571, 4.0)]
CLICKS = {"control": 1, "lightgcn-only": 3}  # how many of their five picks members of each arm click


def _members(portal: PortalServer, prefix: str, count: int = MEMBERS) -> list[dict[str, Any]]:
    """Verified members with a JWT each (made in one shell call: a dozen sign-ins would meet the anon throttle)."""
    out = portal.shell(
        "import json\nfrom django.contrib.auth import get_user_model\n"
        "from rest_framework_simplejwt.tokens import RefreshToken\n"
        "from allauth.account.models import EmailAddress\nrows = []\n"
        f"for i in range({count}):\n"
        f"    u = get_user_model().objects.create_user(f'{prefix}{{i}}', f'{prefix}{{i}}@example.com', {PASSWORD!r})\n"
        "    EmailAddress.objects.create(user=u, email=u.email, verified=True, primary=True)\n"
        "    rows.append({'id': u.pk, 'token': str(RefreshToken.for_user(u).access_token)})\n"
        "print(json.dumps(rows))\n")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _traffic(page: Any, base_url: str, member: dict[str, Any]) -> str:
    """One member: rates three films, asks for five picks, clicks some of them; returns their arm's name."""
    headers = {"Authorization": f"Bearer {member['token']}"}
    for n, (movie_id, value) in enumerate(RATED):
        r = page.request.post(f"{base_url}/v1/events", headers=headers, data={
            "movie_id": movie_id, "kind": "rating", "value": value, "idempotency_key": f"r{member['id']}-{n}"})
        assert r.status == 202, r.text()
    r = page.request.get(f"{base_url}/v1/recommendations/user/{member['id']}?k=5", headers=headers)
    assert r.status == 200, r.text()
    body = r.json()
    assert body["arm"] is not None, "a member of the site is bucketed while the experiment runs"
    arm = body["arm"]["arm"]
    for item in body["items"][: CLICKS[arm]]:
        r = page.request.post(f"{base_url}/v1/events", headers=headers, data={
            "movie_id": item["movie_id"], "kind": "click", "idempotency_key": f"c{member['id']}-{item['movie_id']}",
            "request_id": body["request_id"]})
        assert r.status == 202, r.text()
    return arm  # type: ignore[no-any-return]


def _action(admin: Any, name: str, action: str) -> None:
    admin.goto("/admin/experiments/experiment/")
    admin.locator("#result_list tr", has_text=name).locator("input.action-select").check()
    admin.select_option("select[name=action]", action)
    admin.get_by_role("button", name="Go").click()


def test_an_operator_runs_an_experiment_from_admin_to_decision(
        page: Any, browser: Any, base_url: str, portal: PortalServer) -> None:
    weights = json.loads(portal.shell(
        "import json\nfrom recommendations.serving_selectors import ensemble_weights_active\n"
        "row = ensemble_weights_active()\nprint(json.dumps(row.weights if row else {}))\n").strip().splitlines()[-1])
    if "lightgcn" not in weights:
        pytest.skip("no serving bundle with lightgcn was built for the journeys (build_serving_artifacts failed)")
    operator = f"experimenter{os.getpid()}"
    portal.create_user(username=operator, password=PASSWORD, staff=True)
    admin = browser.new_context(base_url=base_url).new_page()
    admin.goto("/admin/login/?next=/admin/")
    admin.fill("#id_username", operator)
    admin.fill("#id_password", PASSWORD)
    admin.get_by_role("button", name="Log in").click()

    # 1. define it: a control and an arm that blends with LightGCN alone, half the members each
    name = f"lightgcn blend {os.getpid()}"
    admin.goto("/admin/experiments/experiment/add/")
    admin.fill("#id_name", name)
    admin.select_option("#id_metric", "click_through")
    for i, (arm, kind, config, control) in enumerate([("control", "weights", "{}", True),
                                                      ("lightgcn-only", "weights", '{"weights": {"lightgcn": 1}}',
                                                       False)]):
        admin.fill(f"#id_arms-{i}-name", arm)
        admin.fill(f"#id_arms-{i}-share", "0.5")
        admin.select_option(f"#id_arms-{i}-kind", kind)
        admin.fill(f"#id_arms-{i}-config", config)
        if control:
            admin.check(f"#id_arms-{i}-is_control")
    admin.get_by_role("button", name="Save", exact=True).click()
    expect(admin.locator(".messagelist")).to_contain_text("was added successfully")

    # 2. start it
    _action(admin, name, "start")
    expect(admin.locator(".messagelist")).to_contain_text(f"Experiment {name} is running")

    # 3. traffic: members rate, ask for picks and click through the API, each in their arm
    arms = [_traffic(page, base_url, m) for m in _members(portal, f"exp{os.getpid()}x")]
    assert set(arms) <= set(CLICKS) and len(arms) == MEMBERS

    # 4. a look, then the results page: every member measured, each arm's click-through as they clicked
    _action(admin, name, "look_now")
    expect(admin.locator(".messagelist")).to_contain_text("has a new look")
    admin.locator("#result_list a", has_text=name).click()
    table = admin.locator("#experiment-results")
    expect(table).to_be_visible()
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    measured = 0
    for i in range(2):
        cells = rows.nth(i).locator("td").all_inner_texts()
        arm = cells[0].replace(" (control)", "")
        members = int(cells[2])
        assert members == arms.count(arm)
        measured += members
        if members:
            assert float(cells[4]) == pytest.approx(CLICKS[arm] / 5)  # every member clicked that many of five
    assert measured == MEMBERS
    expect(admin.locator("#experiment-srm")).to_contain_text("Sample-ratio check: p =")
    plot = admin.locator("#experiment-plot")
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.decode().then(() => img.naturalWidth)") == 800  # the server drew the figure

    # 5. conclude: the decision is recorded and shown, and the staff API says the same
    _action(admin, name, "conclude")
    expect(admin.locator(".messagelist")).to_contain_text(f"Experiment {name} is concluded")
    admin.locator("#result_list a", has_text=name).click()
    decision = admin.locator("#experiment-decision")
    expect(decision).to_contain_text(re.compile(r"ship|keep control|investigate"))
    experiment_id = int(re.search(r"/experiment/(\d+)/change/", admin.url).group(1))
    api = admin.request.get(f"{base_url}/v1/experiments/{experiment_id}")
    assert api.status == 200, api.text()
    body = api.json()
    assert body["status"] == "concluded" and body["decision"]["action"] in decision.inner_text()
    assert sum(a["members"] for a in body["arms"]) == MEMBERS and len(body["history"]) >= 4
    # a member may not read it
    late = _members(portal, f"late{os.getpid()}x", count=1)[0]
    member_api = page.request.get(f"{base_url}/v1/experiments/{experiment_id}",
                                  headers={"Authorization": f"Bearer {late['token']}"})
    assert member_api.status == 403
