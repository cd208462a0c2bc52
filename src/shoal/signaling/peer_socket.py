"""The lifecycle every peer socket shares, agents' and WebRTC participants' alike.

Authenticate the first frame, register the session (an older one with the same token is
closed), connect the peer in the domain, serve frames until the socket ends, then end the
domain connection — always, however the socket ended — before the adapter releases its
media: ``PeerCrashed`` then ``PeerDisconnected`` when the session failed (a protocol error,
a failure the endpoint reported, an unexpected exception), only ``PeerDisconnected`` when it
ended normally (the client left, the peer was deleted or replaced). An adapter supplies only
what differs between sockets: its codec, which peers it accepts, its outbox, its endpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

from starlette.websockets import WebSocket

from shoal import logs
from shoal.cluster.relay import relay_if_elsewhere
from shoal.domain.manager import AuthFailure
from shoal.domain.model import Peer
from shoal.protocol.base import CLOSE_INTERNAL, CLOSE_POLICY, ProtocolError
from shoal.server import Shoal
from shoal.signaling.outbox import Outbox
from shoal.signaling.session import (
    INTERNAL_ERROR,
    Frame,
    SocketSession,
    close_socket,
    open_and_read_first_frame,
)

log = logging.getLogger(__name__)

E = TypeVar("E")


class Served(Protocol):
    """What an adapter serves once its peer is connected."""

    def handle(self, frame: Frame) -> ProtocolError | None | Awaitable[ProtocolError | None]:
        """Handle one frame; a returned error closes the socket and the peer crashed."""

    def summary(self) -> dict[str, int | float]:
        """Counters of the connection's life, for its summary line."""
        ...

    def close(self) -> None:
        """The domain connection has ended: release media, registrations and tasks."""


class PeerSocketAdapter(Protocol[E]):
    """What differs between peer sockets; ``E`` is the type of its codec's events."""

    channel: str
    """Names the socket in logs: ``"agent"`` or ``"peer"``."""

    def decode(self, frame: Frame) -> E | ProtocolError | None: ...

    def token(self, event: E) -> str | None:
        """The token of an auth request; None if the first frame is something else."""

    def refusal(self, peer: Peer) -> str | None:
        """Why the token's peer may not use this socket (its close reason), or None."""

    def outbox(self, peer: Peer) -> Outbox:
        """The session's outbox, with the ``authenticated`` reply already queued."""

    def start(self, peer: Peer, connection: int, session: SocketSession, first: E) -> Served:
        """Build and register the endpoint of the connected peer."""


async def serve_peer_socket(ws: WebSocket, shoal: Shoal, adapter: PeerSocketAdapter[E]) -> None:
    config = shoal.config
    opened = await open_and_read_first_frame(ws, adapter.decode, config.auth_timeout_s, adapter.channel, shoal.preauth)
    if opened is None:
        return
    frame, first = opened
    peer = await _authenticate(ws, shoal, adapter, first, frame)
    if peer is None:
        return
    logs.bind(room_id=peer.room_id, peer_id=peer.id)  # every line of this connection's tasks says whose
    started = time.monotonic()
    name = f"{adapter.channel} {peer.id}"
    session = SocketSession(
        ws, adapter.outbox(peer), name, shoal.unexpected_errors, config.debug_fault_marker, shoal.loop_behind
    )
    shoal.sessions.register(peer.id, session)
    connection = shoal.manager.connect(peer)
    served: Served | None = None
    failure: str | None = None
    try:
        served = adapter.start(peer, connection, session, first)
        failure = await session.run(served.handle)
    except Exception as exc:  # building the endpoint failed: as unexpected as a failing handler
        shoal.unexpected_errors.report(name, exc)
        await close_socket(ws, CLOSE_INTERNAL, INTERNAL_ERROR)
        failure = INTERNAL_ERROR
    finally:
        shoal.sessions.unregister(peer.id, session)
        # The domain first: others get tracks_removed (router), then endpoint_removed (directory).
        if failure is not None:
            shoal.manager.crash(peer.room_id, peer.id, connection, failure)
        else:
            shoal.manager.disconnect(peer.room_id, peer.id, connection)
        counters: dict[str, int | float] = {}
        if served is not None:
            try:
                counters = served.summary()
                served.close()
            except Exception as exc:
                shoal.unexpected_errors.report(f"{name} (closing)", exc)
        _summarise(adapter.channel, peer, time.monotonic() - started, failure or session.ended, counters)


def _summarise(channel: str, peer: Peer, seconds: float, ended: str, counters: dict[str, int | float]) -> None:
    """One line per connection: how long, what went through, why it ended."""
    described = ", ".join(f"{value} {key.replace('_', ' ')}" for key, value in counters.items())
    log.info(
        "%s %s connection ended after %.1f s (%s)%s", channel, peer.id, seconds, ended, f": {described}" if described else "",
        extra={"event": "connection_summary", "channel": channel, "duration_s": round(seconds, 3), "ended": ended, **counters},
    )


async def _authenticate(
    ws: WebSocket, shoal: Shoal, adapter: PeerSocketAdapter[E], first: E, frame: Frame
) -> Peer | None:
    """The peer the first frame's token belongs to; None after closing the socket with the reason.

    In cluster mode a token another node issued is relayed there (``shoal.cluster.relay``);
    None then too, once the relayed socket has ended.
    """
    token = adapter.token(first)
    try:
        if token is None:
            raise AuthFailure("unauthenticated")
        peer = shoal.manager.authenticate(token)
    except AuthFailure as failure:
        if shoal.cluster is not None and token and failure.reason == "invalid token":
            if await relay_if_elsewhere(ws, shoal.cluster, token, frame, shoal.config.max_message_bytes):
                return None
        reason = failure.reason
    else:
        refusal = adapter.refusal(peer)
        if refusal is None:
            return peer
        reason = refusal
    log.warning("%s socket refused: %s", adapter.channel, reason)
    await close_socket(ws, CLOSE_POLICY, reason)
    return None
