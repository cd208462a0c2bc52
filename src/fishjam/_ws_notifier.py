"""Receiving server notifications over the ``/socket/server/websocket`` channel."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from fishjam.events import ServerMessage
from fishjam.events._decode import as_allowed, is_batch, parse_server_message, unpack_batch
from fishjam.events.allowed_notifications import AllowedNotification
from fishjam.utils import get_fishjam_url, http_to_ws

NotificationHandler = Callable[[AllowedNotification], None | Awaitable[None]]

_SOCKET_PATH = "/socket/server/websocket"


class FishjamNotifier:
    """Streams room and peer notifications from the server to a handler.

    Register the handler with :meth:`on_server_notification` before calling
    :meth:`connect`: the subscription is only requested when a handler exists.
    """

    def __init__(self, fishjam_id: str, management_token: str) -> None:
        """Prepare a notifier for the server named by ``fishjam_id``; nothing connects yet."""
        self._fishjam_url = http_to_ws(get_fishjam_url(fishjam_id).rstrip("/")) + _SOCKET_PATH
        self._management_token = management_token
        self._websocket: ClientConnection | None = None
        self._notification_handler: NotificationHandler | None = None
        self._ready = asyncio.Event()

    def on_server_notification(self, handler: NotificationHandler) -> NotificationHandler:
        """Decorator registering the (sync or async) notification handler, returned unchanged."""
        self._notification_handler = handler
        return handler

    async def connect(self) -> None:
        """Connect, authenticate, subscribe and deliver notifications until the socket closes.

        Returns when the server closes the connection normally; an abnormal close raises
        :class:`websockets.exceptions.ConnectionClosedError`. A rejected management token
        raises ``RuntimeError("Invalid management token")``.
        """
        async with connect(self._fishjam_url) as websocket:
            self._websocket = websocket
            try:
                await self._authenticate(websocket)
                if self._notification_handler is not None:
                    await self._subscribe(websocket)
                self._ready.set()
                await self._receive_loop(websocket)
            except ConnectionClosedOK:
                return
            finally:
                # Readiness is not reset, as in the official SDK: wait_ready() never
                # blocks once a connection has been established.
                self._websocket = None

    async def wait_ready(self) -> None:
        """Wait until :meth:`connect` has authenticated and subscribed (at least once)."""
        await self._ready.wait()

    async def _authenticate(self, websocket: ClientConnection) -> None:
        request = ServerMessage(auth_request=ServerMessage.AuthRequest(token=self._management_token))
        await websocket.send(request.SerializeToString())
        try:
            reply = await websocket.recv(decode=False)
        except ConnectionClosed as exc:
            # The server rejects a bad token by closing the socket with that reason.
            if "invalid token" in _close_text(exc).lower():
                raise RuntimeError("Invalid management token") from exc
            raise
        content = parse_server_message(reply)
        if not isinstance(content, ServerMessage.Authenticated):
            raise RuntimeError(f"expected Authenticated from the server, got {_describe(content)}")

    async def _subscribe(self, websocket: ClientConnection) -> None:
        request = ServerMessage(
            subscribe_request=ServerMessage.SubscribeRequest(
                event_type=ServerMessage.EVENT_TYPE_SERVER_NOTIFICATION
            )
        )
        await websocket.send(request.SerializeToString())
        content = parse_server_message(await websocket.recv(decode=False))
        if not isinstance(content, ServerMessage.SubscribeResponse):
            raise RuntimeError(f"expected SubscribeResponse from the server, got {_describe(content)}")

    async def _receive_loop(self, websocket: ClientConnection) -> None:
        while True:
            content = parse_server_message(await websocket.recv(decode=False))
            # Batches are meant for webhooks only, but unpacking one costs nothing.
            batch = unpack_batch(content) if is_batch(content) else None
            for notification in batch if batch is not None else [as_allowed(content)]:
                if notification is not None:
                    await self._dispatch(notification)

    async def _dispatch(self, notification: AllowedNotification) -> None:
        handler = self._notification_handler
        if handler is None:
            return
        result = handler(notification)
        if inspect.isawaitable(result):
            await result


def _close_text(exc: ConnectionClosed) -> str:
    reason = exc.rcvd.reason if exc.rcvd is not None else ""
    return f"{reason} {exc}"


def _describe(content: Any) -> str:
    return "nothing" if content is None else type(content).__name__
