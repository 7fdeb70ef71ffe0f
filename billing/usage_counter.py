"""Quota counting in Redis: one round trip per metered call (burst throttle + quota check + count).

The per-account counter of this period lives in Redis and is the one the quota is enforced from; every
counted call is also added to the account's *pending* hash, which ``usage_flush`` adds to the PostgreSQL
``UsageCounter`` rows (every ``BILLING_USAGE_FLUSH_INTERVAL_S`` from beat, and before the usage page/API
reads them) and then subtracts, so a call counted while a flush runs is never lost. docs/BILLING.md
describes the design and its failure modes. Without a Redis URL, or while Redis is down, ``billing.services
.usage`` counts in the database instead (the path this module replaces).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, cast

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F

logger = logging.getLogger(__name__)

COUNTER_TTL_S = 600  # the counter is re-read from the database (+ unflushed counts) this often: heals drift
LIMIT_TTL_S = 60  # a plan's quota is re-read this often (a plan change through account_plan_set: at once)
BREAKER_S = 5.0  # after a Redis error, count in the database for this long before trying Redis again
DIRTY_KEY = "billing:usage:dirty"  # accounts with unflushed counts

# KEYS: counter, limit, pending hash, dirty set, burst key ('' = no burst check)
# ARGV: amount, total field, key field ('' = none), seed used ('' = none), seed limit ('' = none, -1 = unlimited),
#       counter ttl, limit ttl, burst limit ('' = none), burst window s, user id
# Returns {status, value}: status >= 0 counted (value unused, status = used after), -1 over quota (value =
# used), -2 needs the seeds (nothing counted), -3 throttled (value = seconds to wait).
_CONSUME = """
local amount = tonumber(ARGV[1])
if ARGV[8] ~= '' then
  local n = redis.call('INCR', KEYS[5])
  if n == 1 then redis.call('EXPIRE', KEYS[5], ARGV[9]) end
  if n > tonumber(ARGV[8]) then
    local ttl = redis.call('TTL', KEYS[5])
    if ttl < 0 then redis.call('EXPIRE', KEYS[5], ARGV[9]); ttl = tonumber(ARGV[9]) end
    return {-3, ttl}
  end
end
local used = redis.call('GET', KEYS[1])
local limit = redis.call('GET', KEYS[2])
if (not used and ARGV[4] == '') or (not limit and ARGV[5] == '') then
  if ARGV[8] ~= '' then redis.call('DECR', KEYS[5]) end
  return {-2, 0}
end
if not used then
  used = tonumber(ARGV[4]) + tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
  redis.call('SET', KEYS[1], used, 'EX', ARGV[6])
else
  used = tonumber(used)
end
if not limit then
  limit = ARGV[5]
  redis.call('SET', KEYS[2], limit, 'EX', ARGV[7])
end
limit = tonumber(limit)
if limit >= 0 and used + amount > limit then return {-1, used} end
redis.call('INCRBY', KEYS[1], amount)
redis.call('HINCRBY', KEYS[3], ARGV[2], amount)
if ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[3], amount) end
redis.call('SADD', KEYS[4], ARGV[10])
return {used + amount, 0}
"""

# KEYS: pending hash, dirty set; ARGV: user id, then field, amount pairs. Subtract what was flushed.
_SUBTRACT = """
for i = 2, #ARGV, 2 do
  if redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1])) <= 0 then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
