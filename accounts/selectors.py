"""Reads for people and machines; the one place that decides who may see which key."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import Http404

from apex_site.broadcast import LocalMemory

from .keys import key_hash, key_prefix
from .models import ApiKey, Profile

if TYPE_CHECKING:
    from django.http import HttpRequest
    from rest_framework.request import Request


def user_get(*, user_id: int) -> User | None:
    """The person with this id, or None (an unknown id, or an account deleted since)."""
    return get_user_model().objects.filter(pk=user_id).first()


def user_names_by_id(*, user_ids: Sequence[int]) -> dict[int, str]:
    """user id -> username, for the ids that exist."""
    return dict(get_user_model().objects.filter(pk__in=list(user_ids)).values_list("pk", "username"))


def user_signed_in(*, request: HttpRequest | Request) -> User:
    """The person behind a request that authentication already required (login_required, IsAuthenticated)."""
    return cast(User, request.user)  # those guards refuse AnonymousUser before the view runs


def request_api_key(request: object) -> ApiKey | None:
    """The API key a DRF request was authenticated with, if any (``request.auth``)."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None


def profile_get(*, user: User) -> Profile:
    """The user's profile, created empty on first use (users made outside register have none)."""
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def user_email_verified(*, user: User) -> bool:
    """Whether the user may hold API credentials: a verified address, when verification is mandatory.

    The same rule as the portal's sign-in (allauth's ``ACCOUNT_EMAIL_VERIFICATION``); with "optional" or
    "none" an unverified account gets tokens and keys too (the documented unverified tier).
    """
    if settings.ACCOUNT_EMAIL_VERIFICATION != "mandatory":
        return True
    return EmailAddress.objects.filter(user=user, verified=True).exists()


def api_key_count_active(*, user: User) -> int:
    return ApiKey.objects.filter(user=user, revoked_at__isnull=True).count()


def api_key_list(*, user: User, include_revoked: bool = True) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.filter(user=user)
    return keys if include_revoked else keys.filter(revoked_at__isnull=True)


def api_key_get_for(*, user: User, key_id: int) -> ApiKey:
    """One of the user's own keys; anyone else's (or none) is Http404, so existence never leaks."""
    try:
        return ApiKey.objects.get(pk=key_id, user=user)
    except (ApiKey.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such API key.") from exc


API_KEY_CACHE_TTL_S = 30  # revocation drops the entry at once; other changes to the key's user show within this
# and in each process's memory for a few seconds more, dropped in every process at once on revocation
API_KEY_MEMORY = LocalMemory("api-keys", ttl_s=10.0)


def api_key_cache_key(hashed: str) -> str:
    """Where the key with this SHA-256 digest is cached (the shared cache: Redis when configured)."""
    return f"accounts:apikey:{hashed}"


def api_key_find_active(*, raw: str) -> ApiKey | None:
    """The active key matching a full secret, or None; compared in constant time.

    The key (with its user) is kept in this process's memory (``API_KEY_MEMORY``, apex_site/broadcast.py: no
    round trip) and in the shared cache for API_KEY_CACHE_TTL_S under the digest of the full secret, so a hit
    needs no query; ``api_key_revoke`` and the admin's revoke action drop both in every process at once, so a
    revoked key is refused on the very next call everywhere.
    """
    prefix = key_prefix(raw)
    if prefix is None:
        return None
    hashed = key_hash(raw)
    key = API_KEY_MEMORY.get(hashed)
    if key is None:
        generation = API_KEY_MEMORY.generation  # a revocation from here on keeps this read out of the memory
        key = cache.get(api_key_cache_key(hashed))
        if key is None:
            # the password hash is deferred: it never enters the cache, and a save() of this user skips it
            key = ApiKey.objects.select_related("user").defer("user__password").filter(prefix=prefix).first()
            if key is None or not hmac.compare_digest(key.hashed_key, hashed):
                return None
            cache.set(api_key_cache_key(hashed), key, API_KEY_CACHE_TTL_S)
        API_KEY_MEMORY.put(hashed, key, generation=generation)
    if key.revoked_at is not None or not key.user.is_active:
        return None
    return key


def api_key_ids_of(*, user_id: int) -> list[int]:
    """Ids of every key the user has had (revoked ones included)."""
    return list(ApiKey.objects.filter(user_id=user_id).values_list("pk", flat=True))


def api_key_ids_existing(*, ids: list[int]) -> set[int]:
    """Which of these key ids still exist (revoked ones included): billing skips counts of deleted keys."""
    return set(ApiKey.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
