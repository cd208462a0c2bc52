"""The peer socket loop for WebRTC participants.

Authentication makes the peer connected (``PeerConnected``); then the client's media
events drive its ``WebRTCEndpoint``, strictly one after another. Whatever ends the socket
— the client closing or vanishing, a protocol error, a timeout in negotiation, the peer
being deleted — ends the endpoint's media and the peer's connection, so the others see
its tracks and endpoint removed.
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from shoal.domain.manager import AuthFailure
from shoal.domain.model import PeerType
from shoal.endpoints.webrtc import WebRTCEndpoint
from shoal.protocol.base import CLOSE_POLICY, ProtocolError
from shoal.protocol.peer import PeerAuthRequested, PeerProtocol, StatsReport
from shoal.server import Shoal
from shoal.signaling.outbox import Outbox
from shoal.signaling.session import Frame, SocketSession, close_socket, open_and_read_first

log = logging.getLogger(__name__)

PEER_OUTBOX_MESSAGES = 1000
CLOSE_INTERNAL_ERROR = 1011


async def serve_peer(ws: WebSocket, shoal: Shoal) -> None:
    codec = PeerProtocol(shoal.config.metadata_limits, shoal.refusals.note)
    event = await open_and_read_first(ws, codec.receive, shoal.config.auth_timeout_s, "peer")
    if event is None:
        return
    if not isinstance(event, PeerAuthRequested):
        await close_socket(ws, CLOSE_POLICY, "unauthenticated")
        return
    try:
        peer = shoal.manager.authenticate(event.token)
    except AuthFailure as failure:
        log.warning("peer socket refused: %s", failure.reason)
        await close_socket(ws, CLOSE_POLICY, failure.reason)
        return
    if peer.type is not PeerType.WEBRTC:
        await close_socket(ws, CLOSE_POLICY, "invalid token")
        return

    room = shoal.manager.room(peer.room_id)
    outbox = Outbox(PEER_OUTBOX_MESSAGES, "close", f"peer {peer.id}")
    outbox.put(codec.accept_auth(room.config.room_type))
    session = SocketSession(ws, outbox, f"peer {peer.id}")
    shoal.sessions.register(peer.id, session)
    connection = shoal.manager.connect(peer)
    log.info("peer %s authenticated (%s)", peer.id, event.sdk_version or "unknown sdk")
    failures: list[str] = []

    def fail(reason: str) -> None:
        if not failures:
            failures.append(reason)
            session.request_close(CLOSE_INTERNAL_ERROR, reason)

    endpoint = WebRTCEndpoint(
        peer, connection, shoal.manager, shoal.router, outbox.put, fail, shoal.directory,
        shoal.config.negotiation_timeout_s, shoal.config.ice_connect_timeout_s, shoal.rtc,
    )
    shoal.directory.register(endpoint)

    async def handle(frame: Frame) -> ProtocolError | None:
        event = codec.receive(frame)
        if isinstance(event, ProtocolError):
            return event
        if event is None or isinstance(event, StatsReport | PeerAuthRequested):
            return None  # the codec itself refuses a second auth_request
        return await endpoint.handle(event)

    error: ProtocolError | None = None
    try:
        error = await session.run(handle)
    finally:
        shoal.sessions.unregister(peer.id, session)
        # The domain first: others get tracks_removed (router), then endpoint_removed (directory).
        if error is not None or failures:
            shoal.manager.crash(peer.room_id, peer.id, connection, error.reason if error else failures[0])
        else:
            shoal.manager.disconnect(peer.room_id, peer.id, connection)
        shoal.directory.unregister(endpoint)
        endpoint.close()
