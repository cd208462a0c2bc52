"""A WebRTC peer that joins a shoal (or Fishjam) room the way the browser SDK does, using aiortc.

It speaks the peer signaling of ``@fishjam-cloud/ts-client`` 0.25.1 (see
``peer-signaling.md``): protobuf ``PeerMessage`` frames on ``<url>/socket/peer/websocket``,
the client is always the SDP offerer, the server asks for offers with ``offer_data``, local
track operations are serialized behind a renegotiation lock, and ICE candidates are trickled.
It exists so that tests, benchmarks and agent developers can exercise a server without a
browser::

    from shoal.testing import ToneSource, WebRTCPeer

    async with WebRTCPeer.join(server.ws_url, peer_token, metadata={"name": "alice"}) as peer:
        track_id = await peer.publish_audio(ToneSource(440))
        remote = await peer.wait_for_remote_track(endpoint_id=agent_id, timeout=10)
        await remote.recording.wait_for_seconds(1.0, timeout=10)
        samples = remote.recording.samples()  # int16, mono, 48 kHz

``await WebRTCPeer.join(...)`` works too; then call ``leave()`` and ``close()`` yourself.
Every remote track is read as soon as it arrives (audio is kept in a bounded recording,
video as counts and the frame indexes a ``VideoSource`` drew, see ``RemoteTrack.video``),
so nothing piles up in aiortc's unbounded receive queues. ``drop_sent_rtp``,
``drop_received_rtp`` and ``rtp_stats`` instrument the RTP (see ``shoal.testing.rtp``).

Deliberate differences from the browser: no reconnection (a closed socket ends the peer),
no simulcast or data channels, no mute via ``replaceTrack``, and operations that the browser
would leave pending forever (a malformed or failed answer) fail with an exception instead.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import math
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, NamedTuple

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
from google.protobuf.json_format import MessageToDict
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from fishjam._proto import peer_notifications_pb2 as peer_msg_pb
from fishjam._proto.media_events import shared_pb2
from fishjam._proto.media_events.peer import peer_pb2
from fishjam._proto.media_events.server import server_pb2
from shoal import __version__, seam
from shoal.testing.rtp import (
    Kind,
    RtpStats,
    RtpTap,
    SeqSelect,
    install_rtp_tap,
    route_announced_ssrcs,
    send_raw,
)
from shoal.testing.video import VideoRecording

logger = logging.getLogger(__name__)

PeerMessage = peer_msg_pb.PeerMessage
ClientEvent = peer_pb2.MediaEvent
ServerEvent = server_pb2.MediaEvent

SDK_VERSION = f"python-shoal-{__version__}"
SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz, the packetization every WebRTC stack uses for Opus
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
STATS_INTERVAL_S = 10.0  # ts-client STATISTICS_INTERVAL
MAX_FRAME_BYTES = 16 * 1024 * 1024  # an SDP with hundreds of m-lines stays far below this
INBOX_SIZE = 1024  # server media events waiting to be handled; a full inbox stops reading the socket
MAX_EVENTS = 10_000  # entries kept in WebRTCPeer.events
MAX_PENDING_CANDIDATES = 256  # server candidates held until the answer is applied; a few are normal
LATE_RESET_S = 0.1  # a source more than 100 ms behind its clock restarts pacing instead of bursting

FrameHook = Callable[[int, float], None]
"""Called as ``hook(frame_index, time.monotonic())`` for every frame (or packet) a source produces."""

PeerState = Literal["new", "authenticating", "joining", "connected", "left", "removed", "failed", "closed"]


# --------------------------------------------------------------------------------------------
# Errors


class PeerError(Exception):
    """Base class of the errors raised by :class:`WebRTCPeer`."""


class PeerAuthError(PeerError):
    """The server closed the socket before ``authenticated``; ``reason`` is the close reason."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason or f"socket closed before authentication (code {code})")
        self.reason = reason
        self.code = code


class PeerClosedError(PeerError):
    """The socket or the media session ended while an operation was waiting for it."""


class PeerProtocolError(PeerError):
    """The server sent something the browser client would reject (it would throw)."""


# --------------------------------------------------------------------------------------------
# SDP and signaling helpers (pure)


def socket_url(ws_url: str) -> str:
    """``<ws_url>/socket/peer/websocket``, built like ts-client ``getUrl`` (http(s) becomes ws(s))."""
    if ws_url.startswith("http://") or ws_url.startswith("https://"):
        ws_url = "ws" + ws_url[4:]
    return ws_url + ("" if ws_url.endswith("/") else "/") + "socket/peer/websocket"


@dataclass(frozen=True)
class IceCandidateInfo:
    """One ``a=candidate`` line of an SDP, with what a browser puts in ``RTCIceCandidate``."""

    candidate: str  # "candidate:..." (without "a=")
    sdp_mid: str
    sdp_m_line_index: int
    username_fragment: str


def split_candidates(sdp: str) -> tuple[str, list[IceCandidateInfo]]:
    """The SDP as a browser sends it before gathering, and the candidates that were in it.

    aiortc gathers inside ``setLocalDescription`` and embeds the candidates; a browser sends its
    offer at once, with no candidates, port 9 and address 0.0.0.0, and trickles them afterwards.
    """
    eol = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(eol)
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    session_ufrag = _attribute(sections[0], "ice-ufrag") or ""
    out: list[str] = []
    candidates: list[IceCandidateInfo] = []
    for index, section in enumerate(sections):
        mid = _attribute(section, "mid") or ""
        ufrag = _attribute(section, "ice-ufrag") or session_ufrag
        for line in section:
            if line.startswith("a=candidate:"):
                candidates.append(IceCandidateInfo(line[2:], mid, index - 1, ufrag))
            elif line == "a=end-of-candidates":
                continue
            elif index > 0 and line.startswith("m="):
                parts = line.split(" ")
                out.append(" ".join([parts[0], "9", *parts[2:]]))
            elif index > 0 and line.startswith("c="):
                out.append("c=IN IP4 0.0.0.0")
            else:
                out.append(line)
    return eol.join(out), candidates


