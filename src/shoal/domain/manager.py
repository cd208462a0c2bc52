"""RoomManager: the single owner of all rooms, peers and tracks.

Every state change goes through here and publishes its domain events in the order the
notification protocol requires (for example: PeerDisconnected before PeerDeleted before
RoomDeleted). Socket sessions identify themselves with a connection number, so a session
that was replaced or whose peer was deleted cannot disturb the state that came after it.

It also enforces the capacity limits of ``RoomLimits``: rooms per server (503), peers per
room (409; a room's ``maxPeers`` can only lower the server's bound), and the peerless purge —
a room in which no peer has been connected for ``peerless_purge_timeout_s`` is deleted by
``purge_peerless``, which the server calls periodically, so abandoned rooms do not pile up.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoal.auth import PeerTokens
from shoal.domain import events as ev
from shoal.domain.model import (
    AUDIO_ONLY_ROOM_TYPES,
    Peer,
    PeerStatus,
    PeerType,
    Room,
    RoomConfig,
    SubscribeMode,
    Track,
    TrackKind,
    should_receive,
)
from shoal.errors import Conflict, InvalidRequest, NotFound, Unavailable
from shoal.ids import new_peer_id, new_room_id
from shoal.logs import ids
from shoal.refusals import Report

log = logging.getLogger(__name__)


class AuthFailure(Exception):
    """A socket's credentials were refused; ``reason`` is the exact close reason to send."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PeerSpec:
    """What the REST layer asks for when adding a peer (already validated)."""

    type: PeerType
    subscribe_mode: SubscribeMode = SubscribeMode.AUTO
    server_metadata: Any = None
    output_sample_rate: int = 16000
    heard_by_all_agents: bool = False


@dataclass(frozen=True)
class RoomLimits:
    """Capacity bounds of one server; 0 means no bound."""

    max_rooms: int = 0
    max_peers_per_room: int = 0
    peerless_purge_timeout_s: float = 0.0


def _ignore(cause: str, message: str) -> None:
    pass


