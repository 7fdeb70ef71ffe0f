"""Portal template tags: movie cards with half-star rating and watchlist toggle, and the detail page's extras.

Usable on any page (catalog lists included): ``{% load portal %}{% movie_card movie reason="…" %}``,
``{% rating_widget movie %}``, ``{% watchlist_toggle movie %}``, ``{% movie_extras movie %}``. The
stylesheet and script they need are loaded site-wide by ``partials/portal_assets.html`` in base.html.
"""

from __future__ import annotations

import datetime as dt
import itertools
from functools import lru_cache
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from .. import activity, pages

register = template.Library()
_ids = itertools.count(1)
STAR_VALUES = [v / 2 for v in range(1, 11)]
PLACEHOLDER_ID = 987654321


def _request(context: template.Context) -> Any:
    return context.get("request")


def _state(context: template.Context, movie: Any) -> dict[str, Any]:
    request = _request(context)
    ratings, watchlist = pages.card_state(request)
    user = getattr(request, "user", None)
    return {"request": request, "movie": movie, "my_rating": ratings.get(movie.id),
            "on_watchlist": movie.id in watchlist, "signed_in": bool(user and user.is_authenticated),
            "watchlist_available": activity.watchlist_available(), "uid": f"m{movie.id}-{next(_ids)}",
            "movie_id": str(movie.id), "rate_url": _url_pattern("recommendations:rating-set").format(movie.id),
            "watchlist_url": _url_pattern("recommendations:watchlist-toggle").format(movie.id),
            "csrf_token": context.get("csrf_token")}


def _stars(value: float | None, uid: str) -> str:
    """The ten half-star radios and labels, built in Python: a template loop here cost ~3 ms per card."""
    parts = []
    for i, v in enumerate(STAR_VALUES, start=1):
        label = f"{v:g} star{'s' if v != 1 else ''}"
        checked = " checked" if value == v else ""
        parts.append(f'<input class="sr-only" type="radio" name="value" id="{uid}-{i}" value="{v:g}"{checked}>'
                     f'<label for="{uid}-{i}" class="half {"l" if i % 2 else "r"}" title="{label}">'
                     f'<span class="sr-only">{label}</span></label>')
    return mark_safe("".join(parts))  # noqa: S308 - numbers and a generated id only, nothing from users


@lru_cache(maxsize=8)
def _url_pattern(name: str) -> str:
    """A reversed URL with a placeholder id, so each card formats instead of reversing (hot path)."""
    return reverse(name, args=[PLACEHOLDER_ID]).replace(str(PLACEHOLDER_ID), "{}")


@register.inclusion_tag("partials/movie_card.html", takes_context=True)
def movie_card(context: template.Context, movie: Any, reason: str = "", row: str = "", stats: bool = False,
               score: float | None = None) -> dict[str, Any]:
    """The one movie card: poster, title and year, the reason (hover or tap), the half-star rating widget and the
    watchlist toggle; ``stats`` adds the mean rating and the search ``score`` (catalog lists)."""
    state = _state(context, movie)
    return {**state, "reason": reason, "row": row, "stats": stats, "score": score,
            "stars": _stars(state["my_rating"], state["uid"])}


@register.inclusion_tag("partials/rating_widget.html", takes_context=True)
def rating_widget(context: template.Context, movie: Any) -> dict[str, Any]:
    """The half-star rating form alone (radio group: Tab to it, arrow keys to rate)."""
    state = _state(context, movie)
    return {**state, "stars": _stars(state["my_rating"], state["uid"])}


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
    state = _state(context, movie)
    return {**state, **extras, "stars": _stars(extras["my_rating"], state["uid"])}


@register.filter
def ago(moment: dt.datetime | None) -> str:
    """"just now" under a minute, else "5 minutes ago", "2 days, 3 hours ago" (never "0 minutes ago")."""
    if moment is None:
        return ""
    if (timezone.now() - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment)} ago"


@register.filter
def money(cents: int | None) -> str:
    """Cents as whole dollars ("$29") or with cents when needed ("$29.50")."""
    value = (cents or 0) / 100
    return f"${value:,.0f}" if value == int(value) else f"${value:,.2f}"
