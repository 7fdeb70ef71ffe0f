"""Sign-in backoff shared by ``/v1/auth/token``, the portal's login and ``/admin/login/`` (no CAPTCHA, no lockout).

Every password attempt is counted in three buckets, each with a few free failures and then an exponential
wait (``base · 2^k`` seconds, capped) before the next attempt is even evaluated:

- **account × client address**: the guesser's own lane; the owner at another address never shares it;
- **client address**: one address spraying many accounts;
- **account**, counted and enforced only for addresses the account has **not** signed in from before: a
  botnet spread over many addresses slows down, while the owner, at an address they signed in from,
  keeps getting in.

An attempt is counted before the password is checked (so parallel guesses cannot all slip through),
and a correct password takes its count back and resets its account × address lane. The counts live in
the shared cache (Redis when configured), per process while Redis is known to be down
(``apex_site.cache.counting_cache``); if the cache fails mid-attempt the attempt goes ahead on the password
alone and a warning is logged, so a cache failure never locks anyone out.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import HttpRequest

from apex_site.cache import counting_cache
from apex_site.client_ip import client_ident

logger = logging.getLogger(__name__)

KNOWN_ADDRESSES_KEPT = 20  # most recent sign-in addresses remembered per account


class SignInLocked(Exception):
    """Too many failed attempts in one bucket: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"Too many failed sign-in attempts; try again in {retry_after} s.")


@dataclass
class SignIn:
    """One attempt in progress: which buckets it was counted in (to take back on success)."""

    account: str
    ident: str
    counted: list[str] = field(default_factory=list)


def _policy() -> dict[str, float]:
    defaults = {"free_per_account_ip": 5, "free_per_ip": 20, "free_per_account": 20,
                "base_s": 1.0, "max_s": 900.0, "window_s": 3600.0}
    return defaults | dict(settings.AUTH_BACKOFF)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def signin_account(*, login: str) -> str:
    """A stable name for the account behind a username or e-mail (unknown logins are named by the text)."""
    login = login.strip()
    user = None
    if _lookupable(login):
        user = (get_user_model().objects.filter(Q(username__iexact=login) | Q(email__iexact=login))
                .order_by("pk").values_list("pk", flat=True).first())
    return f"user:{user}" if user is not None else f"login:{_digest(login.lower())}"


def _lookupable(login: str) -> bool:
    """Could this be a username or address at all? (NUL, lone surrogates or 300 characters never are.)"""
    if not login or len(login) > 254 or "\x00" in login:
        return False
    try:
        login.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _known_key(account: str) -> str:
    return f"auth:known:{account}"


def _buckets(store: Any, account: str, ident: str, policy: dict[str, float]) -> dict[str, int]:
    buckets = {f"auth:fail:acct-ip:{account}:{_digest(ident)}": int(policy["free_per_account_ip"]),
               f"auth:fail:ip:{_digest(ident)}": int(policy["free_per_ip"])}
    if ident not in (store.get(_known_key(account)) or []):
        buckets[f"auth:fail:acct:{account}"] = int(policy["free_per_account"])
    return buckets


def _wait_s(count: int, free: int, policy: dict[str, float]) -> float:
    """The wait after the previous attempt before attempt number ``count`` is evaluated."""
    if count <= free:
        return 0.0
    return min(policy["base_s"] * 2 ** min(count - free - 1, 30), policy["max_s"])


def signin_begin(*, request: HttpRequest, login: str) -> SignIn:
    """Count one attempt for this login from this client, or raise SignInLocked (nothing counted then)."""
    attempt = SignIn(account=signin_account(login=login), ident=client_ident(request))
    policy = _policy()
    now = time.time()
    try:
        store = counting_cache()
        buckets = _buckets(store, attempt.account, attempt.ident, policy)
        waits = []
        for name, free in buckets.items():
            store.add(f"{name}:n", 0, int(policy["window_s"]))
            count = store.incr(f"{name}:n")
            attempt.counted.append(name)
            last = store.get(f"{name}:last")
            if last is not None and now < last + _wait_s(count, free, policy):
                waits.append(last + _wait_s(count, free, policy) - now)
        if waits:
            _take_back(store, attempt)
            raise SignInLocked(max(1, math.ceil(max(waits))))
        store.set_many({f"{name}:last": now for name in buckets}, int(policy["window_s"]))
    except SignInLocked:
        raise
    except Exception:  # noqa: BLE001 - a cache outage must not lock people out; the password still decides
        logger.warning("sign-in backoff unavailable (cache error); attempt not counted", exc_info=True)
        attempt.counted = []
    return attempt


def _take_back(store: Any, attempt: SignIn) -> None:
    for name in attempt.counted:
        try:
            store.decr(f"{name}:n")
        except ValueError:  # the count expired meanwhile: nothing to take back
            pass
    attempt.counted = []


def signin_succeeded(*, attempt: SignIn) -> None:
    """The password was right: take the attempt back, clear this lane and remember the address."""
    try:
        store = counting_cache()
        _take_back(store, attempt)
        store.delete_many([f"auth:fail:acct-ip:{attempt.account}:{_digest(attempt.ident)}:{part}"
                           for part in ("n", "last")])
        known = [i for i in (store.get(_known_key(attempt.account)) or []) if i != attempt.ident]
        known = [attempt.ident, *known][:KNOWN_ADDRESSES_KEPT]
        store.set(_known_key(attempt.account), known, 90 * 24 * 3600)
    except Exception:  # noqa: BLE001
        logger.warning("sign-in backoff unavailable (cache error); success not recorded", exc_info=True)


def signin_cancelled(*, attempt: SignIn) -> None:
    """No password was checked (a malformed request): the attempt does not count."""
    try:
        _take_back(counting_cache(), attempt)
    except Exception:  # noqa: BLE001
        logger.warning("sign-in backoff unavailable (cache error)", exc_info=True)
