"""Domain events, published in order by the room manager.

Notifiers, webhooks, the media router and the socket registry all subscribe to the same
stream, so they observe one consistent order of what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.domain.model import PeerType, TrackKind


@dataclass(frozen=True)
class RoomCreated:
    room_id: str


@dataclass(frozen=True)
class RoomDeleted:
    room_id: str


@dataclass(frozen=True)
class PeerAdded:
    room_id: str
    peer_id: str
    peer_type: PeerType


@dataclass(frozen=True)
class PeerDeleted:
    room_id: str
    peer_id: str
    peer_type: PeerType


@dataclass(frozen=True)
class PeerConnected:
    room_id: str
    peer_id: str
    peer_type: PeerType


@dataclass(frozen=True)
class PeerDisconnected:
    room_id: str
    peer_id: str
    peer_type: PeerType


@dataclass(frozen=True)
class PeerCrashed:
    room_id: str
    peer_id: str
    peer_type: PeerType
    reason: str


@dataclass(frozen=True)
class PeerMetadataUpdated:
    room_id: str
    peer_id: str
    peer_type: PeerType
    metadata_json: str


@dataclass(frozen=True)
class TrackInfo:
    """What notifications say about a track."""

    track_id: str
    kind: TrackKind
    metadata_json: str


@dataclass(frozen=True)
class TrackAdded:
    room_id: str
    peer_id: str
    track: TrackInfo


@dataclass(frozen=True)
class TrackRemoved:
    room_id: str
    peer_id: str
    track: TrackInfo


@dataclass(frozen=True)
class TrackMetadataUpdated:
    room_id: str
    peer_id: str
    track: TrackInfo


@dataclass(frozen=True)
class SubscriptionsChanged:
    """Internal: a manual peer's subscriptions grew; routing must be recomputed."""

    room_id: str
    peer_id: str


DomainEvent = (
    RoomCreated
    | RoomDeleted
    | PeerAdded
    | PeerDeleted
    | PeerConnected
    | PeerDisconnected
    | PeerCrashed
    | PeerMetadataUpdated
    | TrackAdded
    | TrackRemoved
    | TrackMetadataUpdated
    | SubscriptionsChanged
)
