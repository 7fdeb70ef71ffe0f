"""Websocket routes collected from the apps."""

from __future__ import annotations

from importlib import import_module

websocket_urlpatterns: list = []
for _app in ("events", "recommendations"):
    try:
        websocket_urlpatterns += import_module(f"{_app}.routing").websocket_urlpatterns
    except ModuleNotFoundError as exc:
        if exc.name != f"{_app}.routing":
            raise
