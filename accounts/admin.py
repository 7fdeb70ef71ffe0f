from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .lockout import SignInLocked, signin_begin, signin_cancelled, signin_succeeded
from .models import ApiKey, Profile
from .services import api_key_cache_forget, api_key_create


class BackoffAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form with the sign-in backoff of accounts.lockout (the API and portal use the same)."""

    def clean(self) -> dict[str, Any]:
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if username is None or not password:
            return super().clean()
        assert self.request is not None  # the admin's login view always passes it
        try:
            attempt = signin_begin(request=self.request, login=username)
        except SignInLocked as exc:
            raise ValidationError(f"Too many failed sign-in attempts for this account from your address; "
                                  f"try again in {exc.retry_after} s.", code="too_many_attempts") from exc
        try:
            cleaned = super().clean()
        except ValidationError:
            if self.user_cache is not None:  # the password was right (a member, not staff): not a guess
                signin_succeeded(attempt=attempt)
            raise
        except Exception:
            signin_cancelled(attempt=attempt)
            raise
        signin_succeeded(attempt=attempt)
        return cleaned


admin.site.login_form = BackoffAdminAuthenticationForm


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "onboarding_done", "favourite_genres", "updated_at"]
    list_filter = ["onboarding_done"]
    search_fields = ["user__username", "user__email"]
    raw_id_fields = ["user"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "user__username", "user__email"]
    raw_id_fields = ["user"]
    readonly_fields = ["prefix", "hashed_key", "created_at", "last_used_at", "revoked_at"]
    fields = ["user", "name", "prefix", "hashed_key", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            api_key_cache_forget(hashed_keys=[obj.hashed_key])
            return
        key, raw = api_key_create(user=obj.user, name=obj.name, by_operator=True)  # operators may exceed the cap
        obj.pk, obj.prefix, obj.hashed_key, obj.created_at = key.pk, key.prefix, key.hashed_key, key.created_at
        messages.warning(request, f"New API key (shown once, copy it now): {raw}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        hashed = list(queryset.filter(revoked_at__isnull=True).values_list("hashed_key", flat=True))
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        api_key_cache_forget(hashed_keys=hashed)
        self.message_user(request, f"{count} key(s) revoked.")