def strip_end_of_candidates(sdp: str) -> str:
    """Drop ``a=end-of-candidates``: browsers never signal it (the spec's §3.2 #6)."""
    eol = "\r\n" if "\r\n" in sdp else "\n"
    return eol.join(line for line in sdp.split(eol) if line != "a=end-of-candidates")


def _attribute(section: Sequence[str], name: str) -> str | None:
    prefix = f"a={name}:"
    return next((line[len(prefix) :] for line in section if line.startswith(prefix)), None)


def sdp_offer_event(
    sdp: str, track_metadata: Mapping[str, Any], mid_to_track_id: Mapping[str, str]
) -> ClientEvent:
    """The ``sdp_offer`` media event, with the maps built as ts-client ``Local.createSdpOfferEvent`` does.

    ``track_metadata`` holds every live local track (None = no metadata, entry omitted);
    ``mid_to_track_id`` only the client's own send m-lines.
    """
    offer = ClientEvent.SdpOffer(sdp=sdp)
    for track_id, metadata in track_metadata.items():
        if metadata is not None:
            offer.track_id_to_metadata_json[track_id] = _dumps(metadata)
        offer.track_id_to_bitrates[track_id].SetInParent()  # 0.25.1 sends empty TrackBitrates
    offer.mid_to_track_id.update(mid_to_track_id)
    return ClientEvent(sdp_offer=offer)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _loads(text: str) -> Any:
    """Metadata JSON as the browser reads it: ``""`` is undefined (None), anything else must parse."""
    return None if text == "" else json.loads(text)


# --------------------------------------------------------------------------------------------
# What the peer receives


class Recording:
    """Received audio as mono int16 at 48 kHz, bounded to the last ``max_seconds``.

    ``frames`` counts every frame received; ``dropped_frames`` those discarded from the front
    to respect the bound. ``arrivals`` are the ``time.monotonic()`` arrival times of the frames
    still kept (video frames are counted here too, without samples; ``RemoteTrack.video`` has more).
    """

    MAX_FRAMES_PER_SECOND = 100  # bounds the frame count for video, whose frames carry no samples

    def __init__(self, max_seconds: float = 120.0, rate: int = SAMPLE_RATE) -> None:
        self.rate = rate
        self.max_seconds = max_seconds
        self._max_samples = int(max_seconds * rate)
        self._max_frames = max(1, math.ceil(max_seconds * self.MAX_FRAMES_PER_SECOND))
        self._chunks: deque[np.ndarray] = deque()
        self._arrivals: deque[float] = deque()
        self._kept_samples = 0
        self.frames = 0
        self.dropped_frames = 0
        self.received_samples = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def append(self, samples: np.ndarray, arrival: float) -> None:
        """Add one frame (int16 mono; empty for a video frame) that arrived at ``arrival``."""
        self._chunks.append(samples)
        self._arrivals.append(arrival)
        self._kept_samples += len(samples)
        self.frames += 1
        self.received_samples += len(samples)
        while self._chunks and (
            self._kept_samples > self._max_samples or len(self._chunks) > self._max_frames
        ):
            self._kept_samples -= len(self._chunks.popleft())
            self._arrivals.popleft()
            self.dropped_frames += 1
        if self._waiters:
            still: list[tuple[int, asyncio.Future[None]]] = []
            for target, fut in self._waiters:
                if fut.done():
                    continue
                if self.received_samples >= target:
                    fut.set_result(None)
                else:
                    still.append((target, fut))
            self._waiters = still

    def samples(self) -> np.ndarray:
        """The kept audio, oldest first."""
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(list(self._chunks))

    @property
    def duration_s(self) -> float:
        """Seconds of audio kept."""
        return self._kept_samples / self.rate

    @property
    def received_s(self) -> float:
        """Seconds of audio received in total, including what was dropped."""
        return self.received_samples / self.rate

    @property
    def arrivals(self) -> list[float]:
        return list(self._arrivals)

    def timed_frames(self) -> list[tuple[float, np.ndarray]]:
        """The kept frames with their arrival times, oldest first (to see when a sound began or ended)."""
        return list(zip(self._arrivals, self._chunks, strict=True))

    async def wait_for_seconds(self, seconds: float, timeout: float = 10.0) -> None:
        """Wait until ``seconds`` of audio have been received in total; TimeoutError otherwise."""
        target = math.ceil(seconds * self.rate)
        if self.received_samples >= target:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, fut))
        await asyncio.wait_for(fut, timeout)


@dataclass(eq=False)
class RemoteTrack:
    """A track announced by the server; ``ready`` once its media has started arriving.

    Audio goes to ``recording``; video frames are counted in both, and ``video`` keeps their
    sizes and the frame indexes a :class:`~shoal.testing.VideoSource` drew into them.
    """

    track_id: str
    endpoint_id: str
    metadata: Any
    recording: Recording
    kind: str | None = None  # known when the media arrives (the signaling does not carry it)
    mid: str | None = None
    ready: bool = False
    removed: bool = False
    vad: Literal["speech", "silence"] | None = None
    first_frame_at: float | None = None
    video: VideoRecording = field(default_factory=VideoRecording)


@dataclass(eq=False)
class RemoteEndpoint:
    """Another endpoint of the room; ``metadata`` is the wrapped ``{"peer": …, "server": …}``."""

    endpoint_id: str
    metadata: Any
    endpoint_type: str = ""
    track_ids: set[str] = field(default_factory=set)


@dataclass(eq=False)
class LocalTrack:
    """A track this peer publishes. ``status`` follows ts-client's negotiation status (R6)."""

    track_id: str
    source: MediaStreamTrack
    metadata: Any
    transceiver: RTCRtpTransceiver | None = None
    status: Literal["awaiting", "offered", "done"] = "awaiting"
    metadata_pending: bool = False

    @property
    def mid(self) -> str | None:
        return self.transceiver.mid if self.transceiver is not None else None


class PeerEvent(NamedTuple):
    """A server media event as received: ``details`` is the event body as a dict (proto field names)."""

    seq: int
    time: float
    name: str
    details: dict[str, Any]


