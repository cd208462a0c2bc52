"""Server side of the peer socket (``/socket/peer/websocket``), without I/O.

Authentication is ``PeerMessage{auth_request}`` → ``PeerMessage{authenticated}``; after
that every client frame is a media event (``peer_media_event``) or a stats report. This
module turns frames into typed events and builds the server's media events as wire
bytes; the WebRTC endpoint decides what to send when.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from shoal.domain.model import RoomType
from shoal.protocol.base import CLOSE_INVALID_DATA, CLOSE_POLICY, ProtocolError, parse
from shoal.protocol.limits import MetadataLimits, check_metadata_text
from shoal.protocol.pb import media_peer_pb, media_server_pb, peer_pb

PM = peer_pb.PeerMessage
ClientEvent = media_peer_pb.MediaEvent
ServerEvent = media_server_pb.MediaEvent

_ROOM_TYPES = {
    RoomType.AUDIO_ONLY: PM.ROOM_TYPE_AUDIO_ONLY,
    RoomType.LIVESTREAM: PM.ROOM_TYPE_LIVESTREAM,
    RoomType.AUDIO_ONLY_LIVESTREAM: PM.ROOM_TYPE_LIVESTREAM,
}

ENDPOINT_TYPE_WEBRTC = "exwebrtc"
ENDPOINT_TYPE_AGENT = "agent"


# client → server ------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerAuthRequested:
    token: str
    sdk_version: str


@dataclass(frozen=True)
class Connect:
    metadata_json: str


@dataclass(frozen=True)
class Disconnect:
    pass


@dataclass(frozen=True)
class UpdateEndpointMetadata:
    metadata_json: str


@dataclass(frozen=True)
class UpdateTrackMetadata:
    track_id: str
    metadata_json: str


@dataclass(frozen=True)
class RenegotiateTracks:
    pass


@dataclass(frozen=True)
class Candidate:
    candidate: str
    sdp_m_line_index: int
    sdp_mid: str
    username_fragment: str


@dataclass(frozen=True)
class SdpOffer:
    sdp: str
    track_id_to_metadata_json: Mapping[str, str] = field(default_factory=dict)
    mid_to_track_id: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UnmuteTrack:
    """The client resumed sending a track it had muted with ``replaceTrack(null)``."""

    track_id: str


@dataclass(frozen=True)
class Ignored:
    """A valid event this server does not act on (simulcast variants, bitrates)."""

    name: str


@dataclass(frozen=True)
class StatsReport:
    data: str


MediaEvent = (
    Connect | Disconnect | UpdateEndpointMetadata | UpdateTrackMetadata | RenegotiateTracks | Candidate | SdpOffer
    | UnmuteTrack | Ignored
)
PeerEvent = PeerAuthRequested | MediaEvent | StatsReport

_IGNORED = {"track_bitrates", "enable_track_variant", "disable_track_variant", "set_target_track_variant"}


def _ignore(cause: str, message: str) -> None:
    pass


class PeerProtocol:
    """``limits`` bound every metadata a participant sends; ``report(cause, message)`` hears each refusal."""

    def __init__(self, limits: MetadataLimits | None = None, report: Callable[[str, str], None] = _ignore) -> None:
        self.authenticated = False
        self._limits = limits or MetadataLimits()
        self._report = report

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
                event = _media_event(message.peer_media_event)
                return self._check_metadata(event) if not isinstance(event, ProtocolError) else event
            case "rtc_stats_report":
                return StatsReport(message.rtc_stats_report.data)
            case "media_event":
                return None
        return ProtocolError(CLOSE_POLICY, f"clients may not send {which}")

    def _check_metadata(self, event: MediaEvent) -> MediaEvent | ProtocolError:
        """Refuse metadata over a limit (1008) or not JSON (1007) before anything is stored."""
        match event:
            case Connect(text):
                texts: Iterable[tuple[str, str]] = [("connect", text)]
            case UpdateEndpointMetadata(text):
                texts = [("update_endpoint_metadata", text)]
            case UpdateTrackMetadata(_, text):
                texts = [("update_track_metadata", text)]
            case SdpOffer():
                texts = (("sdp_offer", text) for text in event.track_id_to_metadata_json.values())
            case _:
                return event
        for what, text in texts:
            refusal = check_metadata_text(text, self._limits)
            if refusal is None:
                continue
            if refusal.cause == "not_json":
                return ProtocolError(CLOSE_INVALID_DATA, f"{what}: {refusal.reason}")
            self._report(f"metadata.{refusal.cause}", f"participant {what} refused: {refusal.reason}")
            return ProtocolError(CLOSE_POLICY, f"{what}: {refusal.reason}")
        return event

    def accept_auth(self, room_type: RoomType) -> bytes:
        self.authenticated = True
        authenticated = PM.Authenticated(room_type=_ROOM_TYPES.get(room_type, PM.ROOM_TYPE_CONFERENCE))
        return bytes(PM(authenticated=authenticated).SerializeToString())


def _media_event(event: ClientEvent) -> MediaEvent | ProtocolError:
    which = event.WhichOneof("content")
    match which:
        case "connect":
            return Connect(event.connect.metadata_json)
        case "disconnect":
            return Disconnect()
        case "update_endpoint_metadata":
            return UpdateEndpointMetadata(event.update_endpoint_metadata.metadata_json)
        case "update_track_metadata":
            body = event.update_track_metadata
            return UpdateTrackMetadata(body.track_id, body.metadata_json)
        case "renegotiate_tracks":
            return RenegotiateTracks()
        case "unmute_track":
            return UnmuteTrack(event.unmute_track.track_id)
        case "candidate":
            c = event.candidate
            return Candidate(c.candidate, c.sdp_m_line_index, c.sdp_mid, c.username_fragment)
        case "sdp_offer":
            offer = event.sdp_offer
            if "" in offer.mid_to_track_id or "" in offer.mid_to_track_id.values():
                return ProtocolError(CLOSE_INVALID_DATA, "sdp_offer maps an empty mid or track id")
            return SdpOffer(offer.sdp, dict(offer.track_id_to_metadata_json), dict(offer.mid_to_track_id))
        case None:
            return ProtocolError(CLOSE_INVALID_DATA, "peer_media_event carries no event")
    if which in _IGNORED:
        return Ignored(which)
    return ProtocolError(CLOSE_INVALID_DATA, f"unknown media event {which}")


# server → client ------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointView:
    """What a client is told about another endpoint (or itself, in ``connected``)."""

    endpoint_id: str
    endpoint_type: str
    metadata_json: str
    tracks: Mapping[str, str] = field(default_factory=dict)
    """Track id → track metadata JSON."""


def _wrap(event: ServerEvent) -> bytes:
    return bytes(PM(server_media_event=event).SerializeToString())


def _tracks(tracks: Mapping[str, str]) -> dict[str, ServerEvent.Track]:
    return {track_id: ServerEvent.Track(metadata_json=meta) for track_id, meta in tracks.items()}


@dataclass(frozen=True)
class IceServerView:
    """One entry of ``connected.ice_servers``: a STUN/TURN server the client may use."""

    urls: tuple[str, ...]
    username: str = ""
    credential: str = ""


def connected(endpoint_id: str, endpoints: Iterable[EndpointView], ice_servers: Iterable[IceServerView] = ()) -> bytes:
    body = ServerEvent.Connected(endpoint_id=endpoint_id)
    for server in ice_servers:
        body.ice_servers.append(
            ServerEvent.IceServer(urls=list(server.urls), username=server.username, credential=server.credential)
        )
    for view in endpoints:
        body.endpoint_id_to_endpoint[view.endpoint_id].CopyFrom(
            ServerEvent.Endpoint(
                endpoint_type=view.endpoint_type,
                metadata_json=view.metadata_json,
                track_id_to_track=_tracks(view.tracks),
            )
        )
    return _wrap(ServerEvent(connected=body))


def endpoint_added(endpoint_id: str, metadata_json: str) -> bytes:
    return _wrap(ServerEvent(endpoint_added=ServerEvent.EndpointAdded(endpoint_id=endpoint_id, metadata_json=metadata_json)))


def endpoint_removed(endpoint_id: str) -> bytes:
    return _wrap(ServerEvent(endpoint_removed=ServerEvent.EndpointRemoved(endpoint_id=endpoint_id)))


def endpoint_updated(endpoint_id: str, metadata_json: str) -> bytes:
    body = ServerEvent.EndpointUpdated(endpoint_id=endpoint_id, metadata_json=metadata_json)
    return _wrap(ServerEvent(endpoint_updated=body))


def tracks_added(endpoint_id: str, tracks: Mapping[str, str]) -> bytes:
    body = ServerEvent.TracksAdded(endpoint_id=endpoint_id, track_id_to_track=_tracks(tracks))
    return _wrap(ServerEvent(tracks_added=body))


def tracks_removed(endpoint_id: str, track_ids: Iterable[str]) -> bytes:
    body = ServerEvent.TracksRemoved(endpoint_id=endpoint_id, track_ids=list(track_ids))
    return _wrap(ServerEvent(tracks_removed=body))


def track_updated(endpoint_id: str, track_id: str, metadata_json: str) -> bytes:
    body = ServerEvent.TrackUpdated(endpoint_id=endpoint_id, track_id=track_id, metadata_json=metadata_json)
    return _wrap(ServerEvent(track_updated=body))


def offer_data(audio: int, video: int) -> bytes:
    body = ServerEvent.OfferData(tracks_types=ServerEvent.OfferData.TrackTypes(audio=audio, video=video))
    return _wrap(ServerEvent(offer_data=body))


def sdp_answer(sdp: str, mid_to_track_id: Mapping[str, str]) -> bytes:
    return _wrap(ServerEvent(sdp_answer=ServerEvent.SdpAnswer(sdp=sdp, mid_to_track_id=dict(mid_to_track_id))))


def error(message: str) -> bytes:
    return _wrap(ServerEvent(error=ServerEvent.Error(message=message)))


def vad_notification(track_id: str, speech: bool) -> bytes:
    """Voice activity changed on a track the peer receives (the ts-client's ``voiceActivityChanged``)."""
    status = ServerEvent.VadNotification.STATUS_SPEECH if speech else ServerEvent.VadNotification.STATUS_SILENCE
    return _wrap(ServerEvent(vad_notification=ServerEvent.VadNotification(track_id=track_id, status=status)))
