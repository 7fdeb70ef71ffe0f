"""ASGI entry point of the HTTP serving benchmark: ``/bench/raw`` answered by a bare ASGI callable, the rest by APEX.

``/bench/raw`` never enters Django: a constant JSON body sent straight through the ASGI interface, so its
requests/s are the physical floor of this server stack (uvicorn, its event loop and HTTP parser, the loopback
client). Every other path goes to the site's own ASGI application, unchanged.
"""

from __future__ import annotations

import os
from typing import Any

from apex_site.asgi import application as site

BODY = b'{"ok": true, "worker": %d}' % os.getpid()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/bench/raw":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})
        return
    await site(scope, receive, send)
