"""SocketSession: the read/write/close skeleton every WebSocket adapter shares.

A session runs a reader (frames → codec → handler) and a writer (outbox → socket) side by
side, and ends when the first of these happens: the client closes, the handler reports
a protocol error, the outbox overflows, or the server asks it to close (peer deleted,
replaced by a newer connection). It then closes the socket with the right reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.websockets import WebSocket, WebSocketDisconnect

from shoal.protocol.base import CLOSE_POLICY, ProtocolError, clip_reason
from shoal.signaling.outbox import Outbox, OutboxOverflow

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN_LATER = 1013

Frame = bytes | str

FLUSH_BEFORE_CLOSE_S = 1.0
"""How long a server-initiated close waits for already queued messages to be written."""

Handler = Callable[[Frame], "ProtocolError | None | Awaitable[ProtocolError | None]"]
"""Handles one frame; may be a coroutine (then frames are handled strictly one after another)."""


async def receive_frame(ws: WebSocket) -> Frame | None:
    """The next frame, or None once the client has gone."""
    try:
        message = await ws.receive()
    except (WebSocketDisconnect, RuntimeError):
        return None
    if message["type"] == "websocket.disconnect":
        return None
    data: bytes | None = message.get("bytes")
    if data is not None:
        return data
    text: str | None = message.get("text")
    return text if text is not None else b""


async def first_frame(ws: WebSocket, timeout: float) -> Frame | ProtocolError | None:
    """The first frame, or a ProtocolError if none arrives within ``timeout`` seconds."""
    try:
        return await asyncio.wait_for(receive_frame(ws), timeout)
    except TimeoutError:
        return ProtocolError(CLOSE_POLICY, f"authentication timeout: no AuthRequest within {timeout:g} s")


E = TypeVar("E")


async def open_and_read_first(
    ws: WebSocket, decode: Callable[[Frame], E | ProtocolError | None], timeout: float, channel: str
) -> E | None:
    """Accept the socket and decode its first frame (the auth request).

    Returns the decoded event, or None after closing the socket with the reason when the
    frame is missing, late or malformed.
    """
    await ws.accept()
    frame = await first_frame(ws, timeout)
    if frame is None:
        return None
    event = frame if isinstance(frame, ProtocolError) else decode(frame)
    if event is None:
        event = ProtocolError(CLOSE_POLICY, "unauthenticated")
    if isinstance(event, ProtocolError):
        log.warning("%s socket refused: %s", channel, event.reason)
        await close_socket(ws, event.code, event.reason)
        return None
    return event


async def close_socket(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code, clip_reason(reason))


class SocketSession:
    """Runs one authenticated socket until it ends; ``close_requested`` ends it from outside."""

    def __init__(self, ws: WebSocket, outbox: Outbox, name: str) -> None:
        self.ws = ws
        self.outbox = outbox
        self.name = name
        self._close_request: tuple[int, str] | None = None
        self._close_event = asyncio.Event()

    def request_close(self, code: int, reason: str) -> None:
        """Ask the session to close its socket with this code and reason."""
        if self._close_request is None:
            self._close_request = (code, reason)
            self._close_event.set()

    async def run(self, handle: Handler) -> ProtocolError | None:
        """Serve until the socket ends; returns the protocol error that ended it, if any."""
        reader = asyncio.create_task(self._read(handle), name=f"{self.name}-reader")
        writer = asyncio.create_task(self.outbox.run(self.ws.send_bytes), name=f"{self.name}-writer")
        closer = asyncio.create_task(self._close_event.wait(), name=f"{self.name}-closer")
        tasks = {reader, writer, closer}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if closer.done() and not writer.done():
                # Say goodbye properly: what was queued before the close (a final event) goes out first.
                reader.cancel()
                self.outbox.close()
                await asyncio.wait({writer}, timeout=FLUSH_BEFORE_CLOSE_S)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        error: ProtocolError | None = None
        if reader.done() and not reader.cancelled() and reader.exception() is None:
            error = reader.result()
        if self._close_request is not None:
            code, reason = self._close_request
            log.info("%s: closing: %s", self.name, reason)
            await close_socket(self.ws, code, reason)
        elif error is not None:
            log.warning("%s: closing: %s", self.name, error.reason)
            await close_socket(self.ws, error.code, error.reason)
        elif writer.done() and not writer.cancelled() and isinstance(writer.exception(), OutboxOverflow):
            log.warning("%s: %s; closing", self.name, writer.exception())
            await close_socket(self.ws, CLOSE_TRY_AGAIN_LATER, "client too slow: send queue overflow")
        elif writer.done() and not writer.cancelled() and writer.exception() is not None:
            log.info("%s: write failed (%s); the client has gone", self.name, writer.exception())
        return error

    async def _read(self, handle: Handler) -> ProtocolError | None:
        while True:
            frame = await receive_frame(self.ws)
            if frame is None:
                return None
            error = handle(frame)
            if inspect.isawaitable(error):
                error = await error
            if error is not None:
                return error

