"""WebRTCEndpoint: one participant's media session — negotiation, inbound and outbound tracks.

The client is always the SDP offerer. The server asks for offers with ``offer_data`` and
keeps the invariants the official client depends on (peer-signaling.md §3.6):

* one negotiation in flight at a time; a ``renegotiate_tracks`` or a new track that
  arrives meanwhile is handled after the answer (I1, I8);
* ``offer_data`` counts of recvonly m-lines never decrease (I2);
* a new outbound track is announced (``tracks_added``), then counted (``offer_data``),
  then attached to a fresh recvonly m-line of the next offer (I3);
* the answer maps the client's own mids and every server-sent mid (I4), each server-sent
  m-line with its own stream id (I5).

Media is forwarded, not transcoded: every inbound track gets an ``RtpTap`` in its aiortc
receiver, and each other participant an ``RtpForwarder`` on its m-line that rewrites the
publisher's RTP for that connection. Audio is decoded once per track, and only while
agents listen; video is decoded only for image captures. Tracks an agent publishes reach
participants as Opus encoded once per track, through one ``PacketTrack`` per m-line.

One video codec per room (the room's ``videoCodec``): every video m-line is answered with
it alone, so packets can be forwarded as they are. Audio m-lines are answered with Opus
alone. In audio-only rooms video m-lines are answered ``inactive`` and never become tracks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.codecs import is_rtx
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription, candidate_from_sdp

from shoal import seam
from shoal.domain.manager import RoomManager
from shoal.domain.model import AUDIO_ONLY_ROOM_TYPES, Peer, PeerType, Track, TrackKind, VideoCodec
from shoal.endpoints.agent import parse_metadata
from shoal.endpoints.offer_errors import COULD_NOT_APPLY, offer_refusal, offer_structure_problem
from shoal.endpoints.routing import MediaRouter
from shoal.errors import ShoalError
from shoal.logtext import clip
from shoal.media.fanout import OpusOut, RtpOut, TrackFanout
from shoal.media.fast_audio import AudioFastPath, FastRoute
from shoal.media.forward import KeyframeRequester, RtpForwarder, RtpTap
from shoal.media.keyframes import keyframe_start
from shoal.media.opus import OPUS_RATE
from shoal.media.opus_in import InboundAudioStats, InlineOpusDecoder
from shoal.media.pcm import Samples
from shoal.media.rtc import PacketTrack, wait_ended
from shoal.media.snapshot import VideoSnapshots
from shoal.media.vad import TrackVoiceActivity
from shoal.net.admission import Stream
from shoal.net.gathering import PortRangeExhausted
from shoal.net.network import RtcNetwork
from shoal.protocol import peer as proto
from shoal.protocol.agent import TrackDataWrap
from shoal.protocol.base import CLOSE_INVALID_DATA, CLOSE_TRY_AGAIN_LATER, ProtocolError
from shoal.protocol.limits import loads_json
from shoal.signaling.session import INTERNAL_ERROR

log = logging.getLogger(__name__)

MAX_BUFFERED_CANDIDATES = 64

CODEC_NAMES = {VideoCodec.H264: "H264", VideoCodec.VP8: "VP8"}
VIDEO_JITTER_CAPACITY = 128
"""Packets aiortc's video jitter buffer holds while a capture decodes (aiortc: 512). A lost
packet that is never recovered stalls decoding until the buffer overflows; 128 packets
keeps that stall short."""


class Directory(Protocol):
    """The room's view of endpoints (see ``EndpointDirectory``)."""

    def visible(self, room_id: str, exclude: str) -> list[Peer]: ...

    def joined(self, endpoint: WebRTCEndpoint) -> None: ...


def parse_json_text(text: str) -> Any:
    """Client metadata: ``""`` means none; anything else must be JSON."""
    if not text:
        return None
    return loads_json(text)  # raises JSONDecodeError for anything that is not plain JSON


def endpoint_view(peer: Peer) -> proto.EndpointView:
    kind = proto.ENDPOINT_TYPE_AGENT if peer.type is PeerType.AGENT else proto.ENDPOINT_TYPE_WEBRTC
    return proto.EndpointView(peer.id, kind, peer.metadata_json)


@dataclass
class _Outbound:
    """A track this participant receives (from an agent or another participant)."""

    track: Track
    fanout: TrackFanout
    state: str = "pending"  # pending → announced → attached; or removed
    mid: str | None = None
    sender_track: PacketTrack | None = None
    forwarder: RtpForwarder | None = None
    transceiver: RTCRtpTransceiver | None = None

    def stop(self) -> None:
        if self.sender_track is not None:
            self.sender_track.stop()
        if self.forwarder is not None:
            self.forwarder.close()


_INBOUND_COUNTERS = ("packets_received", "audio_packets_lost", "audio_packets_late")


@dataclass
class _Inbound:
    """A track this participant publishes."""

    track_id: str
    mid: str
    kind: TrackKind
    reader: asyncio.Task[None] | None = None
    fanout: TrackFanout | None = None
    wrap: TrackDataWrap | None = None
    snapshots: VideoSnapshots | None = None
    tap: RtpTap | None = None
    audio: InboundAudioStats | None = None
    vad: TrackVoiceActivity | None = None


