"""Websocket routes collected from the apps (only ``events`` serves websockets today)."""

from __future__ import annotations

from events.routing import websocket_urlpatterns as events_websockets

websocket_urlpatterns: list = [*events_websockets]
