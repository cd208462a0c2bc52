"""Server side of the agent socket (``/socket/agent/websocket``), without I/O.

Frames are ``fishjam.AgentRequest`` in and ``fishjam.AgentResponse`` out, one message per
binary frame. The first message must be an ``AuthRequest``; anything malformed yields a
``ProtocolError`` naming the close code and a reason a developer can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from shoal.domain.model import TrackKind
from shoal.ids import is_uuid
from shoal.logtext import clip
from shoal.protocol.base import CLOSE_INVALID_DATA, CLOSE_POLICY, ProtocolError, parse
from shoal.protocol.limits import MetadataLimits, check_metadata_text
from shoal.protocol.pb import agent_pb, shared_pb

PCM_RATES = (16000, 24000, 48000)
"""Accepted pcm16 input rates: Fishjam's 16/24 kHz plus 48 kHz, which the JS SDK allows."""


@dataclass(frozen=True)
class AuthRequested:
    token: str


@dataclass(frozen=True)
class AddTrack:
    track_id: str
    metadata_json: str
    encoding: Literal["pcm16", "opus"]
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class RemoveTrack:
    track_id: str


@dataclass(frozen=True)
class TrackData:
    track_id: str
    data: bytes


@dataclass(frozen=True)
class InterruptTrack:
    track_id: str


@dataclass(frozen=True)
class CaptureImage:
    track_id: str


AgentEvent = AuthRequested | AddTrack | RemoveTrack | TrackData | InterruptTrack | CaptureImage


def _ignore(cause: str, message: str) -> None:
    pass


class AgentProtocol:
    """``limits`` bound the track metadata of ``AddTrack``; ``report(cause, message)`` hears each refusal."""

    def __init__(self, limits: MetadataLimits | None = None, report: Callable[[str, str], None] = _ignore) -> None:
        self.authenticated = False
        self._limits = limits or MetadataLimits()
        self._report = report

    def receive(self, frame: bytes | str) -> AgentEvent | ProtocolError:
        request = parse(agent_pb.AgentRequest, frame, "AgentRequest")
        if isinstance(request, ProtocolError):
            return request
        which = request.WhichOneof("content")
        if which is None:
            return ProtocolError(CLOSE_INVALID_DATA, "AgentRequest carries no message")
        if not self.authenticated:
            if which != "auth_request":
                return ProtocolError(CLOSE_POLICY, f"the first message must be an AuthRequest, got {which}")
            return AuthRequested(request.auth_request.token)
        match which:
            case "auth_request":
                return ProtocolError(CLOSE_POLICY, "already authenticated")
            case "add_track":
                return self._add_track(request.add_track)
            case "remove_track":
                return RemoveTrack(request.remove_track.track_id)
            case "track_data":
                return TrackData(request.track_data.track_id, request.track_data.data)
            case "interrupt_track":
                return InterruptTrack(request.interrupt_track.track_id)
            case "capture_image":
                return CaptureImage(request.capture_image.track_id)
        return ProtocolError(CLOSE_INVALID_DATA, f"unsupported AgentRequest member {which}")

    def accept_auth(self, playout_events: bool = False, vad_events: bool = False) -> bytes:
        """Mark the socket authenticated; returns the ``Authenticated`` frame to send.

        ``playout_events`` and ``vad_events`` (shoal's extensions) are set only for a socket
        that asked for them, so every other agent gets the plain ``0a 00``.
        """
        self.authenticated = True
        accepted = agent_pb.AgentResponse.Authenticated(playout_events=playout_events, vad_events=vad_events)
        return bytes(agent_pb.AgentResponse(authenticated=accepted).SerializeToString())

    def _add_track(self, msg: agent_pb.AgentRequest.AddTrack) -> AddTrack | ProtocolError:
        event = _add_track(msg)
        if isinstance(event, ProtocolError):
            return event
        # Invalid JSON is kept as a plain string (the first agent SDKs sent free text).
        refusal = check_metadata_text(event.metadata_json, self._limits, invalid_json_is_text=True)
        if refusal is not None:
            self._report(f"metadata.{refusal.cause}", f"agent AddTrack {clip(event.track_id)} refused: {refusal.reason}")
            return _bad(f"AddTrack: {refusal.reason}")
        return event