@dataclass
class _Negotiation:
    in_flight: bool = False
    queued: bool = False
    batching: bool = False
    requested: dict[TrackKind, int] = field(default_factory=lambda: {TrackKind.AUDIO: 0, TrackKind.VIDEO: 0})
    deadline: asyncio.TimerHandle | None = None


class WebRTCEndpoint:
    def __init__(
        self,
        peer: Peer,
        connection: int,
        manager: RoomManager,
        router: MediaRouter,
        send: Callable[[bytes], None],
        fail: Callable[[str], None],
        directory: Directory,
        negotiation_timeout_s: float,
        ice_connect_timeout_s: float,
        network: RtcNetwork | None = None,
        audio_max_delay_s: float | None = None,
    ) -> None:
        self.peer_id = peer.id
        self._audio_max_delay_s = audio_max_delay_s
        """Participants' audio later than this on the sender's clock is dropped for agents (None: never)."""
        self._network = network
        """Where media sockets go and which ICE servers the client gets; ``None``: aiortc's defaults."""
        self.room_id = peer.room_id
        self.connection = connection
        self._sink_key = f"{peer.id}#{connection}"
        """This session's name at fan-outs: a reconnecting peer's old session must not detach the new one."""
        self._manager = manager
        self._router = router
        self._send = send
        self._fail = fail
        self._directory = directory
        self._negotiation_timeout_s = negotiation_timeout_s
        self._ice_connect_timeout_s = ice_connect_timeout_s
        self.joined = False
        self.closed = False
        self._known: set[str] = set()
        self._pc: RTCPeerConnection | None = None
        self._remote_set = False
        self._remote_ice: tuple[str, str] | None = None  # (ice-ufrag, ice-pwd) of the first offer
        self.ice_restarts_ignored = 0
        self._ended_inbound: Counter[str] = Counter(dict.fromkeys(_INBOUND_COUNTERS, 0))
        """Counters of inbound tracks already removed (``summary``)."""
        self.tracks_published = 0
        self.srtp_refused = 0
        """Inbound packets of this peer that SRTP refused (``shoal_dropped_total{reason="srtp_refused"}``)."""
        self._admission: Stream | None = None
        """This peer's inbound media as the overload admission sees it (once connected)."""
        self._fast_audio: AudioFastPath | None = None
        """Takes this peer's agent-only audio in the datagram callback (once connected)."""
        self._candidates: list[proto.Candidate] = []
        self._negotiation = _Negotiation()
        self._outbound: dict[str, _Outbound] = {}
        self._used_mids: set[str] = set()
        self._own_mids: dict[str, str] = {}
        self._inbound: dict[str, _Inbound] = {}
        self._rejected_mids: set[str] = set()
        self._ice_deadline: asyncio.TimerHandle | None = None

    # client events ---------------------------------------------------------------------

    async def handle(self, event: proto.MediaEvent) -> ProtocolError | None:
        """Handle one client media event; a returned error closes the socket."""
        if self.closed:
            return None
        if not self.joined and not isinstance(event, proto.Connect):
            return ProtocolError(CLOSE_INVALID_DATA, f"{type(event).__name__} before connect")
        try:
            match event:
                case proto.Connect(metadata_json):
                    self._connect(metadata_json)
                case proto.Disconnect():
                    self._leave()
                case proto.UpdateEndpointMetadata(metadata_json):
                    self._manager.update_peer_metadata(self.room_id, self.peer_id, parse_json_text(metadata_json))
                case proto.UpdateTrackMetadata(track_id, metadata_json):
                    self._update_track_metadata(track_id, parse_json_text(metadata_json))
                case proto.RenegotiateTracks():
                    self._request_negotiation()
                case proto.UnmuteTrack(track_id):
                    self._unmuted(track_id)
                case proto.Candidate():
                    await self._add_candidate(event)
                case proto.SdpOffer():
                    return await self._answer(event)
                case proto.Ignored(name):
                    log.debug("peer %s: %s ignored", self.peer_id, name)
        except json.JSONDecodeError as exc:
            return ProtocolError(CLOSE_INVALID_DATA, f"{type(event).__name__}: metadata is not valid JSON: {exc}")
        return None

    def _connect(self, metadata_json: str) -> None:
        if self.joined:
            log.info("peer %s: repeated connect ignored", self.peer_id)
            return
        metadata = parse_json_text(metadata_json)
        self._manager.update_peer_metadata(self.room_id, self.peer_id, metadata if metadata is not None else {})
        me = self._manager.peer(self.room_id, self.peer_id)
        others = self._directory.visible(self.room_id, self.peer_id)
        self._known = {peer.id for peer in others}
        ice_servers = [
            proto.IceServerView(entry.urls, entry.username, entry.credential)
            for entry in (self._network.ice_servers_for(self.peer_id) if self._network is not None else [])
        ]
        self._send(proto.connected(self.peer_id, [endpoint_view(me), *(endpoint_view(p) for p in others)], ice_servers))
        self.joined = True
        self._directory.joined(self)
        log.info("peer %s joined the media session of room %s (%d other endpoints)", self.peer_id, self.room_id, len(others))
        self._router.add_receiver(self)

    def _update_track_metadata(self, track_id: str, metadata: Any) -> None:
        inbound = self._inbound.get(track_id)
        if inbound is None or not self._manager.update_track_metadata(self.room_id, self.peer_id, track_id, metadata):
            log.info("peer %s: metadata update for unknown track %s ignored", self.peer_id, track_id)
            return
        if inbound.wrap is not None:  # the same JSON text the notifications carry
            inbound.wrap.update_metadata(self._manager.peer(self.room_id, self.peer_id).tracks[track_id].metadata_json)

    def _unmuted(self, track_id: str) -> None:
        """Receivers need a keyframe to show a video track again after a mute."""
        inbound = self._inbound.get(track_id)
        if inbound is not None and inbound.fanout is not None:
            inbound.fanout.request_keyframe()

    def _leave(self) -> None:
        log.info("peer %s left the media session (disconnect)", self.peer_id)
        self._manager.disconnect(self.room_id, self.peer_id, self.connection)
        self.close()

    # endpoints of the room -------------------------------------------------------------

    def endpoint_added(self, peer: Peer) -> None:
        if self.joined and not self.closed and peer.id != self.peer_id and peer.id not in self._known:
            self._known.add(peer.id)
            self._send(proto.endpoint_added(peer.id, peer.metadata_json))

    def endpoint_removed(self, peer_id: str) -> None:
        if peer_id in self._known and not self.closed:
            self._known.discard(peer_id)
            self._send(proto.endpoint_removed(peer_id))

    def endpoint_updated(self, peer: Peer) -> None:
        if peer.id in self._known and not self.closed:
            self._send(proto.endpoint_updated(peer.id, peer.metadata_json))

    def track_updated(self, owner_id: str, track_id: str, metadata_json: str) -> None:
        outbound = self._outbound.get(track_id)
        if outbound is not None and outbound.state in ("announced", "attached") and not self.closed:
            self._send(proto.track_updated(owner_id, track_id, metadata_json))

    def kicked(self) -> None:
        """The peer was deleted: tell the client it was removed, so it does not reconnect."""
        if self.joined and not self.closed:
            self._send(proto.endpoint_removed(self.peer_id))

    def voice_activity(self, owner_id: str, track_id: str, speech: bool) -> None:
        """Tell the client, for a track it knows (the ts-client throws on an unknown one)."""
        outbound = self._outbound.get(track_id)
        if outbound is not None and outbound.state in ("announced", "attached") and not self.closed:
            self._router.tally.vad_events_sent += 1
            self._send(proto.vad_notification(track_id, speech))

    # outbound tracks (router receiver interface) ---------------------------------------

    def subscribe(self, track: Track, fanout: TrackFanout) -> None:
        if self.closed or track.id in self._outbound:
            return
        self._outbound[track.id] = _Outbound(track, fanout)
        if not self._negotiation.batching:
            # The router subscribes a joining participant to each track in turn: gather them
            # all into one offer_data instead of one negotiation per track.
            self._negotiation.batching = True
            asyncio.get_running_loop().call_soon(self._negotiate_batch)

    def _negotiate_batch(self) -> None:
        self._negotiation.batching = False
        if not self.closed:
            self._request_negotiation(only_if_pending=True)

    def unsubscribe(self, track_id: str, fanout: TrackFanout) -> None:
        outbound = self._outbound.pop(track_id, None)
        if outbound is None:
            return
        fanout.detach(self._sink_key)
        previous, outbound.state = outbound.state, "removed"
        outbound.stop()
        if outbound.transceiver is not None:
            outbound.transceiver.direction = "inactive"
        if previous in ("announced", "attached") and not self.closed:
            self._send(proto.tracks_removed(outbound.track.owner_id, [track_id]))

    # negotiation -----------------------------------------------------------------------

    def _request_negotiation(self, only_if_pending: bool = False) -> None:
        negotiation = self._negotiation
        if negotiation.in_flight:
            if not only_if_pending:
                negotiation.queued = True
            return
        if only_if_pending and not any(o.state == "pending" for o in self._outbound.values()):
            return
        self._start_negotiation()

    def _media_connecting(self) -> bool:
        """An answer was given and its ICE/DTLS setup is still running.

        aiortc starts the senders and receivers of a negotiation when DTLS connects; a second
        negotiation during that setup can leave its m-lines never started (or started with
        the offer's codec list). So the next ``offer_data`` waits until the media connection
        is up (bounded by ``--ice-connect-timeout``).
        """
        pc = self._pc
        return pc is not None and self._remote_set and pc.connectionState in ("new", "connecting")

    def _start_negotiation(self) -> None:
        """Announce pending tracks (grouped by owner), then ask for an offer that has room for them."""
        negotiation = self._negotiation
        if self._media_connecting():
            negotiation.queued = True  # started once the media connection is up
            return
        by_owner: dict[str, dict[str, str]] = {}
        for outbound in self._outbound.values():
            if outbound.state != "pending":
                continue
            owner = self._manager.find_peer(self.room_id, outbound.track.owner_id)
            if owner is not None:
                self.endpoint_added(owner)
            by_owner.setdefault(outbound.track.owner_id, {})[outbound.track.id] = outbound.track.metadata_json
            outbound.state = "announced"
            negotiation.requested[outbound.track.kind] += 1
        for owner_id, tracks in by_owner.items():
            self._send(proto.tracks_added(owner_id, tracks))
        negotiation.in_flight = True
        negotiation.queued = False
        self._send(proto.offer_data(negotiation.requested[TrackKind.AUDIO], negotiation.requested[TrackKind.VIDEO]))
        loop = asyncio.get_running_loop()
        negotiation.deadline = loop.call_later(self._negotiation_timeout_s, self._negotiation_timed_out)

    def _negotiation_timed_out(self) -> None:
        self._fail(f"negotiation timeout: no sdp_offer within {self._negotiation_timeout_s:g} s of offer_data")

    def _finish_negotiation(self) -> None:
        negotiation = self._negotiation
        negotiation.in_flight = False
        if negotiation.deadline is not None:
            negotiation.deadline.cancel()
            negotiation.deadline = None
        if negotiation.queued or any(o.state == "pending" for o in self._outbound.values()):
            self._start_negotiation()

    async def _answer(self, offer: proto.SdpOffer) -> ProtocolError | None:
        problem = sdp_syntax_problem(offer.sdp) or offer_structure_problem(offer.sdp)
        if problem is not None:
            return ProtocolError(CLOSE_INVALID_DATA, f"invalid SDP offer: {problem}")
        self._check_ice_restart(offer.sdp)
        pc = self._pc or self._create_peer_connection()
        try:
            narrowed, rejected = self._narrow_offer(offer.sdp)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=narrowed, type="offer"))
        except Exception as exc:  # aiortc raises ValueError, OperationError, AttributeError, ... for bad SDP
            reason = offer_refusal(exc)
            # The details stay here: aiortc's text means nothing to a client and tells it about our internals.
            log.warning("peer %s: SDP offer refused (%s): %s: %.200s", self.peer_id, reason, type(exc).__name__, exc,
                        exc_info=reason == COULD_NOT_APPLY)
            return ProtocolError(CLOSE_INVALID_DATA, f"invalid SDP offer: {reason}")
        self._reject_mlines(pc, rejected)  # before any other await: aiortc's connect task runs when we yield
        self._remote_set = True
        for candidate in self._candidates:
            await self._apply_candidate(candidate)
        self._candidates.clear()

        new_inbound, gone_inbound = self._reconcile_inbound(pc, offer)
        self._attach_announced(pc)
        try:
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except PortRangeExhausted as exc:  # the server's capacity, not the offer: our own words, safe to send
            return ProtocolError(CLOSE_TRY_AGAIN_LATER, f"WebRTC peer refused: {exc.strerror}")
        except Exception as exc:
            log.warning("peer %s: answering its SDP offer failed: %s: %.200s", self.peer_id, type(exc).__name__, exc,
                        exc_info=True)
            return ProtocolError(CLOSE_INVALID_DATA, "invalid SDP offer: it could not be answered")
        mapping = dict(self._own_mids)
        for outbound in self._outbound.values():
            if outbound.state == "attached" and outbound.mid is not None:
                mapping[outbound.mid] = outbound.track.id
        self._send(proto.sdp_answer(pc.localDescription.sdp, mapping))

        for track_id in gone_inbound:
            self._remove_inbound(track_id)
        for inbound, metadata_json in new_inbound:
            self._publish_inbound(pc, inbound, metadata_json)
        if self._ice_deadline is None and pc.connectionState != "connected":
            loop = asyncio.get_running_loop()
            self._ice_deadline = loop.call_later(self._ice_connect_timeout_s, self._ice_timed_out)
        self._finish_negotiation()
        return None

    def _check_ice_restart(self, sdp: str) -> None:
        """Say so when a client asks for an ICE restart: aiortc starts ICE once per connection.

        The offer is still answered and the current ICE session goes on (aiortc keeps its
        credentials), so a call whose path still works is not broken by the request. A client
        whose NAT moved it to a new address is followed without a restart (the rebinding
        support); one that really changed networks must reconnect the peer.
        """
        credentials = ice_credentials(sdp)
        if credentials is None:
            return
        if self._remote_ice is None:
            self._remote_ice = credentials
            return
        if credentials == self._remote_ice:
            return
        self.ice_restarts_ignored += 1
        if self.ice_restarts_ignored == 1:
            log.warning(
                "peer %s: its offer asks for an ICE restart (new ice-ufrag/ice-pwd); shoal does not "
                "restart ICE: the current ICE session continues; to move to another network the "
                "peer must reconnect", self.peer_id,
            )

    def _narrow_offer(self, offer_sdp: str) -> tuple[str, list[tuple[str, str, str]]]:
        """The offer cut down to Opus for audio and the room's codec for video, so RTP is forwarded as it is.

        Editing the offer (not aiortc's transceivers) makes aiortc negotiate and answer only
        those codecs. An m-line without the codec, or any video m-line in an audio-only room,
        is left as offered and returned as (mid, kind, why) to be answered ``inactive``.
        """
        config = self._manager.room(self.room_id).config
        keep: dict[int, list[int]] = {}
        rejected: list[tuple[str, str, str]] = []
        for index, media in enumerate(SessionDescription.parse(offer_sdp).media):
            mid = media.rtp.muxId
            if media.kind not in ("audio", "video") or not mid or mid in self._rejected_mids:
                continue
            if media.kind == "audio":
                name, why = "OPUS", "no Opus"
            elif config.room_type in AUDIO_ONLY_ROOM_TYPES:
                name, why = "", f"the room is {config.room_type.value}"
            else:
                name = CODEC_NAMES[config.video_codec]
                why = f"no {name} (the room's video codec)"
            codecs = only_codec(seam.common_codecs(media.kind, media.rtp.codecs), name) if name else []
            if codecs:
                keep[index] = [c.payloadType for c in codecs if c.payloadType is not None]
            else:
                rejected.append((mid, media.kind, why))
        return keep_payload_types(offer_sdp, keep), rejected

    def _reject_mlines(self, pc: RTCPeerConnection, rejected: list[tuple[str, str, str]]) -> None:
        by_mid = {t.mid: t for t in pc.getTransceivers() if t.mid is not None}
        for mid, kind, why in rejected:
            transceiver = by_mid.get(mid)
            if transceiver is None:
                continue
            self._rejected_mids.add(mid)
            transceiver.direction = "inactive"
            log.warning("peer %s: %s m-line %s rejected (answered inactive): %s", self.peer_id, kind, mid, why)

    def _reconcile_inbound(
        self, pc: RTCPeerConnection, offer: proto.SdpOffer
    ) -> tuple[list[tuple[_Inbound, str]], list[str]]:
        """Compare the offer's send m-lines with the tracks we know: which are new, which ended."""
        by_mid = {t.mid: t for t in pc.getTransceivers() if t.mid is not None}
        new: list[tuple[_Inbound, str]] = []
        live: dict[str, str] = {}
        for mid, track_id in offer.mid_to_track_id.items():
            transceiver = by_mid.get(mid)
            if transceiver is None or seam.offered_direction(transceiver) not in ("recvonly", "sendrecv"):
                continue  # not a sending m-line (removed tracks are inactive)
            if mid in self._rejected_mids:
                continue
            live[mid] = track_id
            if track_id not in self._inbound:
                kind = TrackKind.VIDEO if transceiver.kind == "video" else TrackKind.AUDIO
                new.append((_Inbound(track_id, mid, kind), offer.track_id_to_metadata_json.get(track_id, "")))
        gone = [track_id for track_id, inbound in self._inbound.items() if live.get(inbound.mid) != track_id]
        self._own_mids = live
        self._used_mids.update(live)
        return new, gone

    def _attach_announced(self, pc: RTCPeerConnection) -> None:
        """Give every announced outbound track a never-used recvonly m-line of its kind (I3)."""
        free = [
            t for t in pc.getTransceivers()
            if t.mid is not None and t.mid not in self._used_mids and seam.offered_direction(t) == "sendonly"
            and t.currentDirection is None and t.mid not in self._rejected_mids
        ]
        for outbound in self._outbound.values():
            if outbound.state != "announced":
                continue
            kind = "video" if outbound.track.kind is TrackKind.VIDEO else "audio"
            transceiver = next((t for t in free if t.kind == kind), None)
            if transceiver is None or transceiver.mid is None:
                log.warning("peer %s: the offer has no free %s m-line for track %s", self.peer_id, kind, outbound.track.id)
                continue
            free.remove(transceiver)
            name = f"{self.peer_id}<-{outbound.track.id}"
            if outbound.fanout.forwards_rtp:  # a participant's track: forward its RTP
                forwarder = RtpForwarder(transceiver.sender, name, outbound.fanout.request_keyframe, self._router.tally)
                forwarder.install()
                outbound.forwarder = forwarder
                outbound.fanout.attach(self._sink_key, RtpOut(), forwarder.put)
            else:  # an agent's track: Opus encoded once by its fan-out
                sender_track = PacketTrack(name)
                transceiver.sender.replaceTrack(sender_track)
                outbound.sender_track = sender_track
                outbound.fanout.attach(self._sink_key, OpusOut(), sender_track.put, self._not_paused)
            seam.set_stream_id(transceiver.sender, str(uuid.uuid4()))  # one MediaStream per track (I5)
            transceiver.direction = "sendonly"
            outbound.state, outbound.mid = "attached", transceiver.mid
            outbound.transceiver = transceiver
            self._used_mids.add(transceiver.mid)

    # inbound tracks --------------------------------------------------------------------

    def _publish_inbound(self, pc: RTCPeerConnection, inbound: _Inbound, metadata_json: str) -> None:
        transceiver = next((t for t in pc.getTransceivers() if t.mid == inbound.mid), None)
        remote = transceiver.receiver.track if transceiver is not None else None
        if transceiver is None or remote is None:
            log.warning("peer %s: no receiver for m-line %s (track %s)", self.peer_id, inbound.mid, inbound.track_id)
            return
        track = Track(inbound.track_id, self.peer_id, inbound.kind, parse_metadata(metadata_json))
        name = f"peer {self.peer_id} track {track.id}"
        receiver = transceiver.receiver
        tap: RtpTap
        if inbound.kind is TrackKind.AUDIO:
            inbound.wrap = TrackDataWrap(self.peer_id, track.id, track.kind, track.metadata_json)
            fanout = TrackFanout(OPUS_RATE, inbound.wrap, upstream=_NoKeyframes())
            stats = inbound.audio = InboundAudioStats()
            room_id, router = self.room_id, self._router
            vad = inbound.vad = TrackVoiceActivity(lambda speech: router.voice_activity(room_id, track.id, speech), time.monotonic)

            def forward(packet: Any) -> None:
                vad.packet(packet)
                fanout.deliver_rtp(packet)

            def decoded(frame: Samples, rate: int) -> None:
                vad.frame(frame)
                fanout.deliver(frame, rate)

            tap = RtpTap(
                forward,
                lambda: fanout.needs_pcm,
                lambda: InlineOpusDecoder(
                    decoded, stats, self._router.tally, self._audio_max_delay_s, rate=lambda: fanout.preferred_rate
                ),
                tally=self._router.tally,
            )
            tap.learn = self._fast_learner(receiver, fanout, tap)
        else:
            codec_name = CODEC_NAMES[self._manager.room(self.room_id).config.video_codec]
            requester = KeyframeRequester(receiver, lambda: tap.ssrc, tally=self._router.tally)  # the tap follows
            fanout = TrackFanout(OPUS_RATE, _no_wrap, upstream=requester)
            inbound.snapshots = fanout.snapshots = VideoSnapshots(name, fanout.request_keyframe)
            tap = RtpTap(
                fanout.deliver_rtp,
                inbound.snapshots.decode_wanted,
                lambda: JitterBuffer(capacity=VIDEO_JITTER_CAPACITY, is_video=True),
                lambda packet: keyframe_start(codec_name, packet.payload),
                tally=self._router.tally,
            )
        if not seam.install_tap(receiver, tap):
            log.error("%s: cannot forward: aiortc's receiver has no jitter buffer where expected", name)
            return
        if not self._router.publish(self.room_id, self.peer_id, track.id, fanout):
            log.warning("peer %s: track %r ignored: its id is already in use in this room", self.peer_id, track.id[:40])
            return
        try:
            self._manager.add_track(self.room_id, self.peer_id, track)
        except ShoalError as exc:
            log.warning("peer %s: track %r ignored: %s", self.peer_id, track.id[:40], exc.message[:200])
            self._router.unpublish(self.room_id, self.peer_id, track.id)  # only the one just made
            return
        inbound.fanout = fanout
        inbound.tap = tap
        self._inbound[track.id] = inbound
        self.tracks_published += 1
        inbound.reader = asyncio.get_running_loop().create_task(
            self._read(remote, inbound, name), name=f"read-{self.peer_id}-{track.id}"
        )
        inbound.reader.add_done_callback(self._reader_ended)

    def _fast_learner(self, receiver: RTCRtpReceiver, fanout: TrackFanout, tap: RtpTap) -> Callable[[Any], None]:
        """Called with each audio packet aiortc delivers: its stream, once learnt, skips aiortc's path."""

        def learn(packet: Any) -> None:
            fast = self._fast_audio
            if fast is None or fast.knows(packet.ssrc, tap):
                return
            statistics = seam.receiver_stream_statistics(receiver, packet.ssrc)
            fast.learn(packet.ssrc, FastRoute(packet.payload_type, tap.add_fast, statistics, lambda: fanout.forwarding, tap))

        return learn

    def _reader_ended(self, task: asyncio.Task[None]) -> None:
        """A media reader that raised is a bug: say so with the traceback and end the session (1011).

        Without this the track would just go silent, and the exception would surface, if at
        all, as "Task exception was never retrieved" when the task is collected.
        """
        if task.cancelled() or task.exception() is None or self.closed:
            return
        log.error("peer %s: %s failed; closing its session", self.peer_id, task.get_name(), exc_info=task.exception())
        self._fail(INTERNAL_ERROR)

    async def _read(self, remote: MediaStreamTrack, inbound: _Inbound, name: str) -> None:
        if inbound.snapshots is not None:
            frames = await inbound.snapshots.read(remote)
        elif inbound.audio is not None:
            await wait_ended(remote)  # frames are decoded and delivered as packets arrive (InlineOpusDecoder)
            audio = inbound.audio
            frames = audio.frames
            log.info("%s: %d late, %d lost, %d undecodable, %d stale audio packets",
                     name, audio.late, audio.lost, audio.malformed, audio.stale)
        else:
            return
        tap = inbound.tap
        if tap is None:
            log.info("%s: media ended after %d decoded frames", name, frames)
            return
        log.info(
            "%s: media ended after %d packets, %d decoded frames; %d SSRC changes, "
            "%d late packets of a replaced stream dropped",
            name, tap.packets, frames, tap.streams.changes, tap.streams.stale,
        )

    @staticmethod
    def _inbound_counters(inbound: _Inbound) -> dict[str, int]:
        """One inbound track's ``_INBOUND_COUNTERS``."""
        audio = inbound.audio
        return {
            "packets_received": inbound.tap.packets if inbound.tap is not None else 0,
            "audio_packets_lost": audio.lost if audio is not None else 0,
            "audio_packets_late": audio.late if audio is not None else 0,
        }

    def summary(self) -> dict[str, int]:
        """What this connection carried, over its whole life (its summary log line)."""
        totals = self._ended_inbound.copy()
        for inbound in self._inbound.values():
            totals.update(self._inbound_counters(inbound))
        return {
            "tracks_published": self.tracks_published,
            "tracks_received": sum(1 for o in self._outbound.values() if o.state == "attached"),
            **totals,
            "srtp_refused": self.srtp_refused,
        }

    def inbound_views(self) -> list[dict[str, Any]]:
        """The tracks this participant publishes, as the dashboard shows them."""
        room = self._manager.find_room(self.room_id)
        video_codec = room.config.video_codec.value if room is not None else "video"
        return [
            {
                "track_id": inbound.track_id, "kind": inbound.kind.value,
                "codec": video_codec if inbound.kind is TrackKind.VIDEO else "opus",
                "level_dbov": inbound.vad.level_dbov if inbound.vad is not None else None,
                "speech": inbound.vad.state.speech if inbound.vad is not None else None,
                "packets": inbound.tap.packets if inbound.tap is not None else 0,
            }
            for inbound in self._inbound.values()
        ]

    async def network_stats(self) -> dict[str, Any]:
        """Round-trip time, loss and media bytes (RTP payload) of this participant's connection.

        RTT and loss come from aiortc's getStats (RTCP reports); bytes received from shoal's
        taps, bytes sent from aiortc's senders.
        """
        pc = self._pc
        if pc is None or pc.connectionState == "closed":
            return {"state": "none" if pc is None else "closed"}
        report = await pc.getStats()
        rtts, received, lost, bytes_out = [], 0, 0, 0
        for stats in report.values():
            kind = getattr(stats, "type", "")
            if kind == "remote-inbound-rtp" and getattr(stats, "roundTripTime", None) is not None:
                rtts.append(stats.roundTripTime)
            elif kind == "inbound-rtp":
                received += stats.packetsReceived or 0
                lost += max(0, stats.packetsLost or 0)
            elif kind == "outbound-rtp":
                bytes_out += stats.bytesSent or 0
        # Inbound media does not pass aiortc's receiver (shoal's taps take it): count it there.
        bytes_in = sum(i.tap.payload_bytes for i in self._inbound.values() if i.tap is not None)
        return {
            "state": pc.connectionState,
            "rtt_ms": round(1000 * max(rtts), 1) if rtts else None,
            "loss": round(lost / (received + lost), 4) if received + lost else 0.0,
            "bytes_received": bytes_in,
            "bytes_sent": bytes_out,
        }

    def _remove_inbound(self, track_id: str) -> None:
        inbound = self._inbound.pop(track_id, None)
        if inbound is None:
            return
        self._ended_inbound.update(self._inbound_counters(inbound))
        if self._fast_audio is not None and inbound.tap is not None:
            self._fast_audio.forget(inbound.tap)
        if inbound.reader is not None:
            inbound.reader.cancel()
        if inbound.vad is not None:
            inbound.vad.close()
        self._manager.remove_track(self.room_id, self.peer_id, track_id)

    # ICE -------------------------------------------------------------------------------

    async def _add_candidate(self, candidate: proto.Candidate) -> None:
        if not self._remote_set:
            if len(self._candidates) < MAX_BUFFERED_CANDIDATES:
                self._candidates.append(candidate)
            return
        await self._apply_candidate(candidate)

    async def _apply_candidate(self, candidate: proto.Candidate) -> None:
        if self._pc is None or not candidate.candidate:
            return
        try:
            parsed = candidate_from_sdp(candidate.candidate.removeprefix("candidate:"))
            parsed.sdpMid = candidate.sdp_mid or None
            parsed.sdpMLineIndex = candidate.sdp_m_line_index
            await self._pc.addIceCandidate(parsed)
        except Exception as exc:  # a bad candidate only costs this candidate
            log.info("peer %s: candidate %r ignored: %s", self.peer_id, candidate.candidate[:80], exc)

    def _create_peer_connection(self) -> RTCPeerConnection:
        # max-bundle: every m-line uses the first one's transport from the start. With aiortc's
        # default (balanced) the first video m-line of a later offer gets a transport of its
        # own until the answer bundles it, and aiortc's connect task can start that m-line
        # on the short-lived transport and then never send on it.
        # The network's peer connections are max-bundle too, and gather per --rtc-* options.
        if self._network is not None:
            pc = self._network.peer_connection(f"peer {clip(self.peer_id)} in room {clip(self.room_id)}")
        else:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._pc = pc

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            state = pc.connectionState
            log.info("peer %s: media connection %s", self.peer_id, state)
            if state == "connected":
                self._count_srtp_refusals(pc)
                if self._network is not None:
                    self._admission = self._network.admission_stream(pc)
                    self._fast_audio = self._network.fast_audio_path(pc, self._router.tally)
                if self._ice_deadline is not None:
                    self._ice_deadline.cancel()
                if not self.closed and self._negotiation.queued and not self._negotiation.in_flight:
                    self._start_negotiation()
            elif state == "failed" and not self.closed:
                self._fail("media connection failed (ICE/DTLS)")

        return pc

    def _not_paused(self) -> bool:
        """Under sustained overload a paused participant is on hold both ways: its agents' audio is not encoded."""
        admission = self._admission
        return admission is None or not admission.paused

    def _count_srtp_refusals(self, pc: RTCPeerConnection) -> None:
        """Count inbound packets SRTP refuses (aiortc drops them without a word)."""
        transports = {id(t.receiver.transport): t.receiver.transport for t in pc.getTransceivers()}
        for transport in transports.values():
            seam.count_srtp_refusals(transport, self._srtp_refused)

    def _srtp_refused(self) -> None:
        self.srtp_refused += 1
        self._router.tally.srtp_refused += 1
        if self.srtp_refused == 1:
            log.warning("peer %s: an inbound media packet failed SRTP (forged, corrupted or replayed); "
                        "such packets are dropped and counted", self.peer_id)

    def _ice_timed_out(self) -> None:
        if self._pc is not None and self._pc.connectionState != "connected":
            self._fail(f"media connection not established within {self._ice_connect_timeout_s:g} s")

    # teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop all media of this session (the domain side is handled by the caller)."""
        if self.closed:
            return
        self.closed = True
        if self.srtp_refused:
            log.info("peer %s: %d inbound media packets failed SRTP and were dropped", self.peer_id, self.srtp_refused)
        self._router.remove_receiver(self)
        for handle in (self._negotiation.deadline, self._ice_deadline):
            if handle is not None:
                handle.cancel()
        for outbound in self._outbound.values():
            outbound.fanout.detach(self._sink_key)
            outbound.stop()
        self._outbound.clear()
        for inbound in self._inbound.values():
            if inbound.reader is not None:
                inbound.reader.cancel()
            if inbound.vad is not None:
                inbound.vad.close()
            if inbound.fanout is not None:
                self._router.unpublish(self.room_id, self.peer_id, inbound.track_id)
        if self._pc is not None:
            pc, self._pc = self._pc, None
            task = asyncio.get_running_loop().create_task(pc.close(), name=f"close-pc-{self.peer_id}")
            task.add_done_callback(_log_close_error)


