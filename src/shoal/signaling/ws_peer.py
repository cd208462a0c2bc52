"""The peer socket of WebRTC participants, served through the shared peer-socket lifecycle.

Authentication makes the peer connected (``PeerConnected``); then the client's media
events drive its ``WebRTCEndpoint``, strictly one after another. Whatever ends the socket
— the client closing or vanishing, a protocol error, a timeout in negotiation, the peer
being deleted — ends the peer's connection and then the endpoint's media, so the others
see its tracks and endpoint removed.
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from shoal.domain.model import Peer, PeerType
from shoal.endpoints.webrtc import WebRTCEndpoint
from shoal.protocol.base import ProtocolError
from shoal.protocol.peer import PeerAuthRequested, PeerEvent, PeerProtocol, StatsReport
from shoal.server import Shoal
from shoal.signaling.outbox import Outbox
from shoal.signaling.peer_socket import PeerSocketAdapter, serve_peer_socket
from shoal.signaling.session import Frame, SocketSession

log = logging.getLogger(__name__)

PEER_OUTBOX_MESSAGES = 1000


async def serve_peer(ws: WebSocket, shoal: Shoal) -> None:
    adapter: PeerSocketAdapter[PeerEvent] = _PeerSocket(shoal)
    await serve_peer_socket(ws, shoal, adapter)


class _PeerSocket:
    channel = "peer"

    def __init__(self, shoal: Shoal) -> None:
        self._shoal = shoal
        self._codec = PeerProtocol(shoal.config.metadata_limits, shoal.refusals.note)

    def decode(self, frame: Frame) -> PeerEvent | ProtocolError | None:
        return self._codec.receive(frame)

    def token(self, event: PeerEvent) -> str | None:
        return event.token if isinstance(event, PeerAuthRequested) else None

    def refusal(self, peer: Peer) -> str | None:
        return None if peer.type is PeerType.WEBRTC else "invalid token"

    def outbox(self, peer: Peer) -> Outbox:
        room = self._shoal.manager.room(peer.room_id)
        outbox = Outbox(PEER_OUTBOX_MESSAGES, "close", f"peer {peer.id}")
        outbox.put(self._codec.accept_auth(room.config.room_type))
        return outbox

    def start(self, peer: Peer, connection: int, session: SocketSession, first: PeerEvent) -> _ServedPeer:
        shoal = self._shoal
        sdk = first.sdk_version if isinstance(first, PeerAuthRequested) else ""
        log.info("peer %s authenticated (%r)", peer.id, sdk[:40] or "unknown sdk")
        endpoint = WebRTCEndpoint(
            peer, connection, shoal.manager, shoal.router, session.outbox.put, session.fail, shoal.directory,
            shoal.config.negotiation_timeout_s, shoal.config.ice_connect_timeout_s, shoal.rtc,
            shoal.config.participant_audio_max_delay_s or None,
        )
        shoal.directory.register(endpoint)
        return _ServedPeer(self._codec, endpoint, shoal)


class _ServedPeer:
    def __init__(self, codec: PeerProtocol, endpoint: WebRTCEndpoint, shoal: Shoal) -> None:
        self._codec = codec
        self._endpoint = endpoint
        self._shoal = shoal

    async def handle(self, frame: Frame) -> ProtocolError | None:
        event = self._codec.receive(frame)
        if isinstance(event, ProtocolError):
            return event
        if event is None or isinstance(event, StatsReport | PeerAuthRequested):
            return None  # the codec itself refuses a second auth_request
        return await self._endpoint.handle(event)

    def summary(self) -> dict[str, int | float]:
        return dict(self._endpoint.summary())

    def close(self) -> None:
        self._shoal.directory.unregister(self._endpoint)
        self._endpoint.close()
