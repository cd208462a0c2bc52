"""Server side of the peer socket (``/socket/peer/websocket``), without I/O.

This covers authentication: ``PeerMessage{auth_request}`` → ``PeerMessage{authenticated}``.
The media-event signaling that follows is decoded into ``PeerMediaEvent``s for the WebRTC
endpoint; what the server sends back is built with the helpers below.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.domain.model import RoomType
from shoal.protocol.base import CLOSE_INVALID_DATA, CLOSE_POLICY, ProtocolError, parse
from shoal.protocol.pb import peer_pb

PM = peer_pb.PeerMessage

_ROOM_TYPES = {
    RoomType.AUDIO_ONLY: PM.ROOM_TYPE_AUDIO_ONLY,
    RoomType.LIVESTREAM: PM.ROOM_TYPE_LIVESTREAM,
    RoomType.AUDIO_ONLY_LIVESTREAM: PM.ROOM_TYPE_LIVESTREAM,
}


@dataclass(frozen=True)
class PeerAuthRequested:
    token: str
    sdk_version: str


@dataclass(frozen=True)
class PeerMediaEvent:
    """A client media event, still as the generated message (handled by the WebRTC layer)."""

    event: object


@dataclass(frozen=True)
class StatsReport:
    data: str


PeerEvent = PeerAuthRequested | PeerMediaEvent | StatsReport


class PeerProtocol:
    def __init__(self) -> None:
        self.authenticated = False

    def receive(self, frame: bytes | str) -> PeerEvent | ProtocolError | None:
        """The event in ``frame``; None for messages that need no action (legacy JSON)."""
        message = parse(PM, frame, "PeerMessage")
        if isinstance(message, ProtocolError):
            return message
        which = message.WhichOneof("content")
        if which is None:
            return ProtocolError(CLOSE_INVALID_DATA, "PeerMessage carries no message")
        if not self.authenticated:
            if which != "auth_request":
                return ProtocolError(CLOSE_POLICY, "unauthenticated")
            return PeerAuthRequested(message.auth_request.token, message.auth_request.sdk_version)
        match which:
            case "auth_request":
                return ProtocolError(CLOSE_POLICY, "already authenticated")
            case "peer_media_event":
                return PeerMediaEvent(message.peer_media_event)
            case "rtc_stats_report":
                return StatsReport(message.rtc_stats_report.data)
            case "media_event":
                return None
        return ProtocolError(CLOSE_POLICY, f"clients may not send {which}")

    def accept_auth(self, room_type: RoomType) -> bytes:
        self.authenticated = True
        authenticated = PM.Authenticated(room_type=_ROOM_TYPES.get(room_type, PM.ROOM_TYPE_CONFERENCE))
        return bytes(PM(authenticated=authenticated).SerializeToString())
