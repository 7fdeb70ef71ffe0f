"""Account pages: API keys (create once-shown, revoke). The profile and onboarding pages are recommendations'."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .forms import ApiKeyCreateForm
from .selectors import api_key_list, user_signed_in
from .services import ApiKeyRefused, api_key_create, api_key_revoke


@login_required
def api_key_list_page(request: HttpRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            key, new_key = api_key_create(user=user_signed_in(request=request), name=form.cleaned_data["name"])
        except ApiKeyRefused as exc:
            messages.error(request, exc.messages[0])
        else:
            messages.success(request, f"Key {key.prefix}… created. Copy it now: it will not be shown again.")
            form = ApiKeyCreateForm()
    return render(request, "accounts/api_keys.html",
                  {"form": form, "keys": api_key_list(user=user_signed_in(request=request)), "new_key": new_key})


@login_required
@require_POST
def api_key_revoke_page(request: HttpRequest, key_id: int) -> HttpResponse:
    key = api_key_revoke(user=user_signed_in(request=request), key_id=key_id)
    messages.success(request, f"Key {key.prefix}… revoked.")
    return redirect("accounts:api-key-list")
