"""Portal template tags: movie cards with half-star rating and watchlist toggle, and the detail page's extras.

Usable on any page (catalog lists included): ``{% load portal %}{% movie_card movie reason="…" %}``,
``{% rating_widget movie %}``, ``{% watchlist_toggle movie %}``, ``{% movie_extras movie %}``. The
stylesheet and script they need are loaded site-wide by ``partials/portal_assets.html`` in base.html.
"""

from __future__ import annotations

import itertools
from typing import Any

from django import template

from .. import activity, pages

register = template.Library()
_ids = itertools.count(1)
STAR_VALUES = [v / 2 for v in range(1, 11)]


def _request(context: template.Context) -> Any:
    return context.get("request")


def _state(context: template.Context, movie: Any) -> dict[str, Any]:
    request = _request(context)
    ratings, watchlist = pages.card_state(request)
    user = getattr(request, "user", None)
    return {"request": request, "movie": movie, "my_rating": ratings.get(movie.id),
            "on_watchlist": movie.id in watchlist, "signed_in": bool(user and user.is_authenticated),
            "watchlist_available": activity.watchlist_available(), "uid": f"m{movie.id}-{next(_ids)}",
            "csrf_token": context.get("csrf_token")}


def _stars(value: float | None) -> list[dict[str, Any]]:
    return [{"value": f"{v:g}", "label": f"{v:g} star{'s' if v != 1 else ''}", "checked": value == v,
             "side": "l" if i % 2 == 0 else "r"} for i, v in enumerate(STAR_VALUES)]


@register.inclusion_tag("partials/movie_card.html", takes_context=True)
def movie_card(context: template.Context, movie: Any, reason: str = "", row: str = "") -> dict[str, Any]:
    """A poster card with the reason (hover or tap), the half-star rating widget and the watchlist toggle."""
    state = _state(context, movie)
    return {**state, "reason": reason, "row": row, "stars": _stars(state["my_rating"])}


@register.inclusion_tag("partials/rating_widget.html", takes_context=True)
def rating_widget(context: template.Context, movie: Any) -> dict[str, Any]:
    """The half-star rating form alone (radio group: Tab to it, arrow keys to rate)."""
    state = _state(context, movie)
    return {**state, "stars": _stars(state["my_rating"])}


@register.inclusion_tag("partials/watchlist_toggle.html", takes_context=True)
def watchlist_toggle(context: template.Context, movie: Any) -> dict[str, Any]:
    return _state(context, movie)


@register.inclusion_tag("partials/movie_extras.html", takes_context=True)
def movie_extras(context: template.Context, movie: Any) -> dict[str, Any]:
    """Detail-page extras (live-refreshed as a whole): your rating, predicted rating, related rows."""
    request = _request(context)
    return {"movie": movie, "request": request, "csrf_token": context.get("csrf_token"),
            "live": bool(request and request.user.is_authenticated)}


@register.inclusion_tag("partials/movie_extras_body.html", takes_context=True)
def movie_extras_body(context: template.Context, movie: Any) -> dict[str, Any]:
    """The inside of the extras section: your rating, the predicted rating, more like this, franchise, director."""
    request = _request(context)
    extras = pages.movie_extras_context(user=request.user, movie=movie)
    return {**_state(context, movie), **extras, "stars": _stars(extras["my_rating"])}


@register.filter
def money(cents: int | None) -> str:
    """Cents as whole dollars ("$29") or with cents when needed ("$29.50")."""
    value = (cents or 0) / 100
    return f"${value:,.0f}" if value == int(value) else f"${value:,.2f}"
