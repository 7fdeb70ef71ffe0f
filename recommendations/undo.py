"""A per-session undo stack for the portal's rating and watchlist actions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest

from . import activity

SESSION_KEY = "portal_undo"
DEPTH = 20


def undo_push(*, request: HttpRequest, kind: str, movie_id: int, previous: Any, title: str) -> None:
    """Remember how to reverse one action (newest last)."""
    stack = list(request.session.get(SESSION_KEY, []))
    stack.append({"kind": kind, "movie_id": movie_id, "previous": previous, "title": title})
    request.session[SESSION_KEY] = stack[-DEPTH:]


def undo_peek(*, request: HttpRequest) -> dict[str, Any] | None:
    stack = request.session.get(SESSION_KEY, [])
    return stack[-1] if stack else None


def undo_pop(*, request: HttpRequest, user: User) -> dict[str, Any] | None:
    """Reverse the newest action; returns it, or None when there is nothing to undo."""
    stack = list(request.session.get(SESSION_KEY, []))
    if not stack:
        return None
    action = stack.pop()
    request.session[SESSION_KEY] = stack
    if action["kind"] == "rating":
        activity.rating_restore(user=user, movie_id=action["movie_id"], value=action["previous"])
    elif action["kind"] == "watchlist":
        activity.watchlist_set(user=user, movie_id=action["movie_id"], on=bool(action["previous"]))
    return action


def describe(action: dict[str, Any]) -> str:
    """A sentence for the "undone" message."""
    title, previous = action["title"], action["previous"]
    if action["kind"] == "rating":
        return f"Restored your rating of {title} to {previous:g}★." if previous else f"Removed your rating of {title}."
    return f"{'Put back' if previous else 'Took'} {title} {'on' if previous else 'off'} your watchlist."
