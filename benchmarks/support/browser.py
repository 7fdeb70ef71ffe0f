"""Debian's Chromium for Playwright (``playwright install`` cannot work offline) and the viewports we test at."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("APEX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
