"""The agent socket loop: authenticate, then serve an ``AgentEndpoint`` until the socket ends."""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from shoal.domain.manager import AuthFailure
from shoal.domain.model import PeerType
from shoal.endpoints.agent import AgentEndpoint, SessionError
from shoal.protocol.agent import AgentProtocol, AuthRequested
from shoal.protocol.base import CLOSE_POLICY, ProtocolError
from shoal.server import Shoal
from shoal.signaling.outbox import Outbox
from shoal.signaling.session import Frame, SocketSession, close_socket, open_and_read_first

log = logging.getLogger(__name__)


async def serve_agent(ws: WebSocket, shoal: Shoal) -> None:
    codec = AgentProtocol(shoal.config.metadata_limits, shoal.refusals.note)
    event = await open_and_read_first(ws, codec.receive, shoal.config.auth_timeout_s, "agent")
    if event is None:
        return
    assert isinstance(event, AuthRequested)
    try:
        peer = shoal.manager.authenticate(event.token)
    except AuthFailure as failure:
        log.warning("agent socket refused: %s", failure.reason)
        await close_socket(ws, CLOSE_POLICY, failure.reason)
        return
    if peer.type is not PeerType.AGENT:
        await close_socket(ws, CLOSE_POLICY, f"token belongs to a {peer.type.value} peer, not an agent")
        return

    outbox = Outbox(shoal.config.agent_outbox_messages, "drop_oldest", f"agent {peer.id}")
    outbox.put(codec.accept_auth())
    session = SocketSession(ws, outbox, f"agent {peer.id}")
    shoal.sessions.register(peer.id, session)
    connection = shoal.manager.connect(peer)
    endpoint = AgentEndpoint(
        peer,
        connection,
        shoal.manager,
        shoal.router,
        shoal.clock,
        outbox,
        shoal.config.playout_max_seconds,
        shoal.trace,
    )
    shoal.router.add_receiver(endpoint)

    def handle(frame: Frame) -> ProtocolError | None:
        event = codec.receive(frame)
        if isinstance(event, ProtocolError):
            return event
        try:
            endpoint.handle(event)
        except SessionError as exc:
            return ProtocolError(exc.code, exc.reason)
        return None

    try:
        error = await session.run(handle)
    finally:
        endpoint.close()
        shoal.sessions.unregister(peer.id, session)
        if outbox.dropped:
            log.warning("agent %s: %d frames were dropped because it read too slowly", peer.id, outbox.dropped)
    if error is not None:
        shoal.manager.crash(peer.room_id, peer.id, connection, error.reason)
    else:
        shoal.manager.disconnect(peer.room_id, peer.id, connection)
