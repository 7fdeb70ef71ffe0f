"""Portal pages: personalised home, live rows fragment, ratings, watchlist, history with undo, onboarding, account.

Every form works without JavaScript (post, then redirect back); with JavaScript the same endpoints answer
JSON when asked (``Accept: application/json``), and the page updates in place.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import user_signed_in
from catalog import selectors as catalog

from . import activity, onboarding, pages, undo


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _back(request: HttpRequest, fallback: str = "/") -> HttpResponse:
    """Redirect to ``next`` (or the referring page) when it is on this site."""
    target = request.POST.get("next") or request.headers.get("Referer") or fallback
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = fallback
    return redirect(target)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Personalised rows for members (new members go to onboarding first); popular rows for visitors."""
    if request.user.is_authenticated and onboarding.needs_onboarding(user=request.user):
        return redirect("recommendations:onboarding")
    return render(request, "recommendations/home.html", pages.home_context(user=request.user))


@require_GET
def rows_fragment(request: HttpRequest) -> HttpResponse:
    """The home rows alone, for live refresh after a websocket push."""
    return render(request, "recommendations/_rows.html", pages.home_context(user=request.user))


@require_GET
def movie_extras_fragment(request: HttpRequest, movie_id: int) -> HttpResponse:
    """A movie's detail extras (your rating, predicted rating, related rows), for live refresh."""
    movie = catalog.movie_get(movie_id=movie_id)
    return render(request, "recommendations/_movie_extras.html", {"movie": movie})


@login_required
@require_POST
def rating_set(request: HttpRequest, movie_id: int) -> HttpResponse:
    """Rate a movie (0.5-5 in half steps), or clear the rating (``clear=1``)."""
    user = user_signed_in(request=request)
    movie = catalog.movie_get(movie_id=movie_id)
    raw = request.POST.get("value", "").strip()
    try:
        if request.POST.get("clear") or raw in ("", "0"):
            previous = activity.rating_clear(user=user, movie_id=movie.id)
            value, text = None, f"Removed your rating of {movie.title}."
        else:
            previous = activity.rating_set(user=user, movie_id=movie.id, value=float(raw))
            value, text = float(raw), f"You rated {movie.title} {float(raw):g}★."
    except (ValueError, ValidationError) as exc:
        error = "; ".join(getattr(exc, "messages", [str(exc)]))
        if _wants_json(request):
            return JsonResponse({"ok": False, "error": f"Rating must be 0.5 to 5 in half steps ({error})."},
                                status=400)
        messages.error(request, "Rating must be 0.5 to 5 in half steps.")
        return _back(request)
    undo.undo_push(request=request, kind="rating", movie_id=movie.id, previous=previous, title=movie.title)
    if _wants_json(request):
        return JsonResponse({"ok": True, "movie_id": movie.id, "value": value, "message": text,
                             "was_rated": previous is not None, "undo_url": reverse("recommendations:undo")})
    messages.success(request, text, extra_tags="undoable")
    return _back(request)


@login_required
@require_POST
def watchlist_toggle(request: HttpRequest, movie_id: int) -> HttpResponse:
    """Put a movie on the watchlist or take it off (``on`` = 1/0; without it, flip)."""
    user = user_signed_in(request=request)
    movie = catalog.movie_get(movie_id=movie_id)
    current = movie.id in activity.watchlist_ids(user=user)
    wanted = request.POST.get("on", "1" if not current else "0") == "1"
    try:
        activity.watchlist_set(user=user, movie_id=movie.id, on=wanted)
    except NotImplementedError as exc:
        if _wants_json(request):
            return JsonResponse({"ok": False, "error": str(exc)}, status=503)
        messages.error(request, str(exc))
        return _back(request)
    undo.undo_push(request=request, kind="watchlist", movie_id=movie.id, previous=current, title=movie.title)
    text = f"{'Added' if wanted else 'Removed'} {movie.title} {'to' if wanted else 'from'} your watchlist."
    if _wants_json(request):
        return JsonResponse({"ok": True, "movie_id": movie.id, "on": wanted, "message": text,
                             "undo_url": reverse("recommendations:undo")})
    messages.success(request, text, extra_tags="undoable")
    return _back(request)


@login_required
@require_POST
def undo_last(request: HttpRequest) -> HttpResponse:
    """Reverse the newest rating or watchlist action of this session."""
    action = undo.undo_pop(request=request, user=user_signed_in(request=request))
    text = undo.describe(action) if action else "Nothing to undo."
    if _wants_json(request):
        return JsonResponse({"ok": action is not None, "message": text,
                             "movie_id": action["movie_id"] if action else None})
    messages.info(request, text)
    return _back(request)


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """Everything the user rated, newest first, each with a change or remove control."""
    return render(request, "recommendations/history.html", pages.history_context(user=user_signed_in(request=request)))


@login_required
@require_GET
def watchlist(request: HttpRequest) -> HttpResponse:
    return render(request, "recommendations/watchlist.html", pages.watchlist_context(user=user_signed_in(request=request)))


@login_required
def onboarding_page(request: HttpRequest) -> HttpResponse:
    """Pick movies you know, group by group, until the recommendations have enough to go on."""
    user = user_signed_in(request=request)
    if request.method == "POST":
        if request.POST.get("action") == "genres":
            onboarding.genres_save(user=user, genres=request.POST.getlist("genres"))
            return redirect("recommendations:onboarding")
        onboarding.finish(user=user)
        messages.success(request, "You're all set: here are your recommendations.")
        return redirect("recommendations:home")
    group = request.GET.get("group", "")
    return render(request, "recommendations/onboarding.html",
                  onboarding.onboarding_context(user=user, group=group))


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """Profile, favourite genres (POST saves them), API keys, subscription and usage on one page."""
    user = user_signed_in(request=request)
    if request.method == "POST":
        onboarding.genres_save(user=user, genres=request.POST.getlist("genres"))
        messages.success(request, "Favourite genres saved.")
        return redirect("recommendations:account")
    return render(request, "recommendations/account.html",
                  {**pages.account_context(user=user), "genres": onboarding.genre_choices()})
