"""Rooms, peers and tracks, and the subscription rule that links them."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any


class PeerType(enum.Enum):
    WEBRTC = "webrtc"
    AGENT = "agent"
    VAPI = "vapi"


class PeerStatus(enum.Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class SubscribeMode(enum.Enum):
    AUTO = "auto"
    MANUAL = "manual"


class TrackKind(enum.Enum):
    AUDIO = "audio"
    VIDEO = "video"


class RoomType(enum.Enum):
    CONFERENCE = "conference"
    AUDIO_ONLY = "audio_only"
    LIVESTREAM = "livestream"
    FULL_FEATURE = "full_feature"
    BROADCASTER = "broadcaster"
    AUDIO_ONLY_LIVESTREAM = "audio_only_livestream"


AUDIO_ONLY_ROOM_TYPES = frozenset({RoomType.AUDIO_ONLY, RoomType.AUDIO_ONLY_LIVESTREAM})
"""Rooms whose participants may publish audio only."""


class VideoCodec(enum.Enum):
    H264 = "h264"
    VP8 = "vp8"


@dataclass(frozen=True)
class RoomConfig:
    """A room's configuration with every default filled in (0 peers means unlimited)."""

    max_peers: int = 0
    video_codec: VideoCodec = VideoCodec.H264
    webhook_url: str | None = None
    room_type: RoomType = RoomType.CONFERENCE
    public: bool = False
    batch_webhook_notifications: bool = False


@dataclass
class Track:
    """A published track. ``metadata`` is the decoded JSON value (or the raw text if invalid)."""

    id: str
    owner_id: str
    kind: TrackKind
    metadata: Any = None

    @property
    def metadata_json(self) -> str:
        return json.dumps(self.metadata, separators=(",", ":"))


@dataclass
class Peer:
    """A participant of a room: a WebRTC client, an agent or a VAPI bridge."""

    id: str
    room_id: str
    type: PeerType
    subscribe_mode: SubscribeMode = SubscribeMode.AUTO
    server_metadata: Any = field(default_factory=dict)
    peer_metadata: Any = field(default_factory=dict)
    status: PeerStatus = PeerStatus.DISCONNECTED
    tracks: dict[str, Track] = field(default_factory=dict)
    subscribed_peers: list[str] = field(default_factory=list)
    subscribed_tracks: list[str] = field(default_factory=list)
    output_sample_rate: int = 16000
    """Agents only: the rate of the PCM the agent receives."""
    connected_at: float | None = None
    """Wall-clock time (``time.time()``) its current connection began; None while disconnected."""
    heard_by_all_agents: bool = False
    """Legacy publisher-side ``subscribe`` option: every agent hears this peer, even manual ones."""

    @property
    def metadata(self) -> dict[str, Any]:
        return {"peer": self.peer_metadata, "server": self.server_metadata}

    @property
    def metadata_json(self) -> str:
        return json.dumps(self.metadata, separators=(",", ":"))


@dataclass
class Room:
    id: str
    config: RoomConfig
    peers: dict[str, Peer] = field(default_factory=dict)

    def find_track(self, track_id: str) -> Track | None:
        for peer in self.peers.values():
            if track_id in peer.tracks:
                return peer.tracks[track_id]
        return None


def should_receive(receiver: Peer, publisher: Peer, track: Track) -> bool:
    """The subscription rule: does ``receiver`` get ``track`` published by ``publisher``?

    A peer never receives its own tracks; agents receive audio only. Auto-mode peers get
    everything; manual-mode peers get what they subscribed to (by publisher or by track);
    a publisher created with the legacy ``subscribe`` option is heard by every agent.
    """
    if receiver.id == publisher.id:
        return False
    if receiver.type is PeerType.AGENT and track.kind is not TrackKind.AUDIO:
        return False
    if receiver.type is PeerType.AGENT and publisher.heard_by_all_agents:
        return True
    if receiver.subscribe_mode is SubscribeMode.AUTO:
        return True
    return publisher.id in receiver.subscribed_peers or track.id in receiver.subscribed_tracks