"""

_broken_until = 0.0


class CounterUnavailable(Exception):
    """Redis is not configured or not answering: count in the database."""


@dataclass(frozen=True)
class Burst:
    """The burst throttle checked in the same round trip: its cache key, calls allowed, window in seconds."""

    key: str
    limit: int
    window_s: int


@dataclass(frozen=True)
class Outcome:
    """What one metered call found: counted, over quota (with ``used``) or throttled (``wait_s``)."""

    counted: bool
    used: int | None = None
    wait_s: int | None = None


def counter_enabled() -> bool:
    """True when quotas are counted in Redis (a Redis URL is set and BILLING_USAGE_COUNTER is not 'database')."""
    return bool(settings.REDIS_URL) and settings.BILLING_USAGE_COUNTER == "redis"


@lru_cache(maxsize=8)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2, decode_responses=True)


@lru_cache(maxsize=16)
def _script(client: redis.Redis, body: str) -> Any:
    return client.register_script(body)


def _client() -> redis.Redis:
    if not counter_enabled() or time.monotonic() < _broken_until:
        raise CounterUnavailable("quota counter in Redis is off")
    return _client_for(settings.REDIS_URL)


def _broke(exc: Exception) -> CounterUnavailable:
    global _broken_until
    _broken_until = time.monotonic() + BREAKER_S
    logger.warning("quota counter in Redis unavailable, counting in the database for %.0f s: %s", BREAKER_S, exc)
    return CounterUnavailable(str(exc))


def _counter_key(user_id: int, kind: str, period: date) -> str:
    return f"billing:usage:{user_id}:{kind}:{period.isoformat()}"


def _limit_key(user_id: int, kind: str) -> str:
    return f"billing:limit:{user_id}:{kind}"


def _pending_key(user_id: int) -> str:
    return f"billing:usage:pending:{user_id}"


def _field(kind: str, period: date, api_key_id: int | None) -> str:
    return f"{kind}|{period.isoformat()}|{api_key_id or 0}"


def counter_consume(*, user_id: int, api_key_id: int | None, kind: str, period: date, amount: int,
                    burst: Burst | None, seeds: tuple[int, int | None] | None = None) -> Outcome | None:
    """Check the burst throttle, check the quota and count, atomically in one round trip.

    Returns None when the counter or the plan's limit is not in Redis yet: call again with
    ``seeds=(used in the database, plan limit or None)``. Raises CounterUnavailable when Redis is off or down.
    """
    client = _client()
    keys = [_counter_key(user_id, kind, period), _limit_key(user_id, kind), _pending_key(user_id), DIRTY_KEY,
            burst.key if burst else ""]
    seed_used, seed_limit = ("", "") if seeds is None else (str(seeds[0]), str(-1 if seeds[1] is None else seeds[1]))
    args = [amount, _field(kind, period, None), _field(kind, period, api_key_id) if api_key_id else "",
            seed_used, seed_limit, COUNTER_TTL_S, LIMIT_TTL_S, burst.limit if burst else "",
            burst.window_s if burst else "", user_id]
    try:
        status, value = _script(client, _CONSUME)(keys=keys, args=args)  # EVALSHA; the body only once
    except redis.RedisError as exc:
        raise _broke(exc) from exc
    if status == -2:
        return None
    if status == -3:
        return Outcome(counted=False, wait_s=max(int(value), 1))
    if status == -1:
        return Outcome(counted=False, used=int(value))
    return Outcome(counted=True, used=int(status))


# KEYS: burst key; ARGV: limit, window s. Returns seconds to wait (0: allowed and counted). The same window as
# _CONSUME's burst check, so metered and unmetered calls of one caller share one count.
_BURST = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]); ttl = tonumber(ARGV[2]) end
  return math.max(ttl, 1)
end
return 0
"""


def burst_consume(burst: Burst) -> int | None:
    """Count one call in the burst window, in one round trip: None when allowed, else the seconds to wait.

    Raises CounterUnavailable when Redis is off or down (the throttle then counts through the cache)."""
    client = _client()
    try:
        wait = int(_script(client, _BURST)(keys=[burst.key], args=[burst.limit, burst.window_s]))
    except redis.RedisError as exc:
        raise _broke(exc) from exc
    return wait or None


def counter_forget(*, user_id: int, kinds: list[str]) -> None:
    """Drop the cached plan limits after a plan change, so the new quota applies to the very next call."""
    try:
        _client().delete(*[_limit_key(user_id, kind) for kind in kinds])
    except CounterUnavailable:
        return
    except redis.RedisError as exc:
        raise _broke(exc) from exc


def usage_flush(*, user_id: int | None = None) -> int:
    """Add the counts pending in Redis to the database rows (one account, or every account with some).

    Returns the number of calls flushed; 0 when the counter is off. Raises CounterUnavailable when Redis is
    down (the counts stay pending). A flush holds a per-account lock, so the beat task and a usage-page read
    never add the same counts twice.
    """
    if not counter_enabled():
        return 0
    try:
        client = _client_for(settings.REDIS_URL)  # also while the breaker is open: pending counts may be there
        user_ids = [user_id] if user_id is not None else [int(u) for u in client.smembers(DIRTY_KEY)]
        return sum(_flush_one(client, uid) for uid in user_ids)
    except redis.RedisError as exc:
        raise _broke(exc) from exc


def _flush_one(client: redis.Redis, user_id: int) -> int:
    from accounts.selectors import api_key_ids_existing

    from .models import UsageCounter

    with client.lock(f"billing:usage:flush-lock:{user_id}", timeout=30, blocking_timeout=10):
        stored = cast(dict[str, str], client.hgetall(_pending_key(user_id)))  # the client decodes responses
        pending = {field: int(n) for field, n in stored.items() if int(n) > 0}
        if not pending:
            client.srem(DIRTY_KEY, user_id)
            return 0
        parsed = [(field.split("|"), n) for field, n in pending.items()]
        live_keys = api_key_ids_existing(ids=[int(k) for (_, _, k), _ in parsed if k != "0"])
        with transaction.atomic():
            for (kind, period, key_id), n in parsed:
                api_key_id = int(key_id) or None
                if api_key_id is not None and api_key_id not in live_keys:
                    continue  # the key was deleted since: its calls stay in the account's total
                row, _ = UsageCounter.objects.get_or_create(user_id=user_id, api_key_id=api_key_id, kind=kind,
                                                            period=date.fromisoformat(period))
                UsageCounter.objects.filter(pk=row.pk).update(count=F("count") + n)
        # a crash right here adds these counts twice at the next flush (over-counting, never losing)
        args: list[int | str] = [user_id]
        for field, n in pending.items():
            args += [field, n]
        _script(client, _SUBTRACT)(keys=[_pending_key(user_id), DIRTY_KEY], args=args)
    return sum(n for (_, _, key_id), n in parsed if key_id == "0")
