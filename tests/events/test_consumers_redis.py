"""The live websocket on the real Redis channel layer (marked ``services``)."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from events.consumers import RecommendationsConsumer
from events.live import user_group

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


async def test_an_idle_socket_outlives_the_layers_blocking_read_and_still_gets_its_push(settings, alice):
    if "Redis" not in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
        pytest.skip("needs REDIS_URL (the Redis channel layer)")
    communicator = WebsocketCommunicator(RecommendationsConsumer.as_asgi(), "/ws/recommendations/")
    communicator.scope["user"] = alice
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.receive_json_from(timeout=5)  # hello
    await asyncio.sleep(6.5)  # the scenario itself: idle for longer than channels_redis's 5 s blocking read
    await get_channel_layer().group_send(user_group(alice.pk), {"type": "recommendations.refresh",
                                                                "payload": {"items": []}})
    assert await communicator.receive_json_from(timeout=10) == {"type": "recommendations", "items": []}
    await communicator.disconnect()
