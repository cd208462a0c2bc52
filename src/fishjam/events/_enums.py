"""Protobuf enums as Python ``IntEnum`` classes.

The official SDK exposes betterproto enums, which are int enums: members can be looked
up by value (``TrackEncoding(1)``) and carry ``.name``. The google-protobuf enum
wrappers cannot do that, so the values are restated here; a unit test checks them
against the generated descriptors.
"""

from enum import IntEnum


class TrackEncoding(IntEnum):
    """Encoding of audio an agent sends on an outgoing track."""

    TRACK_ENCODING_UNSPECIFIED = 0
    TRACK_ENCODING_PCM16 = 1
    TRACK_ENCODING_OPUS = 2


class TrackType(IntEnum):
    """Media kind of a track in protobuf messages."""

    TRACK_TYPE_UNSPECIFIED = 0
    TRACK_TYPE_VIDEO = 1
    TRACK_TYPE_AUDIO = 2


class ServerMessagePeerType(IntEnum):
    """Peer kind carried by peer notifications."""

    PEER_TYPE_UNSPECIFIED = 0
    PEER_TYPE_WEBRTC = 1
    PEER_TYPE_AGENT = 2
    PEER_TYPE_VAPI = 3


class ServerMessageRecordingStatusChangedStatus(IntEnum):
    """Lifecycle state carried by ``RecordingStatusChanged``."""

    STATUS_UNSPECIFIED = 0
    STATUS_ACTIVE = 1
    STATUS_FINISHED = 2
    STATUS_AVAILABLE = 3
    STATUS_FAILED = 4
