"""``{% load build_banner %}{% build_banner %}``: the portal's quiet note while the build after set-up runs."""

from __future__ import annotations

from typing import Any

from django import template

from ..background_build import background_build_banner

register = template.Library()


@register.inclusion_tag("partials/build_banner.html")
def build_banner() -> dict[str, Any]:
    """Nothing once the build is done (or failed: operators see that in the admin and the status endpoint)."""
    try:
        return {"build": background_build_banner()}
    except Exception:  # noqa: BLE001 - a status note must never break a page (e.g. the table not migrated yet)
        return {"build": None}
