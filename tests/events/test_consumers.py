"""The live websocket: session-authenticated, one group per user, pushes reach only their owner."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from apex_site.asgi import application
from events.live import live_push_recommendations

pytestmark = pytest.mark.django_db(transaction=True)


def _session_headers(client, user) -> list[tuple[bytes, bytes]]:  # noqa: ANN001
    client.force_login(user)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    return [(b"cookie", cookie.encode()), (b"origin", b"http://testserver"), (b"host", b"testserver")]


async def _connect(headers: list[tuple[bytes, bytes]]) -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(application, "/ws/recommendations/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


async def test_an_anonymous_socket_is_refused():
    communicator, connected = await _connect([(b"origin", b"http://testserver")])
    assert not connected
    await communicator.disconnect()


async def test_a_signed_in_page_gets_its_own_pushes_and_nobody_elses(client, alice, bob):
    alice_ws, ok_a = await _connect(await sync_to_async(_session_headers)(client, alice))
    bob_ws, ok_b = await _connect(await sync_to_async(_session_headers)(client, bob))
    assert ok_a and ok_b
    assert (await alice_ws.receive_json_from(timeout=5))["user_id"] == alice.pk
    assert (await bob_ws.receive_json_from(timeout=5))["user_id"] == bob.pk
    sent = await sync_to_async(live_push_recommendations)(user_id=alice.pk, payload={"items": [{"movie_id": 1}]})
    assert sent is True
    message = await alice_ws.receive_json_from(timeout=5)
    assert message == {"type": "recommendations", "items": [{"movie_id": 1}]}
    assert await bob_ws.receive_nothing(timeout=0.2)
    await alice_ws.disconnect()
    await bob_ws.disconnect()


async def test_a_rating_through_the_api_reaches_the_open_socket_with_new_picks(client, alice, movies):
    """Done-when (embedded mode): post a rating; the user's socket receives the refreshed list."""
    ws, connected = await _connect(await sync_to_async(_session_headers)(client, alice))
    assert connected
    await ws.receive_json_from(timeout=5)  # hello
    response = await sync_to_async(client.post)(
        "/v1/events", {"movie_id": movies[0].id, "kind": "rating", "value": 5.0, "idempotency_key": "live-1"},
        content_type="application/json")
    assert response.status_code == 202
    message = await ws.receive_json_from(timeout=10)
    assert message["type"] == "recommendations" and message["version"] >= 1
    assert movies[0].id not in [item["movie_id"] for item in message["items"]]  # rated movies leave the list
    assert {item["movie_id"] for item in message["items"]} <= {m.id for m in movies}
    await ws.disconnect()
