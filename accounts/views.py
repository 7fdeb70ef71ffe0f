"""Account pages: profile (favourite genres), API keys (create once-shown, revoke), onboarding."""

from __future__ import annotations

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .forms import ApiKeyCreateForm, FavouriteGenresForm, OnboardingForm
from .onboarding import onboarding_candidates, onboarding_submit
from .selectors import api_key_list, profile_get
from .services import ApiKeyRefused, api_key_create, api_key_revoke, profile_update


def _genre_names() -> list[str]:
    if not apps.is_installed("catalog"):
        return []
    from catalog.selectors import genre_list

    return [g.name for g in genre_list()]


@login_required
def profile_detail(request: HttpRequest) -> HttpResponse:
    profile = profile_get(user=request.user)
    form = FavouriteGenresForm(request.POST or None, genre_names=_genre_names(),
                               initial={"favourite_genres": profile.favourite_genres})
    if request.method == "POST" and form.is_valid():
        profile_update(user=request.user, favourite_genres=form.cleaned_data["favourite_genres"])
        messages.success(request, "Favourite genres saved.")
        return redirect("accounts:profile-detail")
    return render(request, "accounts/profile.html", {"profile": profile, "form": form})


@login_required
def api_key_list_page(request: HttpRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            key, new_key = api_key_create(user=request.user, name=form.cleaned_data["name"])
        except ApiKeyRefused as exc:
            messages.error(request, exc.messages[0])
        else:
            messages.success(request, f"Key {key.prefix}… created. Copy it now: it will not be shown again.")
            form = ApiKeyCreateForm()
    return render(request, "accounts/api_keys.html",
                  {"form": form, "keys": api_key_list(user=request.user), "new_key": new_key})


@login_required
@require_POST
def api_key_revoke_page(request: HttpRequest, key_id: int) -> HttpResponse:
    key = api_key_revoke(user=request.user, key_id=key_id)
    messages.success(request, f"Key {key.prefix}… revoked.")
    return redirect("accounts:api-key-list")


@login_required
def onboarding(request: HttpRequest) -> HttpResponse:
    profile = profile_get(user=request.user)
    groups = onboarding_candidates(preferred=profile.favourite_genres) if apps.is_installed("catalog") else []
    movie_ids = [m.id for group in groups for m in group["movies"]]
    form = OnboardingForm(request.POST or None, genre_names=_genre_names(), movie_ids=movie_ids,
                          initial={"favourite_genres": profile.favourite_genres})
    if request.method == "POST" and form.is_valid():
        stored = onboarding_submit(user=request.user, favourite_genres=form.cleaned_data["favourite_genres"],
                                   liked_movie_ids=form.cleaned_data["liked_movies"])
        messages.success(request, f"Thanks! {stored} movies noted; your recommendations start from them.")
        return redirect("/")
    return render(request, "accounts/onboarding.html", {"form": form, "groups": groups, "profile": profile})