def _add_track(msg: agent_pb.AgentRequest.AddTrack) -> AddTrack | ProtocolError:
    track_id = msg.track.id
    if not is_uuid(track_id):
        return _bad(f"AddTrack: track id {track_id[:40]!r} is not a UUID")
    if msg.track.type == shared_pb.TRACK_TYPE_VIDEO:
        return _bad("AddTrack: agents can publish audio tracks only")
    params = msg.codec_params
    channels = params.channels or 1
    if channels not in (1, 2):
        return _bad(f"AddTrack: {channels} channels not supported (1 or 2)")
    if params.encoding in (shared_pb.TRACK_ENCODING_UNSPECIFIED, shared_pb.TRACK_ENCODING_PCM16):
        if params.sample_rate not in PCM_RATES:
            rates = ", ".join(str(rate) for rate in PCM_RATES)
            return _bad(f"AddTrack: pcm16 sample rate {params.sample_rate} not supported ({rates})")
        return AddTrack(track_id, msg.track.metadata, "pcm16", params.sample_rate, channels)
    if params.encoding == shared_pb.TRACK_ENCODING_OPUS:
        return AddTrack(track_id, msg.track.metadata, "opus", 48000, channels)
    return _bad(f"AddTrack: unknown encoding {params.encoding}")


def _bad(reason: str) -> ProtocolError:
    return ProtocolError(CLOSE_POLICY, reason)


class TrackDataWrap:
    """Builds the frame an agent receives for each chunk of one source track."""

    def __init__(self, peer_id: str, track_id: str, kind: TrackKind, metadata_json: str) -> None:
        track_type = shared_pb.TRACK_TYPE_AUDIO if kind is TrackKind.AUDIO else shared_pb.TRACK_TYPE_VIDEO
        self._track = shared_pb.Track(id=track_id, type=track_type, metadata=metadata_json)
        self._peer_id = peer_id

    def update_metadata(self, metadata_json: str) -> None:
        """Later frames carry the track's new metadata (a participant muted or renamed it)."""
        self._track = shared_pb.Track(id=self._track.id, type=self._track.type, metadata=metadata_json)

    def __call__(self, pcm: bytes) -> bytes:
        data = agent_pb.AgentResponse.TrackData(peer_id=self._peer_id, track=self._track, data=pcm)
        return bytes(agent_pb.AgentResponse(track_data=data).SerializeToString())


def track_image(track_id: str, content_type: str, data: bytes) -> bytes:
    """The ``TrackImage`` response to a ``CaptureImage`` request."""
    image = agent_pb.AgentResponse.TrackImage(track_id=track_id, content_type=content_type, data=data)
    return bytes(agent_pb.AgentResponse(track_image=image).SerializeToString())


def playout_event(
    track_id: str, kind: str, queued_s: float, played_s: float, dropped_s: float, chunks_received: int
) -> bytes:
    """A ``PlayoutEvent`` (shoal's extension, field 1001) for an agent that opted in.

    ``kind`` is ``started``, ``progress``, ``finished`` or ``interrupted``; durations are
    rounded to whole milliseconds.
    """
    event = agent_pb.AgentResponse.PlayoutEvent(
        track_id=track_id,
        kind=f"KIND_{kind.upper()}",  # the name of a Kind value
        queued_ms=round(queued_s * 1000),
        played_ms=round(played_s * 1000),
        dropped_ms=round(dropped_s * 1000),
        chunks_received=chunks_received,
    )
    return bytes(agent_pb.AgentResponse(playout_event=event).SerializeToString())


def voice_activity(peer_id: str, track_id: str, speech: bool) -> bytes:
    """A ``VoiceActivity`` (shoal's extension, field 1002) for an agent that opted in."""
    event = agent_pb.AgentResponse.VoiceActivity(peer_id=peer_id, track_id=track_id, speech=speech)
    return bytes(agent_pb.AgentResponse(voice_activity=event).SerializeToString())