def audio_to_mono48k(frame: av.AudioFrame, resampler: av.AudioResampler | None) -> tuple[np.ndarray, Any]:
    """Decoded audio as int16 mono 48 kHz; returns the samples and the resampler to reuse.

    Opus frames from aiortc are s16 stereo at 48 kHz, downmixed here by averaging; anything
    else goes through a PyAV resampler.
    """
    channels = len(frame.layout.channels)
    if frame.format.name == "s16" and frame.sample_rate == SAMPLE_RATE:
        data = frame.to_ndarray().reshape(-1, channels)
        if channels == 1:
            return data.reshape(-1).astype(np.int16), resampler
        return (data.astype(np.int32).sum(axis=1) // channels).astype(np.int16), resampler
    if resampler is None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    out = resampler.resample(frame)
    if not out:
        return np.zeros(0, dtype=np.int16), resampler
    return np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.int16), resampler


# --------------------------------------------------------------------------------------------
# The peer


@dataclass
class _PendingOp:
    """A publish/unpublish waiting for the answer to an offer made after it started."""

    future: asyncio.Future[None]
    first_offer: int


class PeerJoin:
    """What :meth:`WebRTCPeer.join` returns: await it, or use it as ``async with``."""

    def __init__(self, peer: WebRTCPeer, timeout: float) -> None:
        self._peer = peer
        self._timeout = timeout

    def __await__(self) -> Generator[Any, None, WebRTCPeer]:
        return self._peer._join(self._timeout).__await__()

    async def __aenter__(self) -> WebRTCPeer:
        return await self._peer._join(self._timeout)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._peer.__aexit__(exc_type, exc, tb)


