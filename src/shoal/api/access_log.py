"""One log line per REST request (``--access-log``): method, path, status, time taken, client.

The line carries the room and peer the path names (``/room/{room_id}/peer/{peer_id}...``) as
fields, like every other line about them (:mod:`shoal.logs`). Sockets are not logged here:
each connection gets its own summary line when it ends.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoal.logs import ids

log = logging.getLogger("shoal.access")
_ROOM_PATH = re.compile(r"^/room/(?P<room>[^/]+)(?:/peer/(?P<peer>[^/]+))?")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, tracking_send)
        finally:
            path = scope["path"]
            found = _ROOM_PATH.match(path)
            client = scope.get("client")
            ms = (time.perf_counter() - started) * 1000
            log.info(
                "%s %s %d %.1f ms", scope["method"], path, status, ms,
                extra={
                    "method": scope["method"], "path": path, "status": status, "duration_ms": round(ms, 2),
                    "client": f"{client[0]}:{client[1]}" if client else None,
                    **ids(room_id=found["room"] if found else None, peer_id=found["peer"] if found else None),
                },
            )
