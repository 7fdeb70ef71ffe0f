"""Context for the portal's pages, assembled from the rows and the owning apps' selectors."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.urls import reverse

from billing import selectors as billing
from catalog import selectors as catalog

from . import activity, rows, serving
from .llm_explain import llm_enabled

REQUEST_CACHE = "_portal_card_state"


def card_state(request: HttpRequest | None) -> tuple[dict[int, float], set[int]]:
    """(the visitor's ratings, watchlist ids), loaded once per request for every card on the page."""
    if request is None:
        return {}, set()
    cached = getattr(request, REQUEST_CACHE, None)
    if cached is None:
        user = request.user
        cached = (activity.ratings_map(user=user), set(activity.watchlist_ids(user=user)))
        setattr(request, REQUEST_CACHE, cached)
    return cached


def _favourite_genres(user: User | AnonymousUser) -> list[str]:
    if not user.is_authenticated:
        return []
    from accounts.selectors import profile_get

    return list(profile_get(user=user).favourite_genres or [])


def home_context(*, user: User | AnonymousUser) -> dict[str, Any]:
    """Home rows for a member or a visitor."""
    signed_in = user.is_authenticated
    rated = activity.ratings_map(user=user) if signed_in else {}
    favourites = activity.recent_favourites(user=user, limit=rows.BECAUSE_ROWS) if signed_in else []
    home = rows.home_rows(user=user if user.is_authenticated else None, rated=rated, recent_favourites=favourites,
                          genres=_favourite_genres(user))
    return {"rows": home, "rated_count": len(rated), "live": signed_in, "explanations_url": _explanations_url(user)}


def _explanations_url(user: User | AnonymousUser) -> str | None:
    """Where the page asks for LLM sentences after it renders (None: LLM explanations off, or a visitor)."""
    if not user.is_authenticated or not llm_enabled():
        return None
    return reverse("recommendations_api:user-explanations", args=[user.pk])


def movie_extras_context(*, user: User | AnonymousUser, movie: Any) -> dict[str, Any]:
    """The detail page's extras: your rating, the predicted rating for you, and related rows."""
    signed_in = user.is_authenticated
    rated = activity.ratings_map(user=user) if signed_in else {}
    predicted = (serving.picks_predicted_rating(user_id=user.pk, movie_id=movie.id)
                 if user.is_authenticated and movie.id not in rated else None)
    return {"movie": movie, "my_rating": rated.get(movie.id), "predicted": predicted, "rated_count": len(rated),
            "related_rows": rows.detail_rows(movie=movie, exclude=set(rated)), "live": signed_in}


def history_context(*, user: User) -> dict[str, Any]:
    return {"entries": activity.rating_history(user=user, limit=500)}


def watchlist_context(*, user: User) -> dict[str, Any]:
    ids = activity.watchlist_ids(user=user)
    return {"movies": catalog.movie_list_by_ids(movie_ids=ids), "available": activity.watchlist_available()}


def account_context(*, user: User) -> dict[str, Any]:
    """Profile, API keys, plan and usage."""
    from accounts.selectors import api_key_list, profile_get

    usage = billing.usage_summary(user=user)
    usage_rows = []
    for kind, numbers in (usage or {}).get("usage", {}).items():
        limit = numbers.get("limit")
        percent = min(100, round(100 * numbers["used"] / limit)) if limit else 0
        usage_rows.append({"kind": kind.replace("_", " ").capitalize(), **numbers, "percent": percent})
    return {
        "profile": profile_get(user=user),
        "api_keys": list(api_key_list(user=user)),
        "plan": billing.plan_for_user(user=user),
        "account_plan": billing.account_plan_get(user=user),
        "plans": list(billing.plan_list()),
        "billing_available": billing.billing_available(),
        "usage": usage,
        "usage_rows": usage_rows,
        "rated_count": len(activity.ratings_map(user=user)),
    }
