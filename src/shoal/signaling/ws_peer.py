"""The peer socket loop for WebRTC participants: authentication and presence.

After ``Authenticated`` the peer counts as connected. Media events are decoded and
validated; WebRTC negotiation is not served yet, so they are logged and otherwise ignored.
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from shoal.domain.manager import AuthFailure
from shoal.domain.model import PeerType
from shoal.protocol.base import CLOSE_POLICY, ProtocolError
from shoal.protocol.peer import PeerAuthRequested, PeerMediaEvent, PeerProtocol
from shoal.server import Shoal
from shoal.signaling.outbox import Outbox
from shoal.signaling.session import Frame, SocketSession, close_socket, open_and_read_first

log = logging.getLogger(__name__)

PEER_OUTBOX_MESSAGES = 1000


async def serve_peer(ws: WebSocket, shoal: Shoal) -> None:
    codec = PeerProtocol()
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
    if peer.type is PeerType.AGENT:
        await close_socket(ws, CLOSE_POLICY, "invalid token")
        return

    room = shoal.manager.room(peer.room_id)
    outbox = Outbox(PEER_OUTBOX_MESSAGES, "close", f"peer {peer.id}")
    outbox.put(codec.accept_auth(room.config.room_type))
    session = SocketSession(ws, outbox, f"peer {peer.id}")
    shoal.sessions.register(peer.id, session)
    connection = shoal.manager.connect(peer)
    log.info("peer %s authenticated (%s)", peer.id, event.sdk_version or "unknown sdk")

    def handle(frame: Frame) -> ProtocolError | None:
        event = codec.receive(frame)
        if isinstance(event, ProtocolError):
            return event
        if isinstance(event, PeerMediaEvent):
            log.debug("peer %s: media event ignored (WebRTC signaling not served yet)", peer.id)
        return None

    try:
        error = await session.run(handle)
    finally:
        shoal.sessions.unregister(peer.id, session)
    if error is not None:
        shoal.manager.crash(peer.room_id, peer.id, connection, error.reason)
    else:
        shoal.manager.disconnect(peer.room_id, peer.id, connection)
