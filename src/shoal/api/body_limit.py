"""BodyLimitMiddleware: a request body is read whole, within a size and a time bound, before any route runs.

``http_protocol`` refuses bodies whose ``Content-Length`` is over the limit before reading
them; a chunked body has no declared size, so it is counted here as it streams and refused
(**413**) the moment it passes ``max_bytes`` — never buffered beyond one chunk over the
limit. A body that trickles in slower than ``timeout_s`` gets **408**. Both answers are
``{"errors": "..."}`` and close the connection. Routes then get the body in one piece
(FastAPI reads REST bodies whole anyway). It runs after the token check, so an
unauthenticated client cannot make the server buffer anything.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoal.refusals import Report


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float, report: Report) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._report = report

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        chunks: list[bytes] = []
        total = 0
        try:
            async with asyncio.timeout(self._timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # the client has gone; nobody to answer
                    body: bytes = message.get("body", b"")
                    total += len(body)
                    if total > self._max_bytes:
                        limit = f"request body larger than {self._max_bytes} bytes"
                        await self._refuse(scope, send, 413, "http.body_bytes", limit)
                        return
                    chunks.append(body)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            limit = f"request body not complete within {self._timeout_s:g} s"
            await self._refuse(scope, send, 408, "http.body_timeout", limit)
            return
        await self._app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, send: Send, status: int, cause: str, message: str) -> None:
        client = scope.get("client")
        self._report(cause, f"HTTP {status} to {client[0] if client else 'unknown client'}: {message}")
        body = json.dumps({"errors": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the whole body once, then whatever the server says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
