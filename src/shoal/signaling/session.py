"""SocketSession: the read/write/close skeleton every WebSocket adapter shares.

A session runs a reader (frames → codec → handler) and a writer (outbox → socket) side by
side, and ends when the first of these happens: the client closes, the handler reports
a protocol error, the outbox overflows, the server asks it to close (peer deleted,
replaced by a newer connection) or to fail (the endpoint gave up), or the handler raises
an exception nobody expected. It then closes the socket with the right reason; an
unexpected exception is logged with its traceback and closes with 1011 and a reason that
reveals nothing of the server's internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.websockets import WebSocket, WebSocketDisconnect

from shoal.api.ws_direct import direct_writer
from shoal.protocol.base import CLOSE_INTERNAL, CLOSE_POLICY, ProtocolError, clip_reason
from shoal.signaling.outbox import Outbox, OutboxOverflow
from shoal.signaling.preauth import PreAuthGate

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN_LATER = 1013

INTERNAL_ERROR = "internal error"
"""The close reason (and PeerCrashed reason) of an unexpected exception: details go to the log only."""

TOO_MANY_UNAUTHENTICATED = "too many unauthenticated connections from your address; try again later"

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
    ws: WebSocket,
    decode: Callable[[Frame], E | ProtocolError | None],
    timeout: float,
    channel: str,
    gate: PreAuthGate | None = None,
) -> E | None:
    """Accept the socket and decode its first frame (the auth request).

    Returns the decoded event, or None after closing the socket with the reason when the
    frame is missing, late or malformed, or when the client's address already has as many
    sockets waiting to authenticate as ``gate`` allows (1013).
    """
    first = await open_and_read_first_frame(ws, decode, timeout, channel, gate)
    return None if first is None else first[1]


async def open_and_read_first_frame(
    ws: WebSocket,
    decode: Callable[[Frame], E | ProtocolError | None],
    timeout: float,
    channel: str,
    gate: PreAuthGate | None = None,
) -> tuple[Frame, E] | None:
    """``open_and_read_first``, also returning the frame as received (a cluster relay resends it)."""
    address = ws.client.host if ws.client is not None else "unknown"
    if gate is not None and not gate.admit(address):
        await ws.accept()
        await close_socket(ws, CLOSE_TRY_AGAIN_LATER, TOO_MANY_UNAUTHENTICATED)
        return None
    try:
        await ws.accept()
        frame = await first_frame(ws, timeout)
    finally:
        if gate is not None:
            gate.release(address)
    if frame is None:
        return None
    event = frame if isinstance(frame, ProtocolError) else decode(frame)
    if event is None:
        event = ProtocolError(CLOSE_POLICY, "unauthenticated")
    if isinstance(event, ProtocolError):
        log.warning("%s socket refused: %s", channel, event.reason)
        await close_socket(ws, event.code, event.reason)
        return None
    assert not isinstance(frame, ProtocolError)
    return frame, event


async def close_socket(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code, clip_reason(reason))


class InjectedFault(Exception):
    """Raised for a frame that contains the ``--debug-fault-marker`` text (tests of the crash path)."""


class UnexpectedErrors:
    """Logs each kind of unexpected exception with its traceback once, later ones as one line.

    A kind is the exception type and the line that raised it. A client that can trigger the
    same bug over and over gets one traceback and a counted line per occurrence, not a log
    flood; the table of kinds is bounded.
    """

    MAX_KINDS = 256

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def report(self, where: str, exc: BaseException) -> None:
        kind = _kind(exc)
        if kind not in self.counts and len(self.counts) >= self.MAX_KINDS:
            kind = "other"
        count = self.counts[kind] = self.counts.get(kind, 0) + 1
        if count == 1:
            log.error("%s: unexpected error; closing with 1011", where, exc_info=exc)
        else:
            log.error("%s: unexpected error %s again (%d times; traceback logged the first time); closing with 1011",
                      where, kind, count)


def _kind(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else ""
    return f"{type(exc).__name__}{where}"


class SocketSession:
    """Runs one authenticated socket until it ends; ``request_close`` and ``fail`` end it from outside."""

    def __init__(
        self,
        ws: WebSocket,
        outbox: Outbox,
        name: str,
        errors: UnexpectedErrors | None = None,
        fault_marker: str | None = None,
        loop_behind: Callable[[], bool] | None = None,
    ) -> None:
        """``loop_behind``: while it says so, frames are written directly (``shoal.api.ws_direct``)."""
        self.ws = ws
        self._loop_behind = loop_behind
        self.outbox = outbox
        self.name = name
        self._errors = errors if errors is not None else UnexpectedErrors()
        self._fault_marker = fault_marker.encode() if fault_marker else None
        self._close_request: tuple[int, str, bool] | None = None
        self._close_event = asyncio.Event()
        self.ended = "running"
        """Why the session ended, in words, for its connection's summary line."""

    def request_close(self, code: int, reason: str) -> None:
        """Ask the session to close its socket with this code and reason (a normal end)."""
        self._request(code, reason, failed=False)

    def fail(self, reason: str, code: int = CLOSE_INTERNAL) -> None:
        """End the session as failed: the socket closes with ``code`` and ``reason``, the peer crashed."""
        self._request(code, reason, failed=True)

    def _request(self, code: int, reason: str, failed: bool) -> None:
        if self._close_request is None:
            self._close_request = (code, reason, failed)
            self._close_event.set()

    async def run(self, handle: Handler) -> str | None:
        """Serve until the socket ends; returns why the session failed, or None if it ended normally.

        A failure is a protocol error of the client, a ``fail()`` call, or an unexpected
        exception in ``handle`` (then the reason is ``INTERNAL_ERROR``).
        """
        if self._loop_behind is not None:
            self.outbox.write_directly(direct_writer(self.ws, self._loop_behind))
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
            self.outbox.write_directly(None)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        error: ProtocolError | None = None
        unexpected: BaseException | None = None
        if reader.done() and not reader.cancelled():
            unexpected = reader.exception()
            if unexpected is None:
                error = reader.result()
        if self._close_request is not None:
            code, reason, failed = self._close_request
            log.info("%s: closing: %s", self.name, reason)
            self.ended = f"closed by the server ({code} {reason})"
            await close_socket(self.ws, code, reason)
            return reason if failed else None
        if unexpected is not None:
            self._errors.report(self.name, unexpected)
            self.ended = f"internal error ({CLOSE_INTERNAL})"
            await close_socket(self.ws, CLOSE_INTERNAL, INTERNAL_ERROR)
            return INTERNAL_ERROR
        if error is not None:
            log.warning("%s: closing: %s", self.name, error.reason)
            self.ended = f"protocol error ({error.code} {error.reason})"
            await close_socket(self.ws, error.code, error.reason)
            return error.reason
        if writer.done() and not writer.cancelled() and isinstance(writer.exception(), OutboxOverflow):
            log.warning("%s: %s; closing", self.name, writer.exception())
            self.ended = f"client too slow ({CLOSE_TRY_AGAIN_LATER})"
            await close_socket(self.ws, CLOSE_TRY_AGAIN_LATER, "client too slow: send queue overflow")
        elif writer.done() and not writer.cancelled() and writer.exception() is not None:
            log.info("%s: write failed (%s); the client has gone", self.name, writer.exception())
            self.ended = "client gone (write failed)"
        else:
            self.ended = "client closed the socket"
        return None

    async def _read(self, handle: Handler) -> ProtocolError | None:
        while True:
            frame = await receive_frame(self.ws)
            if frame is None:
                return None
            if self._fault_marker is not None and self._fault_marker in (
                frame if isinstance(frame, bytes) else frame.encode()
            ):
                raise InjectedFault("a frame carried the --debug-fault-marker text")
            error = handle(frame)
            if inspect.isawaitable(error):
                error = await error
            if error is not None:
                return error
