"""Writes for people and machines: registration, profiles, onboarding, API keys."""

from __future__ import annotations

import atexit
import logging
import threading
import time
from datetime import datetime, timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from .keys import key_generate, key_hash
from .models import ApiKey, Profile
from .selectors import (
    API_KEY_MEMORY,
    api_key_cache_key,
    api_key_count_active,
    api_key_get_for,
    profile_get,
    user_email_verified,
)

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)  # record last_used_at at most once a minute per key and process
LAST_USED_FLUSH_S = 10.0  # buffered last-use times are written at most this long after the last write
_touched: dict[int, datetime] = {}  # key id -> last use not yet written (this process)
_touch_lock = threading.Lock()
_touch_state = {"flushed_at": 0.0}
MAX_FAVOURITE_GENRES = 20


class ApiKeyRefused(ValidationError):
    """The member may not have another key now: ``reason`` is "unverified" or "limit"."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, code=reason)
        self.reason = reason


@transaction.atomic
def user_register(*, username: str, email: str, password: str) -> User:
    """Create a user with a validated password and an empty profile; duplicates raise ValidationError."""
    user_model = get_user_model()
    if user_model.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "A user with that username already exists."})
    if email and user_model.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "A user with that email already exists."})
    candidate = user_model(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    try:
        user = user_model.objects.create_user(username=username, email=email, password=password)
    except IntegrityError as exc:  # a concurrent registration won the race
        raise ValidationError({"username": "A user with that username already exists."}) from exc
    Profile.objects.create(user=user)
    if email:  # the same unverified address allauth keeps for people who sign up on the site
        EmailAddress.objects.create(user=user, email=email.lower(), primary=True, verified=False)
    logger.info("registered user %s", user.pk)
    return user


def email_verification_send(*, user: User, request: object | None = None) -> None:
    """Mail the link that verifies the user's primary address, once the registration has committed."""
    address = EmailAddress.objects.filter(user=user, primary=True, verified=False).first()
    if address is not None:
        transaction.on_commit(lambda: address.send_confirmation(request, signup=True))


def profile_update(*, user: User, favourite_genres: list[str]) -> Profile:
    """Replace the favourite genres (trimmed, de-duplicated, order kept)."""
    cleaned: list[str] = []
    for name in favourite_genres:
        name = str(name).strip()
        if name and name not in cleaned:
            cleaned.append(name)
    if len(cleaned) > MAX_FAVOURITE_GENRES:
        raise ValidationError({"favourite_genres": f"At most {MAX_FAVOURITE_GENRES} genres."})
    profile = profile_get(user=user)
    profile.favourite_genres = cleaned
    profile.save(update_fields=["favourite_genres", "updated_at"])
    return profile


def onboarding_complete(*, user: User, favourite_genres: list[str] | None = None) -> Profile:
    """Mark onboarding done, optionally storing the genres picked on the way."""
    if favourite_genres is not None:
        profile_update(user=user, favourite_genres=favourite_genres)
    profile = profile_get(user=user)
    profile.onboarding_done = True
    profile.save(update_fields=["onboarding_done", "updated_at"])
    return profile


@transaction.atomic
def api_key_create(*, user: User, name: str, by_operator: bool = False) -> tuple[ApiKey, str]:
    """Create a key and return it with the full secret, which is never retrievable again.

    A member needs a verified e-mail address (when verification is mandatory) and fewer than
    ``API_KEYS_MAX_PER_USER`` active keys, else ApiKeyRefused; an operator in the admin (``by_operator``) may
    issue keys regardless. The user row is locked, so concurrent requests cannot pass the cap together.
    """
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the key a name."})
    if len(name) > 100:
        raise ValidationError({"name": "At most 100 characters."})
    if not by_operator:
        get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk").first()
        if not user_email_verified(user=user):
            raise ApiKeyRefused("Verify your e-mail address first: API keys are issued to verified accounts only.",
                                reason="unverified")
        limit = settings.API_KEYS_MAX_PER_USER
        if api_key_count_active(user=user) >= limit:
            raise ApiKeyRefused(f"You have {limit} active API keys, the most allowed; revoke one you no longer "
                                f"use before creating another.", reason="limit")
    prefix, raw = key_generate()
    key = ApiKey.objects.create(user=user, name=name, prefix=prefix, hashed_key=key_hash(raw))
    logger.info("api key %s created for user %s", prefix, user.pk)
    return key, raw


def api_key_revoke(*, user: User, key_id: int) -> ApiKey:
    """Revoke one of the user's keys (idempotent); someone else's key is a 404."""
    key = api_key_get_for(user=user, key_id=key_id)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        logger.info("api key %s revoked", key.prefix)
    api_key_cache_forget(hashed_keys=[key.hashed_key])
    return key


def api_key_cache_forget(*, hashed_keys: list[str]) -> None:
    """Drop cached keys now and again once committed (a request may re-cache the old row in between)."""
    names = [api_key_cache_key(h) for h in hashed_keys]

    def forget() -> None:
        cache.delete_many(names)
        API_KEY_MEMORY.forget(hashed_keys)  # this process at once, the others through the broadcast

    forget()
    transaction.on_commit(forget)


def api_key_touch(*, key: ApiKey) -> None:
    """Record use: at most once per LAST_USED_RESOLUTION per key and process, written behind in batches.

    The time goes into this process's buffer; a request that finds the buffer older than LAST_USED_FLUSH_S
    writes all of it (one transaction for every key touched since), and so does the process's exit. No
    request waits on a write of its own key, and no cached copy is dropped for it: ``last_used_at`` in the
    database lags by at most LAST_USED_FLUSH_S of traffic (a crashed process loses that much of it)."""
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    key.last_used_at = now  # this process's copy (memory and cache hits share it): not touched again soon
    with _touch_lock:
        _touched[key.pk] = now
        due = time.monotonic() - _touch_state["flushed_at"] >= LAST_USED_FLUSH_S
    if due:
        api_key_touch_flush()


def api_key_touch_flush() -> int:
    """Write this process's buffered last-use times (never moving one back); returns how many keys."""
    with _touch_lock:
        pending = dict(_touched)
        _touched.clear()
        _touch_state["flushed_at"] = time.monotonic()
    if not pending:
        return 0
    try:
        with transaction.atomic():
            # one statement for every key; the later of the stored and the buffered time (never moved back)
            ApiKey.objects.filter(pk__in=sorted(pending)).update(last_used_at=Case(
                *[When(pk=pk, then=Greatest(Coalesce(F("last_used_at"), Value(at)), Value(at)))
                  for pk, at in sorted(pending.items())], default=F("last_used_at")))
    except DatabaseError:
        logger.warning("last-use times of %d API keys not written; kept for the next flush", len(pending))
        with _touch_lock:
            for pk, at in pending.items():
                _touched[pk] = max(at, _touched.get(pk, at))
        return 0
    return len(pending)


atexit.register(api_key_touch_flush)  # a worker that stops writes what it buffered
