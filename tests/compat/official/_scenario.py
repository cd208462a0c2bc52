"""Plumbing shared by the scenario scripts, which run under the official SDK's interpreter.

A scenario script is run as ``python <script>.py <scenario> '<json params>'``. Params always
hold ``url`` (the server's base URL, used as ``fishjam_id``) and ``token`` (the management
token). The scenario records what it observed and the script prints it as one JSON object
on stdout. Scenarios only observe; the pytest side judges.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import betterproto
from fishjam import FishjamClient, FishjamNotifier
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Params = dict[str, Any]
Result = dict[str, Any]
Scenario = Callable[[Params], Any]


def main(scenarios: dict[str, Scenario]) -> None:
    name = sys.argv[1]
    params: Params = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    result = scenarios[name](params)
    if inspect.isawaitable(result):
        result = asyncio.run(_run(result))
    print(json.dumps(result))


async def _run(awaitable: Any) -> Any:
    return await awaitable


def client(params: Params, token: str | None = None) -> FishjamClient:
    return FishjamClient(params["url"], token if token is not None else params["token"])


def outcome(call: Callable[[], Any]) -> Result:
    """Run ``call``; report what it returned or which exception it raised."""
    try:
        value = call()
    except Exception as exc:  # noqa: BLE001 - recording the exception is the point
        return {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    return {"ok": True, "value": value if isinstance(value, str | int | float | bool | None) else repr(value)}


async def poll(check: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Call ``check`` until it returns something truthy or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        await asyncio.sleep(interval)
        value = check()
    return value


def describe(notification: betterproto.Message) -> Result:
    """A notification as JSON: its type name (without ``ServerMessage``) and all its fields."""
    fields = notification.to_dict(casing=betterproto.Casing.SNAKE, include_default_values=True)
    return {"type": type(notification).__name__.removeprefix("ServerMessage"), **fields}


class Notifications:
    """An official ``FishjamNotifier`` that records every notification with its arrival time."""

    def __init__(self, params: Params) -> None:
        self.events: list[Result] = []
        self._changed = asyncio.Event()
        self._notifier = FishjamNotifier(params["url"], params["token"])
        self._notifier.on_server_notification(self._on_notification)
        self._task: asyncio.Task[None] | None = None

    def _on_notification(self, notification: Any) -> None:
        self.events.append({"t": time.monotonic(), **describe(notification)})
        self._changed.set()

    async def __aenter__(self) -> Notifications:
        self._task = asyncio.create_task(self._notifier.connect())
        ready = asyncio.create_task(self._notifier.wait_ready())
        await asyncio.wait({ready, self._task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            if self._task.done():
                self._task.result()  # re-raise why connecting failed
            raise TimeoutError("the official FishjamNotifier did not become ready within 10 s")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait_for(self, predicate: Callable[[Result], bool], timeout: float) -> Result | None:
        """The first recorded notification matching ``predicate``, waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def peer_auth_request(token: str) -> bytes:
    """``PeerMessage{auth_request(2): AuthRequest{token(1)}}``, encoded by hand."""
    return _length_delimited(2, _length_delimited(1, token.encode()))


class PeerSocket:
    """A WebRTC peer's signaling socket that authenticates and then idles, like the SDK tests' helper."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.replace("http", "ws", 1) + "/socket/peer/websocket"
        self.token = token
        self.first_reply_hex = ""
        self.closed_at: float | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._ws: ClientConnection | None = None
        self._idle: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PeerSocket:
        self._ws = await connect(self.url)
        await self._ws.send(peer_auth_request(self.token))
        reply = await asyncio.wait_for(self._ws.recv(decode=False), 5)
        self.first_reply_hex = bytes(reply).hex()
        self._idle = asyncio.create_task(self._idle_until_closed())
        return self

    async def _idle_until_closed(self) -> None:
        assert self._ws is not None
        try:
            while True:
                await self._ws.recv()
        except ConnectionClosed:
            self.closed_at = time.monotonic()
            self.close_code = self._ws.close_code
            self.close_reason = self._ws.close_reason or ""

    async def wait_closed(self, timeout: float) -> bool:
        if self._idle is None:
            return False
        done, _ = await asyncio.wait({self._idle}, timeout=timeout)
        return bool(done)

    async def __aexit__(self, *exc: object) -> None:
        if self._idle is not None:
            self._idle.cancel()
            await asyncio.gather(self._idle, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()

    def report(self) -> Result:
        return {
            "first_reply_hex": self.first_reply_hex,
            "closed_at": self.closed_at,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
        }