class WebRTCPeer:
    """One browser-like participant of a room (ts-client 0.25.1 semantics, on aiortc).

    Create it with :meth:`join`. Room view: ``endpoint_id``, ``self_metadata`` (the wrapped
    ``{"peer", "server"}`` from ``connected``), ``room_type``, ``remote_endpoints``,
    ``remote_tracks``, ``local_tracks``, ``pc`` (None until the first ``offer_data``).

    ``state`` goes ``new`` → ``authenticating`` → ``joining`` → ``connected``, then ``left``
    (:meth:`leave`), ``removed`` (``endpoint_removed`` for this peer) or ``failed`` (an
    ``error`` event), and ``closed`` once the socket is closed. Server events that arrive
    before ``connected`` or after the media session ended are recorded but not handled.

    Diagnostics: ``events`` (every server media event received, in order), ``protocol_errors``
    (what the browser would throw on), ``protocol_warnings`` (spec violations the browser
    tolerates), ``server_errors`` (``error`` events), ``close_code``/``close_reason``,
    ``offers_sent``/``answers_received``, and ``unmapped_frames`` (media on a mid that maps to
    no announced track). Tests without a server can feed events to :meth:`handle_server_event`.
    """

    def __init__(
        self,
        ws_url: str,
        token: str,
        *,
        metadata: Any = None,
        trickle: bool = True,
        send_stats: bool = True,
        max_recording_s: float = 120.0,
        sdk_version: str = SDK_VERSION,
    ) -> None:
        self.url = socket_url(ws_url)
        self.metadata: Any = {} if metadata is None else metadata
        self.trickle = trickle
        self.send_stats = send_stats
        self.max_recording_s = max_recording_s
        self.sdk_version = sdk_version
        self._token = token

        self.state: PeerState = "new"
        self.room_type: int = PeerMessage.ROOM_TYPE_UNSPECIFIED
        self.endpoint_id: str | None = None
        self.self_metadata: Any = None
        self.ice_servers: list[RTCIceServer] = []
        self.remote_endpoints: dict[str, RemoteEndpoint] = {}
        self.remote_tracks: dict[str, RemoteTrack] = {}
        self.local_tracks: dict[str, LocalTrack] = {}
        self.events: deque[PeerEvent] = deque(maxlen=MAX_EVENTS)
        self.protocol_errors: deque[str] = deque(maxlen=1000)
        self.protocol_warnings: deque[str] = deque(maxlen=1000)
        self.server_errors: list[str] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.offers_sent = 0
        self.answers_received = 0
        self.unmapped_frames = 0
        self.pc: RTCPeerConnection | None = None

        self._ws: ClientConnection | None = None
        self._send_frame: Callable[[bytes], Awaitable[None]] | None = None
        self._inbox: asyncio.Queue[ServerEvent | None] = asyncio.Queue(maxsize=INBOX_SIZE)
        self._reader: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._stats: asyncio.Task[None] | None = None
        self._media_readers: set[asyncio.Task[None]] = set()
        self._joined: asyncio.Future[None] | None = None
        self._authenticated = False
        self._commands = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self._op: _PendingOp | None = None
        self._remote_mids: dict[str, str] = {}
        self._remote_description_set = False
        self._pending_candidates: list[RTCIceCandidate] = []
        self._candidates_sent = False
        self._changed = asyncio.Event()
        self._event_seq = 0
        self._closing = False
        self._rtp_taps: dict[str, RtpTap] = {}

    # ---- lifecycle ---------------------------------------------------------------------

    @classmethod
    def join(
        cls,
        ws_url: str,
        token: str,
        *,
        metadata: Any = None,
        trickle: bool = True,
        send_stats: bool = True,
        max_recording_s: float = 120.0,
        timeout: float = 10.0,
        sdk_version: str = SDK_VERSION,
    ) -> PeerJoin:
        """Connect, authenticate and join; resolves on ``connected``.

        Args:
            ws_url: the server URL, e.g. ``ws://127.0.0.1:5002`` (``/socket/peer/websocket`` is appended).
            token: the peer token from the add-peer REST call.
            metadata: peer metadata sent in ``connect`` (None sends ``{}``, as react-client does).
            trickle: send ICE candidates as ``candidate`` events after the first offer (browser
                behaviour) instead of leaving them in the SDP.
            send_stats: send ``rtc_stats_report`` every 10 s.
            max_recording_s: bound of each remote track's recording.
            timeout: for the whole join.
            sdk_version: sent in ``auth_request`` (browsers send ``web-<version>``).

        Raises:
            PeerAuthError: the server closed the socket before ``authenticated``.
            PeerClosedError: it closed the socket after that but before ``connected``.
            TimeoutError: no ``connected`` in time.
        """
        peer = cls(
            ws_url,
            token,
            metadata=metadata,
            trickle=trickle,
            send_stats=send_stats,
            max_recording_s=max_recording_s,
            sdk_version=sdk_version,
        )
        return PeerJoin(peer, timeout)

    async def _join(self, timeout: float) -> WebRTCPeer:
        if self.state != "new":
            raise PeerError("a WebRTCPeer joins only once")
        self.state = "authenticating"
        self._joined = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                # Browsers answer the server's pings but send none of their own.
                self._ws = await connect(self.url, max_size=MAX_FRAME_BYTES, ping_interval=None)
                self._send_frame = self._ws.send
                self._reader = asyncio.create_task(self._read_loop(), name=f"peer-reader {self.url}")
                self._dispatcher = asyncio.create_task(self._dispatch_loop(), name=f"peer-events {self.url}")
                auth = PeerMessage.AuthRequest(token=self._token, sdk_version=self.sdk_version)
                try:
                    await self._send_message(PeerMessage(auth_request=auth))
                except ConnectionClosed:
                    pass  # the reader reports the close reason through _joined
                await asyncio.shield(self._joined)
        except BaseException:
            await self.close()
            raise
        logger.info("joined as %s (%d other endpoints)", self.endpoint_id, len(self.remote_endpoints))
        return self

    async def __aenter__(self) -> WebRTCPeer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.leave()
        finally:
            await self.close()

    async def leave(self) -> None:
        """Send ``disconnect`` and close the peer connection (ts-client ``leave()``); the socket stays open."""
        if self.state == "connected":
            self.state = "left"
            try:
                await self._send_media_event(ClientEvent(disconnect=ClientEvent.Disconnect()))
            except (ConnectionClosed, PeerClosedError):
                pass
        await self._end_media_session(PeerClosedError("left the room"))

    async def close(self) -> None:
        """Close the socket and the peer connection without ``disconnect`` (ts-client ``disconnect()``)."""
        if self._closing:
            return
        self._closing = True
        if self._stats is not None:
            self._stats.cancel()
            await _finish(self._stats, 1)
        if self._ws is not None:
            try:
                await asyncio.wait_for(self._ws.close(), 5)
            except (TimeoutError, OSError):
                logger.warning("socket did not close cleanly")
        if self._reader is not None:
            await _finish(self._reader, 5)
        if self._dispatcher is not None:  # it drains what was received, then ends on the reader's None
            await _finish(self._dispatcher, 5)
        await self._end_media_session(PeerClosedError("peer closed"))
        self.state = "closed"
        self._notify()

    async def _end_media_session(self, reason: PeerError) -> None:
        """Close the RTCPeerConnection (ts-client ``cleanUp``), fail the pending operation."""
        self._fail_op(reason)
        pc, self.pc = self.pc, None
        if pc is not None:
            await pc.close()
        for task in list(self._media_readers):
            task.cancel()
        for task in list(self._media_readers):
            await _finish(task, 2)
        self._notify()

    # ---- public operations ---------------------------------------------------------------

    async def publish_audio(
        self,
        source: MediaStreamTrack,
        metadata: Any = None,
        *,
        timeout: float | None = 30.0,
        track_id: str | None = None,
    ) -> str:
        """Publish an audio track; returns its id once the server's answer has been applied.

        ``metadata`` defaults to ``{"type": "microphone", "paused": False}`` as react-client sends.
        """
        return await self._publish_kind("audio", "microphone", source, metadata, timeout, track_id)

    async def publish_video(
        self,
        source: MediaStreamTrack,
        metadata: Any = None,
        *,
        timeout: float | None = 30.0,
        track_id: str | None = None,
    ) -> str:
        """Publish a video track (e.g. a ``VideoSource``); returns its id once the answer is applied.

        ``metadata`` defaults to ``{"type": "camera", "paused": False}`` as react-client sends.
        """
        return await self._publish_kind("video", "camera", source, metadata, timeout, track_id)

    async def _publish_kind(
        self,
        kind: str,
        device: str,
        source: MediaStreamTrack,
        metadata: Any,
        timeout: float | None,
        track_id: str | None,
    ) -> str:
        if source.kind != kind:
            raise ValueError(f"publish_{kind} needs {'an' if kind == 'audio' else 'a'} {kind} track, not {source.kind!r}")
        if metadata is None:
            metadata = {"type": device, "paused": False}
        return await self.publish(source, metadata, timeout=timeout, track_id=track_id)

    async def publish(
        self,
        source: MediaStreamTrack,
        metadata: Any = None,
        *,
        timeout: float | None = 30.0,
        track_id: str | None = None,
    ) -> str:
        """Publish any track (ts-client ``addTrack``): renegotiate, resolve after the answer.

        ``track_id`` replaces the ``<endpoint id>:<uuid>`` ts-client makes up, so tests can reuse
        an id that is taken elsewhere (isolation tests); ts-client itself never does.
        """
        if source.kind == "video" and self.room_type == PeerMessage.ROOM_TYPE_AUDIO_ONLY:
            raise PeerError("video tracks are not allowed in an audio-only room")  # ts-client TrackTypeError
        if any(local.source is source for local in self.local_tracks.values()):
            raise ValueError("this source is already published")  # aiortc allows one sender per track
        async with self._commands:
            self._require_connected()
            await self._wait_idle(timeout)
            assert self.endpoint_id is not None
            if track_id is None:
                track_id = f"{self.endpoint_id}:{uuid.uuid4()}"
            elif track_id in self.local_tracks:
                raise ValueError(f"track id {track_id!r} is already published by this peer")
            self.local_tracks[track_id] = LocalTrack(track_id, source, metadata)
            logger.info("publishing %s track %s", source.kind, track_id)
            await self._renegotiate(timeout)
        return track_id

    async def unpublish(self, track_id: str, *, timeout: float | None = 30.0) -> None:
        """Stop publishing (ts-client ``removeTrack``): the m-line goes inactive in the next offer."""
        async with self._commands:
            self._require_connected()
            await self._wait_idle(timeout)
            local = self.local_tracks.pop(track_id, None)
            if local is None:
                raise KeyError(f"no local track {track_id!r}")
            if local.transceiver is not None:
                # aiortc has no removeTrack; this is what the browser's does to the transceiver.
                local.transceiver.sender.replaceTrack(None)
                local.transceiver.direction = "inactive"
            logger.info("unpublishing track %s", track_id)
            await self._renegotiate(timeout)

    async def update_metadata(self, metadata: Any) -> None:
        """Replace this peer's metadata (``update_endpoint_metadata``)."""
        self.metadata = metadata
        body = ClientEvent.UpdateEndpointMetadata(metadata_json=_dumps(metadata))
        await self._send_media_event(ClientEvent(update_endpoint_metadata=body))

    async def update_track_metadata(self, track_id: str, metadata: Any) -> None:
        """Replace a local track's metadata; deferred until its negotiation is done, as ts-client does (R6)."""
        local = self.local_tracks.get(track_id)
        if local is None:
            raise KeyError(f"no local track {track_id!r}")
        local.metadata = metadata
        if local.status != "done":
            local.metadata_pending = True
            return
        await self._send_track_metadata(local)

    # ---- RTP instruments (shoal.testing.rtp) --------------------------------------------

    def drop_sent_rtp(self, kind: Kind, select: SeqSelect | None) -> None:
        """Drop the first transmission of each outgoing ``kind`` RTP packet with ``select(seq)`` True.

        Dropped before SRTP, so the server never gets it; retransmissions (RTX, or a resend of a
        dropped number) pass. ``None`` stops dropping. Works before or after media starts.
        """
        self.rtp_tap(kind).drop_sent = select

    def drop_received_rtp(self, kind: Kind, select: SeqSelect | None) -> None:
        """Drop the first arrival of each incoming ``kind`` media packet with ``select(seq)`` True (RTX passes)."""
        self.rtp_tap(kind).drop_received = select

    async def send_raw_media(self, datagrams: list[bytes]) -> None:
        """Send datagrams as they are where media goes (no SRTP): what a forger or a broken network would."""
        if self.pc is None:
            raise RuntimeError("not connected")
        await send_raw(self.pc, datagrams)

    def rtp_stats(self, kind: Kind) -> RtpStats:
        """RTP counters for ``kind``: sent, dropped, NACKs and keyframe requests, RTX, received numbers."""
        return self.rtp_tap(kind).stats

    def rtp_tap(self, kind: Kind) -> RtpTap:
        """The instruments for ``kind``; created on first use and kept across peer connections."""
        tap = self._rtp_taps.get(kind)
        if tap is None:
            tap = self._rtp_taps[kind] = RtpTap(kind)
            if self.pc is not None:
                install_rtp_tap(self.pc, tap)
        return tap

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``condition()`` holds (TimeoutError otherwise).

        It is re-checked after every server event, socket or connection state change, and when
        a remote track's media starts; not on every received frame (see ``Recording``).
        """
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                if condition():
                    return
                await changed.wait()

    async def wait_for_remote_track(
        self,
        predicate: Callable[[RemoteTrack], bool] | None = None,
        *,
        endpoint_id: str | None = None,
        timeout: float = 10.0,
        ready: bool = True,
    ) -> RemoteTrack:
        """The first remote track that matches, once announced and (by default) its media flows."""
        found: list[RemoteTrack] = []

        def match() -> bool:
            for track in self.remote_tracks.values():
                if endpoint_id is not None and track.endpoint_id != endpoint_id:
                    continue
                if predicate is not None and not predicate(track):
                    continue
                if ready and not track.ready:
                    continue
                found.append(track)
                return True
            return False

        await self.wait_until(match, timeout)
        return found[0]

    async def wait_for_event(
        self,
        name: str,
        predicate: Callable[[PeerEvent], bool] | None = None,
        *,
        since: int = 0,
        timeout: float = 10.0,
    ) -> PeerEvent:
        """The first recorded server event called ``name`` with ``seq >= since`` that matches."""
        found: list[PeerEvent] = []

        def match() -> bool:
            for event in self.events:
                if event.seq >= since and event.name == name and (predicate is None or predicate(event)):
                    found.append(event)
                    return True
            return False

        await self.wait_until(match, timeout)
        return found[0]

    @property
    def disconnected(self) -> bool:
        """True once the media session is over (left, removed, failed or closed)."""
        return self.state in ("left", "removed", "failed", "closed")

    @property
    def next_event_seq(self) -> int:
        """Pass as ``since`` to :meth:`wait_for_event` to wait only for events after now."""
        return self._event_seq

    # ---- socket ------------------------------------------------------------------------

    async def _send_message(self, message: peer_msg_pb.PeerMessage) -> None:
        if self._send_frame is None:
            raise PeerClosedError("not connected")
        await self._send_frame(message.SerializeToString())

    async def _send_media_event(self, event: peer_pb2.MediaEvent) -> None:
        await self._send_message(PeerMessage(peer_media_event=event))

    async def _read_loop(self) -> None:
        assert self._ws is not None
        try:
            while True:
                data = await self._ws.recv()
                if isinstance(data, str):
                    self._protocol_error("text frame received (a browser decodes it as an empty message)")
                    continue
                message = PeerMessage()
                try:
                    message.ParseFromString(data)
                except Exception:
                    self._protocol_error("Received invalid control message")
                    continue
                await self._on_message(message)
        except ConnectionClosed:
            pass
        finally:
            self._on_socket_closed()
            await self._inbox.put(None)

    async def _on_message(self, message: peer_msg_pb.PeerMessage) -> None:
        which = message.WhichOneof("content")
        if which == "authenticated":
            self._authenticated = True
            self.room_type = message.authenticated.room_type
            deprecation = message.authenticated.sdk_deprecation
            if deprecation.status == PeerMessage.SdkDeprecation.STATUS_DEPRECATED:
                logger.warning("SDK deprecated: %s", deprecation.message)
            elif deprecation.status == PeerMessage.SdkDeprecation.STATUS_UNSUPPORTED:
                logger.error("SDK unsupported: %s", deprecation.message)
            self.state = "joining"
            body = ClientEvent.Connect(metadata_json=_dumps(self.metadata))
            await self._send_media_event(ClientEvent(connect=body))
        elif which == "server_media_event":
            await self._inbox.put(message.server_media_event)
        elif which == "auth_request":
            logger.warning("server sent auth_request; ignored")
        else:
            logger.debug("ignored PeerMessage %s", which)

    def _on_socket_closed(self) -> None:
        ws = self._ws
        self.close_code = ws.close_code if ws is not None else None
        self.close_reason = (ws.close_reason if ws is not None else None) or ""
        self._send_frame = None
        if self._joined is not None and not self._joined.done():
            if not self._authenticated:
                self._joined.set_exception(PeerAuthError(self.close_reason, self.close_code))
            else:
                message = f"socket closed before connected ({self.close_code} {self.close_reason!r})"
                self._joined.set_exception(PeerClosedError(message))
            self._joined.exception()  # retrieved here too: nobody may be awaiting any more
        self._fail_op(PeerClosedError(f"socket closed ({self.close_code} {self.close_reason!r})"))
        if self._stats is not None:
            self._stats.cancel()
        logger.info("socket closed: %s %r", self.close_code, self.close_reason)
        self._notify()

    async def _dispatch_loop(self) -> None:
        """Handle server media events strictly one after another."""
        while True:
            event = await self._inbox.get()
            if event is None:
                break
            await self.handle_server_event(event)
        # The browser tears its peer connection down on an unexpected close (to reconnect).
        await self._end_media_session(PeerClosedError("socket closed"))
        if self.state != "closed":
            self.state = "closed"
        self._notify()

    async def _stats_loop(self) -> None:
        report = PeerMessage(rtc_stats_report=PeerMessage.RTCStatsReport(data="{}"))
        try:
            while True:
                await asyncio.sleep(STATS_INTERVAL_S)
                await self._send_message(report)
        except (ConnectionClosed, PeerClosedError):
            pass

    # ---- server media events -----------------------------------------------------------

    async def handle_server_event(self, event: server_pb2.MediaEvent) -> None:
        """Record and handle one server media event (the socket reader feeds them in order).

        Public so that tests can drive the peer without a server.
        """
        name = event.WhichOneof("content")
        if name is None:
            return
        body = getattr(event, name)
        details = MessageToDict(
            body, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        self.events.append(PeerEvent(self._event_seq, time.monotonic(), name, details))
        self._event_seq += 1
        try:
            if name != "connected" and (
                self.endpoint_id is None or self.state in ("left", "removed", "failed")
            ):
                logger.debug("dropped %s: no media session", name)  # R1
                return
            handler = getattr(self, f"_on_{name}", None)
            if handler is None:
                logger.debug("unhandled server event %s", name)
                return
            await handler(body)
        except (ConnectionClosed, PeerClosedError) as exc:
            logger.debug("%s not completed, the socket is closed: %s", name, exc)
        except PeerProtocolError as exc:
            self._protocol_error(f"{name}: {exc}")
        except Exception as exc:
            logger.exception("handling %s failed", name)
            self._protocol_error(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            self._notify()

    async def _on_connected(self, body: ServerEvent.Connected) -> None:
        if self.endpoint_id is not None:
            self._protocol_warning("second connected ignored")
            return
        if not body.endpoint_id:
            raise PeerProtocolError("connected without endpoint_id (the browser drops every later event)")
        self.endpoint_id = body.endpoint_id
        self.ice_servers = [
            RTCIceServer(urls=list(s.urls), username=s.username or None, credential=s.credential or None)
            for s in body.ice_servers
        ]
        for endpoint_id, endpoint in body.endpoint_id_to_endpoint.items():
            if endpoint_id == self.endpoint_id:
                self.self_metadata = _loads(endpoint.metadata_json)
                continue
            self._add_endpoint(endpoint_id, endpoint.metadata_json, endpoint.endpoint_type)
            self._add_tracks(endpoint_id, endpoint.track_id_to_track)
        if self.endpoint_id not in body.endpoint_id_to_endpoint:
            self._protocol_warning("connected lacks the peer's own entry (wrapped metadata)")
        self.state = "connected"
        if self.send_stats:
            self._stats = asyncio.create_task(self._stats_loop(), name=f"peer-stats {self.endpoint_id}")
        if self._joined is not None and not self._joined.done():
            self._joined.set_result(None)

    def _add_endpoint(self, endpoint_id: str, metadata_json: str, endpoint_type: str = "") -> None:
        if endpoint_id in self.remote_endpoints:
            self._protocol_warning(f"endpoint {endpoint_id} announced again")
        self.remote_endpoints[endpoint_id] = RemoteEndpoint(endpoint_id, _loads(metadata_json), endpoint_type)

    def _add_tracks(self, endpoint_id: str, tracks: Mapping[str, ServerEvent.Track]) -> None:
        endpoint = self.remote_endpoints[endpoint_id]
        for track_id, track in tracks.items():
            metadata = _loads(track.metadata_json)
            existing = self.remote_tracks.get(track_id)
            if existing is not None:  # Fishjam re-announces tracks listed in connected
                existing.metadata = metadata
            else:
                recording = Recording(self.max_recording_s)
                video = VideoRecording(self.max_recording_s)
                self.remote_tracks[track_id] = RemoteTrack(
                    track_id, endpoint_id, metadata, recording, video=video
                )
            endpoint.track_ids.add(track_id)

    async def _on_endpoint_added(self, body: ServerEvent.EndpointAdded) -> None:
        if body.endpoint_id != self.endpoint_id:
            self._add_endpoint(body.endpoint_id, body.metadata_json)

    async def _on_endpoint_removed(self, body: ServerEvent.EndpointRemoved) -> None:
        if body.endpoint_id == self.endpoint_id:
            logger.info("removed from the room by the server")
            self.state = "removed"
            await self._end_media_session(PeerClosedError("removed by the server"))
            return
        endpoint = self._endpoint(body.endpoint_id)
        for track_id in list(endpoint.track_ids):
            self._remove_track(track_id)
        del self.remote_endpoints[body.endpoint_id]

    async def _on_endpoint_updated(self, body: ServerEvent.EndpointUpdated) -> None:
        if body.endpoint_id != self.endpoint_id:
            self._endpoint(body.endpoint_id).metadata = _loads(body.metadata_json)

    async def _on_tracks_added(self, body: ServerEvent.TracksAdded) -> None:
        self._idle.clear()  # R4: set unconditionally, cleared only by sdp_answer
        if body.endpoint_id == self.endpoint_id:
            self._protocol_warning("tracks_added about the peer's own tracks (I6)")
            return
        self._endpoint(body.endpoint_id)
        self._add_tracks(body.endpoint_id, body.track_id_to_track)

    async def _on_tracks_removed(self, body: ServerEvent.TracksRemoved) -> None:
        if body.endpoint_id == self.endpoint_id:
            return
        for track_id in body.track_ids:
            if track_id not in self.remote_tracks:
                raise PeerProtocolError(f"unknown track {track_id}")
            self._remove_track(track_id)

    async def _on_track_updated(self, body: ServerEvent.TrackUpdated) -> None:
        if body.endpoint_id == self.endpoint_id:
            return
        self._endpoint(body.endpoint_id)
        self._remote_track(body.track_id).metadata = _loads(body.metadata_json)

    async def _on_vad_notification(self, body: ServerEvent.VadNotification) -> None:
        track = self._remote_track(body.track_id)
        if body.status == ServerEvent.VadNotification.STATUS_SPEECH:
            track.vad = "speech"
        elif body.status == ServerEvent.VadNotification.STATUS_SILENCE:
            track.vad = "silence"
        else:
            self._protocol_warning("vad_notification with STATUS_UNSPECIFIED")

    async def _on_track_variant_switched(self, body: ServerEvent.TrackVariantSwitched) -> None:
        self._remote_track(body.track_id)

    async def _on_track_variant_disabled(self, body: ServerEvent.TrackVariantDisabled) -> None:
        self._remote_track(body.track_id)

    async def _on_track_variant_enabled(self, body: ServerEvent.TrackVariantEnabled) -> None:
        self._remote_track(body.track_id)

    async def _on_error(self, body: ServerEvent.Error) -> None:
        logger.error("server error event: %s", body.message)
        self.server_errors.append(body.message)
        if self.state == "connected":
            self.state = "failed"
            try:
                await self._send_media_event(ClientEvent(disconnect=ClientEvent.Disconnect()))
            except (ConnectionClosed, PeerClosedError):
                pass
        await self._end_media_session(PeerClosedError(f"server error: {body.message}"))

    def _endpoint(self, endpoint_id: str) -> RemoteEndpoint:
        endpoint = self.remote_endpoints.get(endpoint_id)
        if endpoint is None:
            raise PeerProtocolError(f"Endpoint {endpoint_id} not found")
        return endpoint

    def _remote_track(self, track_id: str) -> RemoteTrack:
        track = self.remote_tracks.get(track_id)
        if track is None:
            raise PeerProtocolError(f"Track {track_id} not found")
        return track

    def _remove_track(self, track_id: str) -> None:
        track = self.remote_tracks.pop(track_id)
        track.removed = True
        endpoint = self.remote_endpoints.get(track.endpoint_id)
        if endpoint is not None:
            endpoint.track_ids.discard(track_id)

    # ---- negotiation -------------------------------------------------------------------

    async def _on_offer_data(self, body: ServerEvent.OfferData) -> None:
        pc = self._ensure_pc()
        for local in self.local_tracks.values():
            if local.transceiver is None:
                local.transceiver = pc.addTransceiver(local.source, direction="sendonly")
                # ts-client puts each track in its own MediaStream; aiortc shares one per connection.
                seam.set_stream_id(local.transceiver.sender, str(uuid.uuid4()))
        if body.HasField("tracks_types"):
            self._add_receive_slots(pc, body.tracks_types)
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)
        sdp = pc.localDescription.sdp
        candidates: list[IceCandidateInfo] = []
        if self.trickle and not self._candidates_sent:
            sdp, found = split_candidates(sdp)
            candidates = [c for c in found if c.sdp_m_line_index == 0]  # max-bundle: one transport
        elif self.trickle:
            sdp = strip_end_of_candidates(sdp)  # later offers carry the candidates, as Chrome's do
        metadata = {track_id: local.metadata for track_id, local in self.local_tracks.items()}
        mids = {local.mid: track_id for track_id, local in self.local_tracks.items() if local.mid is not None}
        for local in self.local_tracks.values():
            if local.status == "awaiting" and local.mid is not None:
                local.status = "offered"
        await self._send_media_event(sdp_offer_event(sdp, metadata, mids))
        self.offers_sent += 1
        logger.info(
            "sent offer %d: %d m-lines, own mids %s", self.offers_sent, len(pc.getTransceivers()), mids
        )
        for candidate in candidates:
            message = shared_pb2.Candidate(
                candidate=candidate.candidate,
                sdp_m_line_index=candidate.sdp_m_line_index,
                sdp_mid=candidate.sdp_mid,
                username_fragment=candidate.username_fragment,
            )
            await self._send_media_event(ClientEvent(candidate=message))
        if self.trickle and not self._candidates_sent:
            self._candidates_sent = True

    def _ensure_pc(self) -> RTCPeerConnection:
        """The peer connection, created at the first ``offer_data`` (R2) with the ``connected`` ICE servers."""
        if self.pc is None:
            config = RTCConfiguration(iceServers=self.ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            self.pc = RTCPeerConnection(config)
            self.pc.on("track", self._on_pc_track)
            for tap in self._rtp_taps.values():
                install_rtp_tap(self.pc, tap)
            pc = self.pc

            @pc.on("connectionstatechange")
            def _log_state() -> None:
                logger.info("peer connection %s: %s", self.endpoint_id, pc.connectionState)
                self._notify()

        return self.pc

    def _add_receive_slots(self, pc: RTCPeerConnection, types: ServerEvent.OfferData.TrackTypes) -> None:
        """Add recvonly transceivers up to the totals in ``offer_data`` (0.25.1 ``addTransceiversIfNeeded``)."""
        existing = Counter(t.kind for t in pc.getTransceivers() if t.direction == "recvonly")
        for kind, wanted in (("video", types.video), ("audio", types.audio)):
            missing = wanted - existing[kind]
            if missing < 0:
                self._protocol_warning(
                    f"offer_data asks for {wanted} {kind} slots, {existing[kind]} exist (0.25.1 throws RangeError)"
                )
                continue
            for _ in range(missing):
                pc.addTransceiver(kind, direction="recvonly")

    async def _on_sdp_answer(self, body: ServerEvent.SdpAnswer) -> None:
        self._idle.set()  # R4: the renegotiation lock is cleared by any answer
        self.answers_received += 1
        mid_map = dict(body.mid_to_track_id)
        if "" in mid_map:
            error = PeerProtocolError("sdp_answer maps an empty mid (TrackId is not defined)")
            self._fail_op(error)
            raise error
        for mid, track_id in mid_map.items():
            remote = self.remote_tracks.get(track_id)
            if remote is not None:
                remote.mid = mid
                self._remote_mids[mid] = track_id
            local = self.local_tracks.get(track_id)
            if local is not None and local.mid == mid:
                local.status = "done"
        if self.pc is None:
            error = PeerProtocolError("sdp_answer without a peer connection")
            self._fail_op(error)
            raise error
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body.sdp, type="answer"))
        except Exception as exc:
            error = PeerProtocolError(f"setRemoteDescription(answer) failed: {exc}")
            self._fail_op(error)
            raise error from exc
        self._remote_description_set = True
        route_announced_ssrcs(self.pc)  # as a browser routes: by the answer's SSRCs, RTX included
        logger.info("applied answer %d: mids %s", self.answers_received, mid_map)
        pending, self._pending_candidates = self._pending_candidates, []
        for candidate in pending:
            await self._add_candidate(candidate)
        for local in self.local_tracks.values():
            if local.status == "done" and local.metadata_pending:
                await self._send_track_metadata(local)
        if self._op is not None and self.answers_received >= self._op.first_offer:
            if not self._op.future.done():
                self._op.future.set_result(None)
            self._op = None

    async def _on_candidate(self, body: shared_pb2.Candidate) -> None:
        if self.pc is None:
            raise PeerProtocolError("candidate before the peer connection exists (dropped)")
        text = body.candidate.removeprefix("a=").removeprefix("candidate:")
        candidate = candidate_from_sdp(text)
        candidate.sdpMid = body.sdp_mid or None
        candidate.sdpMLineIndex = body.sdp_m_line_index
        if not self._remote_description_set:
            if len(self._pending_candidates) >= MAX_PENDING_CANDIDATES:
                raise PeerProtocolError("too many candidates before the first answer")
            self._pending_candidates.append(candidate)
        else:
            await self._add_candidate(candidate)

    async def _add_candidate(self, candidate: RTCIceCandidate) -> None:
        if self.pc is None:
            return
        try:
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:  # the browser catches and logs these
            logger.warning("addIceCandidate failed: %s", exc)

    async def _send_track_metadata(self, local: LocalTrack) -> None:
        local.metadata_pending = False
        metadata_json = "" if local.metadata is None else _dumps(local.metadata)
        body = ClientEvent.UpdateTrackMetadata(track_id=local.track_id, metadata_json=metadata_json)
        await self._send_media_event(ClientEvent(update_track_metadata=body))

    async def _renegotiate(self, timeout: float | None) -> None:
        """Lock, ask for ``offer_data``, and wait for the answer to an offer made from now on."""
        self._idle.clear()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._op = _PendingOp(future, self.offers_sent + 1)
        await self._send_media_event(ClientEvent(renegotiate_tracks=ClientEvent.RenegotiateTracks()))
        await asyncio.wait_for(future, timeout)

    async def _wait_idle(self, timeout: float | None) -> None:
        await asyncio.wait_for(self._idle.wait(), timeout)

    def _fail_op(self, error: PeerError) -> None:
        op, self._op = self._op, None
        if op is not None and not op.future.done():
            op.future.set_exception(error)
            op.future.exception()  # mark retrieved: the waiter may have timed out already

    def _require_connected(self) -> None:
        if self.state != "connected" or self._send_frame is None:
            raise PeerClosedError(f"peer is {self.state}")

    # ---- remote media ------------------------------------------------------------------

    def _on_pc_track(self, track: MediaStreamTrack) -> None:
        pc = self.pc
        if pc is None:
            return
        transceiver = next((t for t in pc.getTransceivers() if t.receiver.track is track), None)
        mid = transceiver.mid if transceiver is not None else None
        track_id = self._remote_mids.get(mid) if mid is not None else None
        if track_id is None or track_id not in self.remote_tracks:
            self._protocol_error(f"media on mid {mid} that no remote track maps to")
        else:
            self.remote_tracks[track_id].kind = track.kind
        logger.info("receiving %s on mid %s (track %s)", track.kind, mid, track_id)
        task = asyncio.create_task(
            self._read_media(mid, track), name=f"peer-media {self.endpoint_id} mid {mid}"
        )
        self._media_readers.add(task)
        task.add_done_callback(self._media_readers.discard)

    async def _read_media(self, mid: str | None, track: MediaStreamTrack) -> None:
        """Drain one receiver, recording frames for whichever remote track its mid maps to now."""
        resampler: Any = None
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            track_id = self._remote_mids.get(mid) if mid is not None else None
            remote = self.remote_tracks.get(track_id) if track_id is not None else None
            if remote is None:
                self.unmapped_frames += 1
                continue
            if isinstance(frame, av.AudioFrame):
                samples, resampler = audio_to_mono48k(frame, resampler)
            else:
                samples = np.zeros(0, dtype=np.int16)
                if isinstance(frame, av.VideoFrame):
                    remote.video.append(frame, now)
            remote.recording.append(samples, now)
            if not remote.ready:
                remote.ready = True
                remote.kind = track.kind
                remote.first_frame_at = now
                self._notify()

    # ---- bookkeeping -------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _protocol_error(self, message: str) -> None:
        logger.warning("protocol error: %s", message)
        self.protocol_errors.append(message)

    def _protocol_warning(self, message: str) -> None:
        logger.warning("protocol warning: %s", message)
        self.protocol_warnings.append(message)


async def _finish(task: asyncio.Task[None], timeout: float) -> None:
    """Wait for a task to end (cancelling it after ``timeout``), without raising its outcome."""
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        task.cancel()
        try:
            await task
        except BaseException:
            pass
    except BaseException:
        if not task.done():
            raise
