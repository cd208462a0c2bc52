"""EndpointDirectory: which participants each WebRTC client is told about, and when.

A WebRTC client sees the room as endpoints: connected agents, and other WebRTC peers that
have joined the media session (sent ``connect``). The directory turns domain events into
``endpoint_added``/``endpoint_updated``/``endpoint_removed``/``track_updated`` for every
joined endpoint of the room. Tracks themselves are routed by the MediaRouter; because the
router acts on ``TrackRemoved`` before the directory sees ``PeerDisconnected``, clients get
``tracks_removed`` before ``endpoint_removed`` (I7).
"""

from __future__ import annotations

from shoal.domain import events as ev
from shoal.domain.manager import RoomManager
from shoal.domain.model import Peer, PeerStatus, PeerType
from shoal.endpoints.webrtc import WebRTCEndpoint


class EndpointDirectory:
    def __init__(self, manager: RoomManager) -> None:
        self._manager = manager
        self._joined: dict[str, WebRTCEndpoint] = {}
        self._sessions: dict[str, WebRTCEndpoint] = {}

    def register(self, endpoint: WebRTCEndpoint) -> None:
        """A socket authenticated; it becomes visible to others once it has joined."""
        self._sessions[endpoint.peer_id] = endpoint

    def session(self, peer_id: str) -> WebRTCEndpoint | None:
        """The peer's current WebRTC endpoint, if its socket is open here."""
        return self._sessions.get(peer_id)

    def joined(self, endpoint: WebRTCEndpoint) -> None:
        self._joined[endpoint.peer_id] = endpoint
        peer = self._manager.find_peer(endpoint.room_id, endpoint.peer_id)
        if peer is not None:
            for other in self._others(endpoint.room_id, endpoint.peer_id):
                other.endpoint_added(peer)

    def unregister(self, endpoint: WebRTCEndpoint) -> None:
        """The socket is gone."""
        if self._sessions.get(endpoint.peer_id) is endpoint:
            del self._sessions[endpoint.peer_id]
        self._leave(endpoint)

    def _leave(self, endpoint: WebRTCEndpoint) -> None:
        """The endpoint left the media session: the others forget it."""
        if self._joined.get(endpoint.peer_id) is endpoint:
            del self._joined[endpoint.peer_id]
            for other in self._others(endpoint.room_id, endpoint.peer_id):
                other.endpoint_removed(endpoint.peer_id)

    def visible(self, room_id: str, exclude: str) -> list[Peer]:
        """Endpoints a newly joining client is told about in ``connected``."""
        room = self._manager.room(room_id)
        return [
            peer
            for peer in room.peers.values()
            if peer.id != exclude
            and peer.status is PeerStatus.CONNECTED
            and (peer.type is PeerType.AGENT or peer.id in self._joined)
        ]

    def on_event(self, event: ev.DomainEvent) -> None:
        match event:
            case ev.PeerConnected(room_id, peer_id, PeerType.AGENT):
                peer = self._manager.find_peer(room_id, peer_id)
                if peer is not None:
                    for other in self._others(room_id, peer_id):
                        other.endpoint_added(peer)
            case ev.PeerDisconnected(room_id, peer_id) | ev.PeerDeleted(room_id, peer_id):
                endpoint = self._joined.get(peer_id)
                if endpoint is not None and isinstance(event, ev.PeerDisconnected):
                    # Its connection ended (replaced, deleted, room gone) though the socket may linger.
                    self._leave(endpoint)
                for other in self._others(room_id, peer_id):
                    other.endpoint_removed(peer_id)
                if isinstance(event, ev.PeerDeleted):
                    session = self._sessions.get(peer_id)
                    if session is not None:
                        session.kicked()
            case ev.PeerMetadataUpdated(room_id, peer_id):
                peer = self._manager.find_peer(room_id, peer_id)
                if peer is not None:
                    for other in self._others(room_id, peer_id):
                        other.endpoint_updated(peer)
            case ev.TrackMetadataUpdated(room_id, peer_id, track):
                for other in self._others(room_id, peer_id):
                    other.track_updated(peer_id, track.track_id, track.metadata_json)

    def _others(self, room_id: str, peer_id: str) -> list[WebRTCEndpoint]:
        return [e for e in self._joined.values() if e.room_id == room_id and e.peer_id != peer_id]