_SDP_LINE = re.compile(r"[a-z]=[^\r\n]*")
_ICE_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)
_ICE_PWD = re.compile(r"^a=ice-pwd:(\S+)", re.MULTILINE)


def ice_credentials(sdp: str) -> tuple[str, str] | None:
    """The first m-line's (or the session's) ICE ufrag and password: one transport is bundled."""
    ufrag, pwd = _ICE_UFRAG.search(sdp), _ICE_PWD.search(sdp)
    if ufrag is None or pwd is None:
        return None
    return ufrag.group(1), pwd.group(1)


def sdp_syntax_problem(sdp: str) -> str | None:
    """Why ``sdp`` is not SDP at all (aiortc skips lines it cannot read), or None."""
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    if not lines or lines[0] != "v=0":
        return "it must start with v=0"
    for number, line in enumerate(lines, 1):
        if not _SDP_LINE.fullmatch(line):
            return f"line {number} is not <type>=<value>: {line[:40]!r}"
    return None


class _NoKeyframes:
    """Audio has no keyframes to ask for."""

    def request_keyframe(self) -> None:
        pass


def only_codec(codecs: list[RTCRtpCodecParameters], name: str) -> list[RTCRtpCodecParameters]:
    """The offer's variants of one codec (H.264 constrained baseline first) and their RTX."""
    primary = [c for c in codecs if c.name.upper() == name]
    primary.sort(key=lambda c: 0 if str(c.parameters.get("profile-level-id", "")).lower().startswith("42e0") else 1)
    types = {c.payloadType for c in primary}
    rtx = [c for c in codecs if is_rtx(c) and c.parameters.get("apt") in types]
    return primary + rtx if primary else []


