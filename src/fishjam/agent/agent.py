"""The agent socket: receive room audio and images, publish audio tracks."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from google.protobuf.message import DecodeError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from fishjam._proto import agent_notifications_pb2
from fishjam._proto.notifications import shared_pb2
from fishjam.agent._playout import PlayoutState
from fishjam.agent.errors import AgentAuthError
from fishjam.events import TrackEncoding
from fishjam.utils import http_to_ws

AgentRequest = agent_notifications_pb2.AgentRequest
AgentResponse = agent_notifications_pb2.AgentResponse

IncomingTrackData = AgentResponse.TrackData
"""Audio from a room peer: ``peer_id``, ``track`` (``id``/``type``/``metadata``) and ``data``."""
IncomingTrackImage = AgentResponse.TrackImage
"""A frame captured on request: ``track_id``, ``content_type`` and ``data``."""
IncomingPlayoutEvent = AgentResponse.PlayoutEvent
"""shoal's extension, only on ``connect(playout_events=True)``: ``track_id``, ``kind``
(``KIND_STARTED``/``KIND_PROGRESS``/``KIND_FINISHED``/``KIND_INTERRUPTED``), ``queued_ms``,
``played_ms``, ``dropped_ms`` and ``chunks_received`` (docs/protocol-extensions.md)."""
IncomingVoiceActivity = AgentResponse.VoiceActivity
"""shoal's extension, only on ``connect(vad_events=True)``: a participant's audio track the agent
hears changed between speech and silence: ``peer_id``, ``track_id``, ``speech``."""
IncomingAgentMessage: TypeAlias = IncomingTrackData | IncomingTrackImage | IncomingPlayoutEvent | IncomingVoiceActivity

_SOCKET_PATH = "/socket/agent/websocket"
_PCM_SAMPLE_RATES = (16000, 24000)
# Opus carries its own clock, so any of its native rates is a sensible declaration.
_OPUS_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
_CHANNEL_COUNTS = (1, 2)


@dataclass
class OutgoingAudioTrackOptions:
    """How the audio an agent publishes is encoded.

    ``TRACK_ENCODING_UNSPECIFIED`` means raw 16-bit little-endian PCM, like PCM16. PCM
    tracks run at 16 or 24 kHz; ``channels`` is 1 (mono) or 2 (stereo). ``metadata`` is
    sent as the track's JSON metadata and must therefore be JSON-encodable.
    """

    encoding: TrackEncoding = TrackEncoding.TRACK_ENCODING_UNSPECIFIED
    sample_rate: Literal[16000, 24000, 48000] | int = 16000
    channels: Literal[1, 2] | int = 1
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Checked here so a bad track fails where it is described, not deep in a session.
        try:
            self.encoding = TrackEncoding(self.encoding)
        except ValueError:
            raise ValueError(f"unsupported track encoding: {self.encoding!r}") from None
        opus = self.encoding == TrackEncoding.TRACK_ENCODING_OPUS
        rates = _OPUS_SAMPLE_RATES if opus else _PCM_SAMPLE_RATES
        if isinstance(self.sample_rate, bool) or self.sample_rate not in rates:
            raise ValueError(
                f"unsupported sample rate {self.sample_rate!r} for {'Opus' if opus else 'PCM'}; "
                f"use one of {', '.join(map(str, rates))}"
            )
        if isinstance(self.channels, bool) or self.channels not in _CHANNEL_COUNTS:
            raise ValueError(f"unsupported channel count {self.channels!r}; use 1 or 2")
        try:
            json.dumps(self.metadata)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"track metadata must be JSON-encodable: {exc}") from None


class OutgoingTrack:
    """An audio track the agent publishes into its room; made by :meth:`AgentSession.add_track`."""

    def __init__(self, id: str, session: AgentSession, options: OutgoingAudioTrackOptions) -> None:
        self.id = id
        self.session = session
        self.options = options
        pcm = options.encoding != TrackEncoding.TRACK_ENCODING_OPUS
        rate = int(options.sample_rate) * 2 * int(options.channels) if pcm else None
        self._playout = PlayoutState(rate, session.playout_events)

    def __repr__(self) -> str:
        return f"OutgoingTrack(id={self.id!r}, options={self.options!r})"

    async def send_chunk(self, data: bytes) -> None:
        """Queue audio for playout; the server paces it in real time, so send as fast as you like."""
        await self.session._send(AgentRequest(track_data=AgentRequest.TrackData(track_id=self.id, data=data)))
        self._playout.sent(data)

    async def interrupt(self) -> None:
        """Drop audio that was sent but not yet played; later chunks play normally."""
        await self.session._send(AgentRequest(interrupt_track=AgentRequest.InterruptTrack(track_id=self.id)))
        self._playout.interrupted()

    async def remove(self) -> None:
        """End the track once its queued audio has played out.

        Call :meth:`interrupt` first to stop immediately. (Not in the official SDK.)
        """
        await self.session._send(AgentRequest(remove_track=AgentRequest.RemoveTrack(track_id=self.id)))

    @property
    def queued_duration(self) -> float:
        """Seconds of audio sent on this track that have not played yet. (Not in the official SDK.)

        From the server's playout events when the session has them (shoal,
        ``connect(playout_events=True)``), else estimated from real-time pacing.
        """
        return self._playout.queued

    async def wait_for_playout(self) -> None:
        """Return once everything sent so far has played, or was dropped by an interrupt.

        With playout events this follows the server's reports, which :meth:`AgentSession.receive`
        reads: keep a receive loop running. Without them it waits for the local estimate.
        (Not in the official SDK.)
        """
        await self._playout.wait()


class AgentSession:
    """An authenticated agent connection, yielded by :meth:`Agent.connect`."""

    def __init__(
        self, agent: Agent, websocket: ClientConnection, playout_events: bool = False, vad_events: bool = False
    ) -> None:
        self.agent = agent
        self._ws = websocket
        self.playout_events = playout_events
        """The server sends playout events (shoal, when asked for with ``connect(playout_events=True)``)."""
        self.vad_events = vad_events
        """The server sends voice activity (shoal, when asked for with ``connect(vad_events=True)``)."""
        self._tracks: dict[str, OutgoingTrack] = {}

    async def receive(self) -> AsyncIterator[IncomingAgentMessage]:
        """Iterate over audio and images from the server until the socket closes normally.

        On a session opened with ``playout_events=True`` (shoal), playout events are yielded
        too, after updating their track's :attr:`OutgoingTrack.queued_duration`; with
        ``vad_events=True``, participants' voice activity. Other messages
        are skipped; an abnormal close raises :class:`websockets.exceptions.ConnectionClosedError`.
        """
        while True:
            try:
                frame = await self._ws.recv(decode=False)
            except ConnectionClosedOK:
                return
            response = AgentResponse()
            response.ParseFromString(frame)
            which = response.WhichOneof("content")
            if which == "track_data":
                yield response.track_data
            elif which == "track_image":
                yield response.track_image
            elif which == "playout_event" and self.playout_events:
                event = response.playout_event
                track = self._tracks.get(event.track_id)
                if track is not None:
                    track._playout.report(event)
                yield event
            elif which == "voice_activity" and self.vad_events:
                yield response.voice_activity

    async def add_track(self, options: OutgoingAudioTrackOptions) -> OutgoingTrack:
        """Publish a new audio track and return the handle used to feed it."""
        track_id = uuid.uuid4().hex
        track = shared_pb2.Track(
            id=track_id,
            type=shared_pb2.TRACK_TYPE_AUDIO,
            metadata=json.dumps(options.metadata),
        )
        codec = AgentRequest.AddTrack.CodecParameters(
            encoding=options.encoding,
            sample_rate=int(options.sample_rate),
            channels=int(options.channels),
        )
        await self._send(AgentRequest(add_track=AgentRequest.AddTrack(track=track, codec_params=codec)))
        outgoing = OutgoingTrack(id=track_id, session=self, options=options)
        self._tracks[track_id] = outgoing
        return outgoing

    async def capture_image(self, track_id: str) -> None:
        """Ask for a still of a video track; it arrives later through :meth:`receive`."""
        await self._send(AgentRequest(capture_image=AgentRequest.CaptureImage(track_id=track_id)))

    async def disconnect(self) -> None:
        """Close the connection (for sessions used outside ``async with``)."""
        await self._ws.close()

    async def _send(self, message: Any) -> None:
        await self._ws.send(message.SerializeToString())


class Agent:
    """An agent peer of a room; usually obtained from :meth:`FishjamClient.create_agent`."""

    def __init__(self, id: str, room_id: str, token: str, fishjam_url: str) -> None:
        """``fishjam_url`` is the base the ``/socket/agent/websocket`` path is appended to."""
        self.id = id
        self.room_id = room_id
        self._fishjam_url = fishjam_url
        self._socket_url = http_to_ws(f"{fishjam_url.rstrip('/')}{_SOCKET_PATH}")
        self._token = token

    @asynccontextmanager
    async def connect(self, playout_events: bool = False, vad_events: bool = False) -> AsyncIterator[AgentSession]:
        """Open and authenticate the agent socket; the session closes when the block exits.

        ``playout_events`` and ``vad_events`` ask the server for shoal's extensions
        (docs/protocol-extensions.md); a server without them ignores the request, and the
        session then estimates playout locally and yields no voice activity.
        Raises :class:`~fishjam.agent.AgentAuthError` when the server rejects the token.
        """
        asked = [name for name, wanted in (("playout_events", playout_events), ("vad_events", vad_events)) if wanted]
        url = self._socket_url + ("?" + "&".join(f"{name}=true" for name in asked) if asked else "")
        async with connect(url) as websocket:
            granted = await self._authenticate(websocket)
            yield AgentSession(
                self, websocket,
                playout_events=playout_events and granted.playout_events,
                vad_events=vad_events and granted.vad_events,
            )

    async def _authenticate(self, websocket: ClientConnection) -> AgentResponse.Authenticated:
        """Authenticate; returns the ``Authenticated`` reply (its extension flags say what was granted)."""
        request = AgentRequest(auth_request=AgentRequest.AuthRequest(token=self._token))
        try:
            await websocket.send(request.SerializeToString())
            # Success is signalled by any reply; a rejected token closes the socket.
            reply = await websocket.recv(decode=False)
        except ConnectionClosed as exc:
            raise AgentAuthError(websocket.close_reason or "") from exc
        response = AgentResponse()
        try:
            response.ParseFromString(reply)
        except DecodeError:  # any reply meant success; an unreadable one just promises nothing
            pass
        return response.authenticated
