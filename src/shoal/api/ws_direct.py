"""Direct WebSocket writes: a frame written to the socket in the call that produced it.

Through ASGI a server-sent frame costs a hop: ``Outbox.put`` wakes the socket's writer task,
which runs in a later event-loop iteration and passes a message dict through Starlette's
send wrappers to uvicorn's ``send`` coroutine. Under load one iteration can last hundreds
of milliseconds (it reads a batch from every UDP socket that is ready), so each frame an
agent hears waited a whole iteration before it left — measured at 200 participants: p50
196 ms from the packet's arrival to the agent's receipt, though it was decoded within
100 ms — and the hop cost ~10 µs per frame.

Only while the loop is behind, though: on a loop that keeps up, direct writes measured
worse on a 2-core machine at 100 participants (the agents' process, woken once per frame
instead of once per batch, took 0.1 core more from the server: p50 3–6 → 23–42 ms).

uvicorn's sans-I/O WebSocket protocol writes synchronously once its ``writable`` event is
set (the transport is not paused), so ``direct_writer`` does the same thing it does for a
``websocket.send`` of bytes, in place, and says ``False`` whenever that is not possible
(paused transport, closing connection, another protocol implementation): the caller then
queues the frame for the ordinary ASGI path, which handles every such case as before.

``EdgeMiddleware`` records uvicorn's own ``send`` in the scope (``RAW_SEND``) before any
wrapper sees it. The attributes used (``conn``, ``transport``, ``writable``,
``handshake_complete``, ``close_sent``, ``disconnected``) are checked on first use; if one
is missing, the direct path is off with one warning (uvicorn is pinned below 0.56).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket

log = logging.getLogger(__name__)

RAW_SEND = "shoal.raw_send"
"""Scope key of the server's own ``send`` callable for a WebSocket connection."""
NEEDED = ("conn", "transport", "writable", "handshake_complete", "close_sent", "disconnected")

_warned = False


def _protocol(ws: WebSocket) -> Any | None:
    send = ws.scope.get(RAW_SEND)
    protocol = getattr(send, "__self__", None)
    if protocol is None or type(protocol).__name__ != "WebSocketsSansIOProtocol":
        return None
    missing = [name for name in NEEDED if not hasattr(protocol, name)]
    if missing:
        global _warned
        if not _warned:
            _warned = True
            log.warning("uvicorn's WebSocket protocol lacks %s: frames go through ASGI (slower)", ", ".join(missing))
        return None
    return protocol


def direct_writer(ws: WebSocket, when: Callable[[], bool]) -> Callable[[bytes], bool] | None:
    """A function that writes one binary frame now and returns True, or returns False if it cannot.

    It writes only while ``when()`` says so (the event loop is behind): on a loop that keeps up,
    the writer task's hop costs a millisecond or two and lets a client that reads many sockets
    (an agent process serving many rooms) take several frames per wake-up.
    """
    protocol = _protocol(ws)
    if protocol is None:
        return None
    conn, transport, writable = protocol.conn, protocol.transport, protocol.writable

    def write(frame: bytes) -> bool:
        if (
            not when()
            or not writable.is_set()
            or not protocol.handshake_complete
            or protocol.close_sent
            or protocol.disconnected
            or transport.is_closing()
        ):
            return False
        try:
            conn.send_binary(frame)
        except Exception:  # the connection is closing: the ASGI path reports it
            return False
        transport.write(b"".join(conn.data_to_send()))
        return True

    return write
