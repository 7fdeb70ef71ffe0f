"""Adapter between Django and ml_core's serving API (the only place that calls ml_core).

Filled in by the serving work; until artifacts exist the tier is unknown.
"""

from __future__ import annotations

_engine = None


def current_tier_name() -> str | None:
    """The loaded engine's tier name, or None when no engine has been loaded in this process."""
    return None if _engine is None else getattr(_engine, "tier_name", None)