class RoomManager:
    def __init__(
        self,
        publish: Callable[[ev.DomainEvent], None],
        limits: RoomLimits = RoomLimits(),
        report: Report = _ignore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self._limits = limits
        self._report = report
        self._clock = clock
        self._rooms: dict[str, Room] = {}
        self._peerless_since: dict[str, float] = {}
        """Rooms without a connected peer, and since when (``clock`` time)."""
        self.purged_rooms = 0
        self._tokens = PeerTokens()
        self._connections: dict[str, int] = {}
        self._connection_numbers = itertools.count(1)

    # rooms -----------------------------------------------------------------------------

    def create_room(self, config: RoomConfig) -> Room:
        limit = self._limits.max_rooms
        if limit and len(self._rooms) >= limit:
            self._report("rooms.max_rooms", f"room creation refused: the server holds its limit of {limit} rooms")
            raise Unavailable(f"Reached the server's limit of {limit} rooms; delete rooms or try again later")
        room = Room(id=new_room_id(), config=config)
        self._rooms[room.id] = room
        self._peerless_since[room.id] = self._clock()
        log.info("room %s created (%s)", room.id, config.room_type.value, extra=ids(room_id=room.id))
        self._publish(ev.RoomCreated(room.id))
        return room

    def rooms(self) -> list[Room]:
        return list(self._rooms.values())

    def find_room(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def room(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            raise NotFound(f"Room {room_id} does not exist")
        return room

    def delete_room(self, room_id: str) -> None:
        room = self.room(room_id)
        for peer_id in list(room.peers):
            self._remove_peer(room, peer_id)
        del self._rooms[room_id]
        self._peerless_since.pop(room_id, None)
        log.info("room %s deleted", room_id, extra=ids(room_id=room_id))
        self._publish(ev.RoomDeleted(room_id))

    # peers -----------------------------------------------------------------------------

    def add_peer(self, room_id: str, spec: PeerSpec) -> tuple[Peer, str]:
        room = self.room(room_id)
        limit = self.peer_limit(room)
        if limit and len(room.peers) >= limit:
            cause = "rooms.max_peers" if limit == room.config.max_peers else "rooms.max_peers_per_room"
            self._report(cause, f"peer refused: room {room_id} holds its limit of {limit} peers")
            raise Conflict(f"Reached peer limit of {limit} in room {room_id}")
        peer = Peer(
            id=new_peer_id(),
            room_id=room_id,
            type=spec.type,
            subscribe_mode=spec.subscribe_mode,
            server_metadata=spec.server_metadata if spec.server_metadata is not None else {},
            output_sample_rate=spec.output_sample_rate,
            heard_by_all_agents=spec.heard_by_all_agents,
        )
        room.peers[peer.id] = peer
        token = self._tokens.issue(room_id, peer.id)
        log.info("peer %s (%s) added to room %s", peer.id, peer.type.value, room_id, extra=ids(room_id=room_id, peer_id=peer.id))
        self._publish(ev.PeerAdded(room_id, peer.id, peer.type))
        return peer, token

    def peer_limit(self, room: Room) -> int:
        """The room's effective peer bound: its ``maxPeers`` within the server's (0: none)."""
        bounds = [limit for limit in (room.config.max_peers, self._limits.max_peers_per_room) if limit]
        return min(bounds) if bounds else 0

    def purge_peerless(self) -> list[str]:
        """Delete every room that has had no connected peer for the purge timeout; their ids."""
        timeout = self._limits.peerless_purge_timeout_s
        if not timeout:
            return []
        now = self._clock()
        expired = [room_id for room_id, since in self._peerless_since.items() if now - since >= timeout]
        for room_id in expired:
            log.info("room %s: no peer connected for %.0f s (peerless purge timeout); deleting it", room_id, timeout, extra=ids(room_id=room_id))
            self.purged_rooms += 1
            self.delete_room(room_id)
        return expired

    def peer(self, room_id: str, peer_id: str) -> Peer:
        peer = self.room(room_id).peers.get(peer_id)
        if peer is None:
            raise NotFound(f"Peer {peer_id} does not exist")
        return peer

    def find_peer(self, room_id: str, peer_id: str) -> Peer | None:
        room = self._rooms.get(room_id)
        return room.peers.get(peer_id) if room else None

    def delete_peer(self, room_id: str, peer_id: str) -> None:
        room = self.room(room_id)
        if peer_id not in room.peers:
            raise NotFound(f"Peer {peer_id} does not exist")
        self._remove_peer(room, peer_id)

    def refresh_token(self, room_id: str, peer_id: str) -> str:
        self.peer(room_id, peer_id)
        return self._tokens.issue(room_id, peer_id)

    def _remove_peer(self, room: Room, peer_id: str) -> None:
        peer = room.peers[peer_id]
        if peer.status is PeerStatus.CONNECTED:
            self._end_connection(room, peer)
        self._tokens.revoke(peer_id)
        del room.peers[peer_id]
        for other in room.peers.values():
            if peer_id in other.subscribed_peers:
                other.subscribed_peers.remove(peer_id)
        log.info("peer %s deleted from room %s", peer_id, room.id, extra=ids(room_id=room.id, peer_id=peer_id))
        self._publish(ev.PeerDeleted(room.id, peer_id, peer.type))

    # subscriptions ---------------------------------------------------------------------

    def subscribe_peer(self, room_id: str, peer_id: str, publisher_id: str) -> None:
        room = self.room(room_id)
        peer = self._manual_peer(room, peer_id)
        if publisher_id not in room.peers:
            raise NotFound(f"Peer {publisher_id} does not exist")
        if publisher_id == peer_id:
            raise InvalidRequest("A peer cannot subscribe to itself")
        if publisher_id not in peer.subscribed_peers:
            peer.subscribed_peers.append(publisher_id)
        self._publish(ev.SubscriptionsChanged(room_id, peer_id))

    def subscribe_tracks(self, room_id: str, peer_id: str, track_ids: list[str]) -> None:
        room = self.room(room_id)
        peer = self._manual_peer(room, peer_id)
        for track_id in track_ids:
            track = room.find_track(track_id)
            if track is None:
                raise NotFound(f"Track {track_id} does not exist")
            if track.owner_id == peer_id:
                raise InvalidRequest(f"Track {track_id} belongs to peer {peer_id} itself")
        for track_id in track_ids:
            if track_id not in peer.subscribed_tracks:
                peer.subscribed_tracks.append(track_id)
        self._publish(ev.SubscriptionsChanged(room_id, peer_id))

    def _manual_peer(self, room: Room, peer_id: str) -> Peer:
        peer = room.peers.get(peer_id)
        if peer is None:
            raise NotFound(f"Peer {peer_id} does not exist")
        if peer.subscribe_mode is not SubscribeMode.MANUAL:
            raise InvalidRequest(
                f"Peer {peer_id} uses subscribeMode 'auto' and already receives every track; "
                "explicit subscriptions apply only to peers created with subscribeMode 'manual'"
            )
        return peer

    def receivers(self, room_id: str, track: Track) -> list[Peer]:
        """Connected peers that should receive ``track`` right now."""
        room = self._rooms.get(room_id)
        if room is None or track.owner_id not in room.peers:
            return []
        publisher = room.peers[track.owner_id]
        return [
            peer
            for peer in room.peers.values()
            if peer.status is PeerStatus.CONNECTED and should_receive(peer, publisher, track)
        ]

    def tracks_for(self, room_id: str, receiver_id: str) -> list[Track]:
        """Every live track the given peer should receive."""
        room = self._rooms.get(room_id)
        if room is None or receiver_id not in room.peers:
            return []
        receiver = room.peers[receiver_id]
        return [
            track
            for publisher in room.peers.values()
            for track in publisher.tracks.values()
            if should_receive(receiver, publisher, track)
        ]

    # connections -----------------------------------------------------------------------

    def grants(self) -> list[tuple[str, str, str]]:
        """Every live socket token as ``(token, room_id, peer_id)``."""
        return [(token, grant.room_id, grant.peer_id) for token, grant in self._tokens.grants()]

    def authenticate(self, token: str) -> Peer:
        """The peer a socket token belongs to, or ``AuthFailure`` with the close reason."""
        if not token:
            raise AuthFailure("missing token")
        grant = self._tokens.resolve(token)
        if grant is None:
            raise AuthFailure("invalid token")
        room = self._rooms.get(grant.room_id)
        if room is None:
            raise AuthFailure("room not found")
        peer = room.peers.get(grant.peer_id)
        if peer is None:
            raise AuthFailure("peer not found")
        return peer

    def connect(self, peer: Peer) -> int:
        """Mark the peer connected; returns the number that identifies this connection.

        If the peer already had a connection, that one ends first (its tracks are removed
        and PeerDisconnected is published) — the newest connection always wins.
        """
        room = self.room(peer.room_id)
        if peer.status is PeerStatus.CONNECTED:
            log.info("peer %s reconnected; its previous connection is replaced", peer.id, extra=ids(room_id=peer.room_id, peer_id=peer.id))
            self._end_connection(room, peer)
        number = next(self._connection_numbers)
        self._connections[peer.id] = number
        peer.status = PeerStatus.CONNECTED
        peer.connected_at = time.time()
        self._peerless_since.pop(room.id, None)
        log.info("peer %s (%s) connected to room %s", peer.id, peer.type.value, room.id, extra=ids(room_id=room.id, peer_id=peer.id))
        self._publish(ev.PeerConnected(room.id, peer.id, peer.type))
        if peer.type is PeerType.AGENT:
            # The official SDK's tests treat this as the "agent is connected" signal.
            self._publish(ev.PeerMetadataUpdated(room.id, peer.id, peer.type, peer.metadata_json))
        return number

    def is_current(self, peer_id: str, connection: int) -> bool:
        return self._connections.get(peer_id) == connection

    def disconnect(self, room_id: str, peer_id: str, connection: int) -> None:
        """End a connection if it is still the peer's current one (otherwise a no-op)."""
        room = self._rooms.get(room_id)
        if room is None or peer_id not in room.peers or not self.is_current(peer_id, connection):
            return
        self._end_connection(room, room.peers[peer_id])

    def crash(self, room_id: str, peer_id: str, connection: int, reason: str) -> None:
        """The peer's session failed: PeerCrashed, then the usual disconnect."""
        room = self._rooms.get(room_id)
        if room is None or peer_id not in room.peers or not self.is_current(peer_id, connection):
            return
        peer = room.peers[peer_id]
        log.warning("peer %s in room %s crashed: %s", peer_id, room_id, reason, extra=ids(room_id=room_id, peer_id=peer_id))
        self._publish(ev.PeerCrashed(room_id, peer_id, peer.type, reason))
        self._end_connection(room, peer)

    def _end_connection(self, room: Room, peer: Peer) -> None:
        for track_id in list(peer.tracks):
            self._remove_track(room, peer, track_id)
        self._connections.pop(peer.id, None)
        peer.status = PeerStatus.DISCONNECTED
        peer.connected_at = None
        if all(other.status is not PeerStatus.CONNECTED for other in room.peers.values()):
            self._peerless_since.setdefault(room.id, self._clock())
        log.info("peer %s disconnected from room %s", peer.id, room.id, extra=ids(room_id=room.id, peer_id=peer.id))
        self._publish(ev.PeerDisconnected(room.id, peer.id, peer.type))

    def update_peer_metadata(self, room_id: str, peer_id: str, metadata: Any) -> None:
        """The client replaced its own (``peer``) metadata; the server part is kept."""
        peer = self.find_peer(room_id, peer_id)
        if peer is None:
            return
        peer.peer_metadata = metadata
        self._publish(ev.PeerMetadataUpdated(room_id, peer_id, peer.type, peer.metadata_json))

    # tracks ----------------------------------------------------------------------------

    def add_track(self, room_id: str, peer_id: str, track: Track) -> None:
        room = self.room(room_id)
        peer = self.peer(room_id, peer_id)
        if room.find_track(track.id) is not None:
            raise InvalidRequest(f"Track id {track.id} is already in use in this room")
        if track.kind is TrackKind.VIDEO and room.config.room_type in AUDIO_ONLY_ROOM_TYPES:
            raise InvalidRequest(f"video tracks are not allowed in {room.config.room_type.value} rooms")
        peer.tracks[track.id] = track
        log.info("peer %s published %s track %s", peer_id, track.kind.value, track.id, extra=ids(room_id=room_id, peer_id=peer_id, track_id=track.id))
        self._publish(ev.TrackAdded(room_id, peer_id, _info(track)))

    def remove_track(self, room_id: str, peer_id: str, track_id: str) -> None:
        room = self._rooms.get(room_id)
        peer = room.peers.get(peer_id) if room else None
        if room is None or peer is None or track_id not in peer.tracks:
            return
        self._remove_track(room, peer, track_id)

    def update_track_metadata(self, room_id: str, peer_id: str, track_id: str, metadata: Any) -> bool:
        """Replace a track's metadata; False if the peer has no such track."""
        peer = self.find_peer(room_id, peer_id)
        track = peer.tracks.get(track_id) if peer else None
        if track is None:
            return False
        track.metadata = metadata
        self._publish(ev.TrackMetadataUpdated(room_id, peer_id, _info(track)))
        return True

    def _remove_track(self, room: Room, peer: Peer, track_id: str) -> None:
        track = peer.tracks.pop(track_id)
        for other in room.peers.values():
            if track_id in other.subscribed_tracks:
                other.subscribed_tracks.remove(track_id)
        log.info("track %s of peer %s removed", track_id, peer.id, extra=ids(room_id=room.id, peer_id=peer.id, track_id=track_id))
        self._publish(ev.TrackRemoved(room.id, peer.id, _info(track)))


def _info(track: Track) -> ev.TrackInfo:
    return ev.TrackInfo(track.id, track.kind, track.metadata_json)


__all__ = ["AuthFailure", "PeerSpec", "RoomLimits", "RoomManager", "TrackKind"]
