"""Typed views of the JSON objects the management API returns.

Field names and positional order follow the official SDK so code that builds or compares
these objects keeps working. Unknown keys are kept in ``additional_properties`` and take
part in equality, which makes unexpected server output visible in comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar, cast

_T = TypeVar("_T", bound="_FreeForm")


class _WireEnum(StrEnum):
    """A string enum whose ``str()`` is the value sent on the wire."""


class PeerStatus(_WireEnum):
    """Whether the peer's socket is currently authenticated."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class PeerType(_WireEnum):
    """What kind of participant a peer is."""

    AGENT = "agent"
    VAPI = "vapi"
    WEBRTC = "webrtc"


class RoomType(_WireEnum):
    """The use-case a room is set up for."""

    AUDIO_ONLY = "audio_only"
    AUDIO_ONLY_LIVESTREAM = "audio_only_livestream"
    BROADCASTER = "broadcaster"
    CONFERENCE = "conference"
    FULL_FEATURE = "full_feature"
    LIVESTREAM = "livestream"


class VideoCodec(_WireEnum):
    """The video codec enforced for every peer of a room."""

    H264 = "h264"
    VP8 = "vp8"


class SubscribeMode(_WireEnum):
    """Whether a peer receives every track automatically or only what it subscribes to."""

    AUTO = "auto"
    MANUAL = "manual"


class TrackType(_WireEnum):
    """Media kind of a track as the REST API reports it."""

    AUDIO = "audio"
    VIDEO = "video"


class AudioFormat(_WireEnum):
    """Sample format of the audio the server sends to an agent."""

    PCM16 = "pcm16"


class _FreeForm(dict[str, Any]):
    """A free-form JSON object that also offers the official SDK's accessors."""

    @property
    def additional_properties(self) -> dict[str, Any]:
        return self

    @property
    def additional_keys(self) -> list[str]:
        return list(self.keys())

    @classmethod
    def from_dict(cls: type[_T], src_dict: Mapping[str, Any]) -> _T:
        return cls(src_dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


class PeerMetadata(_FreeForm):
    """Peer metadata; the server nests it as ``{"peer": ..., "server": ...}``."""


class TrackMetadata(_FreeForm):
    """Metadata a peer attached to one of its tracks."""


def _extras(data: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in known}


def _optional_enum(enum: type[_WireEnum], value: Any) -> Any:
    return None if value is None else enum(value)


@dataclass
class RoomConfig:
    """The configuration a room was created with, defaults filled in by the server."""

    batch_webhook_notifications: bool = False
    max_peers: int | None = None
    public: bool = False
    room_type: RoomType | None = None
    video_codec: VideoCodec | None = None
    webhook_url: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoomConfig:
        return cls(
            batch_webhook_notifications=bool(data.get("batchWebhookNotifications", False)),
            max_peers=data.get("maxPeers"),
            public=bool(data.get("public", False)),
            room_type=_optional_enum(RoomType, data.get("roomType")),
            video_codec=_optional_enum(VideoCodec, data.get("videoCodec")),
            webhook_url=data.get("webhookUrl"),
        )


@dataclass
class Track:
    """A track published by a peer."""

    id: str | None = None
    metadata: TrackMetadata | None = None
    type_: TrackType | None = None
    additional_properties: dict[str, Any] = field(init=False, default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Track:
        metadata = data.get("metadata")
        track = cls(
            id=data.get("id"),
            metadata=TrackMetadata(metadata) if isinstance(metadata, dict) else metadata,
            type_=_optional_enum(TrackType, data.get("type")),
        )
        track.additional_properties = _extras(data, ("id", "metadata", "type"))
        return track


@dataclass
class Subscriptions:
    """What a manual-mode peer subscribed to."""

    peers: list[str]
    tracks: list[str]
    additional_properties: dict[str, Any] = field(init=False, default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subscriptions:
        subscriptions = cls(peers=list(data["peers"]), tracks=list(data["tracks"]))
        subscriptions.additional_properties = _extras(data, ("peers", "tracks"))
        return subscriptions


_PEER_KEYS = ("id", "metadata", "status", "subscribeMode", "subscriptions", "tracks", "type")


@dataclass
class Peer:
    """A participant of a room: a WebRTC client, an agent or a VAPI bridge."""

    id: str
    metadata: PeerMetadata | None
    status: PeerStatus
    subscribe_mode: SubscribeMode
    subscriptions: Subscriptions
    tracks: list[Track]
    type_: PeerType
    additional_properties: dict[str, Any] = field(init=False, default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Peer:
        metadata = data["metadata"]
        peer = cls(
            id=data["id"],
            metadata=PeerMetadata(metadata) if isinstance(metadata, dict) else metadata,
            status=PeerStatus(data["status"]),
            subscribe_mode=SubscribeMode(data["subscribeMode"]),
            subscriptions=Subscriptions.from_dict(data["subscriptions"]),
            tracks=[Track.from_dict(track) for track in data["tracks"]],
            type_=PeerType(data["type"]),
        )
        peer.additional_properties = _extras(data, _PEER_KEYS)
        return peer


@dataclass
class TrackForwardingInfo:
    """Which of a peer's tracks feed which composition input."""

    input_id: str
    peer_id: str
    audio_track_id: str | None = None
    video_track_id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackForwardingInfo:
        return cls(
            input_id=data["inputId"],
            peer_id=data["peerId"],
            audio_track_id=data.get("audioTrackId"),
            video_track_id=data.get("videoTrackId"),
        )


@dataclass
class CompositionInfo:
    """The composition a room's tracks are forwarded into."""

    composition_url: str
    forwardings: list[TrackForwardingInfo]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompositionInfo:
        return cls(
            composition_url=data["compositionUrl"],
            forwardings=[TrackForwardingInfo.from_dict(item) for item in data["forwardings"]],
        )


@dataclass
class Room:
    """A room with its configuration and current peers."""

    config: RoomConfig
    id: str
    peers: list[Peer]
    composition_info: CompositionInfo | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Room:
        composition = data.get("compositionInfo")
        return cls(
            config=RoomConfig.from_dict(data["config"]),
            id=data["id"],
            peers=[Peer.from_dict(peer) for peer in data["peers"]],
            composition_info=CompositionInfo.from_dict(composition)
            if isinstance(composition, dict)
            else None,
        )


@dataclass
class MoqAccess:
    """Connection details for a Media-over-QUIC relay."""

    connection_url: str
    token: str
    additional_properties: dict[str, Any] = field(init=False, default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MoqAccess:
        access = cls(connection_url=data["connection_url"], token=data["token"])
        access.additional_properties = _extras(data, ("connection_url", "token"))
        return access


def as_dict(value: Any) -> dict[str, Any]:
    """Narrow a decoded JSON value to an object, failing loudly on anything else."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object from the server, got {type(value).__name__}")
    return cast(dict[str, Any], value)
