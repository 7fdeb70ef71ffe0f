"""Websocket consumer for live recommendation refreshes (``/ws/recommendations/``), authenticated by the session."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .live import user_group

UNAUTHENTICATED = 4401  # application close code: sign in first


class RecommendationsConsumer(AsyncJsonWebsocketConsumer):
    """Joins the signed-in user's own group; anonymous sockets are refused. Server-to-client only."""

    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user_id": user.pk})

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def recommendations_refresh(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "recommendations", **message["payload"]})
