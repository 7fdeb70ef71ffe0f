"""Browser journeys: Playwright drives Debian's Chromium against a real APEX ASGI server (benchmarks/support/portal.py)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP
from benchmarks.support.portal import PortalServer

from .stripe_server import StripeServer

PASSWORD = "Cinema-Paradiso-1988"
PREPARE_TIMEOUT_S = 2400
_names = itertools.count(1)

# Playwright's sync API runs an event loop in this thread; Django code called from tests must not refuse.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # the first journey also pays for preparing the server (catalog import, quick training)
        if "browser" in item.keywords or "browser_heavy" in item.keywords:
            item.add_marker(pytest.mark.timeout(PREPARE_TIMEOUT_S))
    if Path(CHROMIUM).exists() or shutil.which("chromium"):
        return
    skip = pytest.mark.skip(reason=f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords or "browser_heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeServer]:
    """Recorded Stripe responses over HTTP, for the server's real stripe client."""
    server = StripeServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory, stripe_server: StripeServer) -> Iterator[PortalServer]:
    """One running server for the session, on a fresh copy of the prepared database."""
    server = PortalServer(tmp_path_factory.mktemp("portal"), extra_env={"APEX_FLOWS_STRIPE_HOST": stripe_server.url})
    server.prepare()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def base_url(portal: PortalServer) -> str:
    return portal.url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium instead of Playwright's download (which cannot work offline)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": DESKTOP}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(page: Any, request: pytest.FixtureRequest, portal: PortalServer) -> Iterator[Any]:
    """Pages never wait on the internet: TMDB posters are refused, so placeholders show (as offline visitors see).

    When a journey fails, the server's log tail and the browser console are printed with the failure.
    """
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    page.route("https://image.tmdb.org/**", lambda route: route.abort())
    page.set_default_timeout(15_000)
    expect.set_options(timeout=10_000)  # a loaded 2-core CI box is slower than a laptop
    yield page
    if request.node.stash.get(_FAILED, False):
        print("---- browser console ----\n" + "\n".join(console[-40:]))
        print("---- server log (tail) ----\n" + portal.log()[-4000:])


@pytest.fixture
def member(portal: PortalServer) -> dict[str, str]:
    """A verified member with no history yet."""
    name = f"member{os.getpid()}x{next(_names)}"
    portal.create_user(username=name, password=PASSWORD)
    return {"username": name, "password": PASSWORD, "email": f"{name}@example.com"}


def sign_up(page: Any, base_url: str, portal: PortalServer, name: str) -> None:
    """Sign up as ``name`` through allauth, confirm the e-mail from the console backend's mail and be signed in
    (the next page is onboarding)."""
    email = f"{name}@example.com"
    page.goto(f"{base_url}/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=username]", name)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.goto(portal.email_link(to=email))  # the verification mail printed by the console backend
    page.locator("form button[type=submit]").last.click()
    expect(page.get_by_text("confirmed", exact=False).first).to_be_visible()
    page.goto(f"{base_url}/accounts/login/?next=/")  # signed in already? allauth sends us straight on
    if page.locator("input[name=login]").count():
        page.fill("input[name=login]", name)
        page.fill("input[name=password]", PASSWORD)
        page.locator("form button[type=submit]").last.click()


def activate_weights_in_admin(browser: Any, base_url: str, portal: PortalServer, operator: str, version: str,
                              weights: dict[str, float]) -> Any:
    """A staff operator logs in to admin in a context of their own, adds ``weights`` as ``version`` and activates
    it; returns the operator's admin page (its messages say what happened)."""
    portal.create_user(username=operator, password=PASSWORD, staff=True)
    admin = browser.new_context(base_url=base_url).new_page()
    admin.goto(f"{base_url}/admin/login/?next=/admin/")
    admin.fill("#id_username", operator)
    admin.fill("#id_password", PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.goto(f"{base_url}/admin/recommendations/ensembleweights/add/")
    admin.fill("#id_version", version)
    admin.fill("#id_weights", json.dumps(weights))
    admin.fill("#id_source", "manual")
    admin.get_by_role("button", name="Save", exact=True).click()
    expect(admin.locator(".messagelist")).to_contain_text("was added successfully")
    row = admin.locator("#result_list tr", has_text=version)
    row.locator("input.action-select").check()
    admin.select_option("select[name=action]", "activate")
    admin.get_by_role("button", name="Go").click()
    expect(admin.locator(".messagelist")).to_contain_text(f"Weights {version} are now the active version")
    return admin


def sign_in(page: Any, base_url: str, who: dict[str, str], next_path: str = "/") -> None:
    """Log in through the allauth form, as a person would."""
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.locator("input[name=login]").fill(who["username"])
    page.locator("input[name=password]").fill(who["password"])
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_load_state()
