"""Process-local memories dropped in every process at once (apex_site/broadcast.py): the API-key memory."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from apex_site.broadcast import LocalMemory


def _eventually(condition: Callable[[], bool], within_s: float = 10.0) -> bool:
    """True once ``condition`` holds (a bounded wait for another thread, not a timing assertion)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _listening(memory: LocalMemory) -> LocalMemory:
    memory.get("warm-up")  # starts this process's listener
    assert _eventually(lambda: memory.listening), "the listener never subscribed"
    return memory


def test_without_redis_the_memory_serves_nothing(settings) -> None:  # noqa: ANN001
    settings.REDIS_URL = ""
    memory = LocalMemory("test-off", ttl_s=60)
    memory.put("k", 1, generation=memory.generation)
    assert memory.get("k") is None  # no broadcast can reach it, so the shared cache answers instead


@pytest.mark.services
@pytest.mark.django_db
def test_a_forget_reaches_another_process_memory_at_once(settings) -> None:  # noqa: ANN001
    here, there = (_listening(LocalMemory("test-two", ttl_s=60)) for _ in range(2))  # two workers' memories
    for memory in (here, there):
        memory.put("k", "v", generation=memory.generation)
    assert there.get("k") == "v"
    here.forget(["k"])
    assert here.get("k") is None
    assert _eventually(lambda: there.get("k") is None)


@pytest.mark.services
def test_a_value_read_before_a_forget_is_not_stored_after_it() -> None:
    memory = _listening(LocalMemory("test-race", ttl_s=60))
    generation = memory.generation  # a request starts reading the key from the shared cache...
    memory.forget(["k"])  # ...the key is revoked meanwhile...
    memory.put("k", "stale", generation=generation)  # ...and the request comes back with the old row
    assert memory.get("k") is None


@pytest.mark.services
def test_entries_expire() -> None:
    memory = _listening(LocalMemory("test-ttl", ttl_s=0.0))
    memory.put("k", "v", generation=memory.generation)
    assert memory.get("k") is None


@pytest.mark.services
def test_a_lost_subscription_empties_the_memory_and_serves_nothing() -> None:
    memory = _listening(LocalMemory("test-lost", ttl_s=60))
    memory.put("k", "v", generation=memory.generation)
    memory._listening.clear()  # what the listener does when its connection fails (it then reconnects)
    assert memory.get("k") is None


@pytest.mark.services
@pytest.mark.django_db
def test_a_revoked_key_stops_working_at_once_in_every_worker(client, alice, api_key_for_alice) -> None:  # noqa: ANN001
    from accounts.keys import key_hash
    from accounts.selectors import API_KEY_MEMORY
    from accounts.services import api_key_revoke

    _listening(API_KEY_MEMORY)
    other_worker = _listening(LocalMemory("api-keys", ttl_s=60))
    assert client.get("/v1/auth/me", **api_key_for_alice.headers).status_code == 200
    hashed = key_hash(api_key_for_alice.raw)
    assert API_KEY_MEMORY.get(hashed) is not None  # held in this worker's memory: the next call makes no round trip
    other_worker.put(hashed, API_KEY_MEMORY.get(hashed), generation=other_worker.generation)

    api_key_revoke(user=alice, key_id=api_key_for_alice.key.pk)

    assert client.get("/v1/auth/me", **api_key_for_alice.headers).status_code == 401
    assert _eventually(lambda: other_worker.get(hashed) is None)



@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_deactivated_members_token_stops_working_at_once_in_every_worker(alice) -> None:  # noqa: ANN001
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.authentication import JWT_USER_MEMORY

    _listening(JWT_USER_MEMORY)
    other_worker = _listening(LocalMemory("jwt-users", ttl_s=60))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(alice).access_token}")
    # remembered once alice's own creation has been broadcast (its forget reaches this process's listener too)
    assert _eventually(lambda: client.get("/v1/auth/me").status_code == 200
                       and JWT_USER_MEMORY.get(str(alice.pk)) is not None)
    def user_reads() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/v1/auth/me").status_code == 200
        return sum('FROM "auth_user" WHERE' in q["sql"] for q in queries.captured_queries)

    remembered = user_reads()
    JWT_USER_MEMORY.clear()
    assert user_reads() == remembered + 1  # without the memory, authentication reads the user once more
    other_worker.put(str(alice.pk), JWT_USER_MEMORY.get(str(alice.pk)), generation=other_worker.generation)

    alice.is_active = False
    alice.save()

    assert client.get("/v1/auth/me").status_code == 401
    assert _eventually(lambda: other_worker.get(str(alice.pk)) is None)