def keep_payload_types(offer_sdp: str, keep: dict[int, list[int]]) -> str:
    """``offer_sdp`` with m-line ``i`` of ``keep`` offering only those payload types, in that order.

    The m= line's list and the a=rtpmap/fmtp/rtcp-fb lines of the others are dropped; the
    kept a=rtpmap lines are put in ``keep``'s order (aiortc takes the order from them).
    """
    newline = "\r\n" if "\r\n" in offer_sdp else "\n"
    sections: list[list[str]] = [[]]
    for line in offer_sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    for index, types in keep.items():
        lines = sections[index + 1]
        wanted = {str(pt) for pt in types}
        kind, port, proto, *_ = lines[0].split(" ")
        out = [" ".join([kind, port, proto, *map(str, types)])]
        rtpmaps = iter(f"a=rtpmap:{pt} {_rtpmap(lines, pt)}" for pt in types)
        for line in lines[1:]:
            attribute, _, value = line.partition(":")
            if attribute not in ("a=rtpmap", "a=fmtp", "a=rtcp-fb"):
                out.append(line)
            elif value.split(" ", 1)[0] in wanted | ({"*"} if attribute == "a=rtcp-fb" else set()):
                out.append(next(rtpmaps) if attribute == "a=rtpmap" else line)
        sections[index + 1] = out
    return newline.join(line for section in sections for line in section)


def _rtpmap(lines: list[str], payload_type: int) -> str:
    prefix = f"a=rtpmap:{payload_type} "
    return next(line[len(prefix):] for line in lines if line.startswith(prefix))


def _no_wrap(pcm: bytes) -> bytes:
    raise RuntimeError("video tracks carry no PCM")


def _log_close_error(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("closing a peer connection failed: %s", task.exception())
