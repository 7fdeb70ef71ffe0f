"""Browser journeys: Playwright drives Debian's Chromium against a real APEX ASGI server (benchmarks/support/portal.py)."""

from __future__ import annotations

import itertools
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


def sign_in(page: Any, base_url: str, who: dict[str, str], next_path: str = "/") -> None:
    """Log in through the allauth form, as a person would."""
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.locator("input[name=login]").fill(who["username"])
    page.locator("input[name=password]").fill(who["password"])
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_load_state()
