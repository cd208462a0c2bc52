"""RTP forwarding (the SFU path): a publisher's packets go to every receiver as they came.

* ``RtpTap`` takes the place of aiortc's jitter buffer in a publisher's ``RTCRtpReceiver``.
  aiortc has already decrypted the packet, kept receiver statistics, unwrapped RTX and sent
  NACKs for gaps; the tap hands each packet to the track's fan-out at once and feeds what
  decodes only while someone needs decoded media: for audio (agents) an inline decoder
  (``shoal.media.opus_in``), for video (an image capture) a real jitter buffer and so
  aiortc's decoder.
* ``RtpForwarder`` sends one track to one receiver through an aiortc ``RTCRtpSender`` that
  otherwise stays idle: it rewrites SSRC, payload type, sequence numbers, timestamps and
  header extensions for that receiver's connection, keeps a history to answer the receiver's
  NACKs (as RTX when negotiated), passes its PLI/FIR up to the publisher, and starts a video
  receiver on a keyframe. Numbering is kept on extended sequence numbers
  (``shoal.media.munger``), so calls of any length forward every packet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import RTCRtpSender
from aiortc.clock import current_ntp_time
from aiortc.codecs import is_rtx
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, wrap_rtx
from aiortc.utils import uint16_add, uint16_gt

from shoal import seam
from shoal.media.keyframes import keyframe_start
from shoal.media.munger import RtpMunger, SendHistory
from shoal.media.ssrc import Arrival, SsrcTracker
from shoal.tally import Tally

log = logging.getLogger(__name__)

SEND_QUEUE = {"audio": 50, "video": 256}
"""Serialized packets waiting for the socket, per receiver. Full means the event loop is
far behind: the oldest packet is dropped (and counted); a video receiver NACKs it and is
answered from the history."""

HISTORY = {"audio": 128, "video": 512}
"""Sent packets kept per receiver to answer its NACKs: ~2 s of 1 Mbit/s video, 2.5 s of
audio (browsers rarely NACK audio). At most ~600 kB per video receiver."""

MAX_RESEND_AGE_S = {"audio": 1.0, "video": 2.0}
"""A NACKed packet older than this is not resent: it would arrive after the receiver's jitter
buffer gave up on it (mediasoup's retransmission buffer uses the same limits)."""

CLOCK_RATES = {"audio": 48000, "video": 90000}
"""RTP clock rates of the codecs shoal forwards (Opus; VP8 and H.264), if the SDP gives none."""

NTP_SECOND = 1 << 32


class FrameSlot(Protocol):
    """What sits behind the tap: aiortc's ``JitterBuffer`` (video) or an inline decoder (audio)."""

    @property
    def capacity(self) -> int: ...

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]: ...


class RtpTap:
    """The jitter-buffer slot of a publisher's receiver: forward every packet, decode on demand."""

    def __init__(
        self,
        deliver: Callable[[RtpPacket], None],
        decode_wanted: Callable[[], bool],
        make_buffer: Callable[[], FrameSlot],
        decodable_start: Callable[[RtpPacket], bool] = lambda packet: True,
        tally: Tally | None = None,
    ) -> None:
        self._deliver = deliver
        self._tally = tally if tally is not None else Tally()
        self._decode_wanted = decode_wanted
        self._make_buffer = make_buffer
        self._decodable_start = decodable_start
        self._buffer: FrameSlot | None = None
        self.streams = SsrcTracker()
        self.packets = 0
        self.payload_bytes = 0
        self.learn: Callable[[Any], None] | None = None
        """Told of each current-stream packet aiortc delivers (``shoal.media.fast_audio`` learns streams)."""

    @property
    def ssrc(self) -> int | None:
        return self.streams.current

    @property
    def capacity(self) -> int:
        return self._buffer.capacity if self._buffer is not None else 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """aiortc's jitter-buffer call, for a packet that came through aiortc's receiver."""
        return self._take(packet, self.learn)

    def add_fast(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        """A packet of a learnt stream, from ``shoal.media.fast_audio`` (it skipped aiortc's receiver)."""
        return self._take(packet, None)

    def _take(self, packet: Any, learn: Callable[[Any], None] | None) -> tuple[bool, JitterFrame | None]:
        arrival = self.streams.arrive(packet.ssrc)
        if arrival is Arrival.STALE:
            # A late packet of a replaced stream: passing it on would restart every
            # forwarder (and a video receiver's wait for a keyframe) twice.
            self._tally.rtp_dropped_late += 1
            return False, None
        if arrival is Arrival.NEW:
            # aiortc's jitter buffer would compare the new stream's numbers with the old one's.
            self._buffer = None
        if learn is not None:
            learn(packet)
        self.packets += 1
        self.payload_bytes += len(packet.payload)
        self._tally.rtp_received += 1
        try:
            self._deliver(packet)
        except Exception:
            log.exception("forwarding an RTP packet failed")
        if not self._decode_wanted():
            self._buffer = None  # a fresh buffer next time: no stale packets, new origin
            return False, None
        if self._buffer is None:
            if not self._decodable_start(packet):
                return False, None  # a decoder must start on a keyframe
            self._buffer = self._make_buffer()
        return self._buffer.add(packet)


LATE_KEYFRAME_PACKETS = 1024
"""A keyframe start at most this far behind a packet skipped while waiting is a late arrival
of a picture already partly skipped; further behind, the publisher's numbering restarted."""


class KeyframeRequester:
    """Sends PLI to a publisher for one of its video tracks, at most every ``min_interval`` s.

    Receivers starting up and receivers that lost a picture all ask; one keyframe serves
    them all, so requests within the interval are dropped (the encoder is busy making it).
    """

    def __init__(
        self, receiver: Any, ssrc: Callable[[], int | None], min_interval: float = 0.3, tally: Tally | None = None
    ) -> None:
        self._receiver = receiver
        self._tally = tally if tally is not None else Tally()
        self._ssrc = ssrc
        self._min_interval = min_interval
        self._loop = asyncio.get_running_loop()
        self._last = float("-inf")
        self.sent = 0

    def request_keyframe(self) -> None:
        now = self._loop.time()
        ssrc = self._ssrc()
        if ssrc is None or now - self._last < self._min_interval:
            return
        self._last = now
        self.sent += 1
        self._tally.keyframe_requests_sent += 1
        self._loop.create_task(seam.request_keyframe(self._receiver, ssrc))


class IdleTrack(MediaStreamTrack):
    """Keeps an aiortc sender's own encode loop parked: the forwarder sends for it."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.Event()

    async def recv(self) -> Any:
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._stopped.set()


class RtpForwarder:
    """One published track → one receiver's m-line."""

    def __init__(
        self, sender: RTCRtpSender, name: str, request_keyframe: Callable[[], None], tally: Tally | None = None
    ) -> None:
        self.kind = sender.kind
        self._tally = tally if tally is not None else Tally()
        self.name = name
        self._sender = sender
        self._request_keyframe = request_keyframe
        self._configured = False
        self._codec_name = ""
        self._payload_type = 0
        self._rtx_payload_type: int | None = None
        self._rtx_seq = 0
        self._mid: str | None = None
        self._extensions = HeaderExtensionsMap()
        self._queue: deque[bytes] = deque()
        self._queue_max = SEND_QUEUE.get(self.kind, 256)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._history: SendHistory[RtpPacket] = SendHistory(
            HISTORY.get(self.kind, 512), MAX_RESEND_AGE_S.get(self.kind, 2.0)
        )
        self._munger: RtpMunger | None = None  # made by configure()
        self._in_ssrc: int | None = None
        self._skipped_newest: int | None = None
        """While waiting for a keyframe: the newest sequence number skipped (video)."""
        self._ssrc = self._rtx_ssrc = 0  # the sender's, known once configured
        self.closed = False
        # counters, logged at close
        self.forwarded = 0
        self.dropped = 0
        self.retransmitted = 0
        self.keyframe_requests = 0
        self.waited_for_keyframe = 0

    def install(self) -> None:
        """Take over the sender: park its encoder loop, learn its parameters, answer its RTCP."""
        sender = self._sender
        sender.replaceTrack(IdleTrack(self.kind))
        original_send = sender.send

        async def send(parameters: RTCRtpSendParameters) -> None:
            self.configure(parameters)
            await original_send(parameters)

        setattr(sender, "send", send)  # noqa: B010 - instance override of aiortc's (public) method
        seam.take_over_rtcp(sender, self.retransmit, self.keyframe_requested)

    def configure(self, parameters: RTCRtpSendParameters) -> None:
        if self._configured or self.closed:
            return
        primary = parameters.codecs[0]
        self._codec_name = primary.name
        self._payload_type = primary.payloadType or 0
        for codec in parameters.codecs:
            if is_rtx(codec) and codec.parameters.get("apt") == primary.payloadType:
                self._rtx_payload_type = codec.payloadType
        self._mid = parameters.muxId
        self._extensions.configure(parameters)
        self._ssrc, self._rtx_ssrc = seam.sender_ssrcs(self._sender)
        # Any origin will do (numbers are extended); derived from the random SSRCs as aiortc's are random.
        self._munger = RtpMunger(
            self._ssrc & 0xFFFF,
            (self._ssrc * 7919) & 0xFFFFFFFF,
            primary.clockRate or CLOCK_RATES.get(self.kind, 90000),
        )
        self._rtx_seq = self._rtx_ssrc & 0xFFFF
        self._configured = True
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"forward {self.name}")

    # packets in ------------------------------------------------------------------------

    def put(self, packet: RtpPacket) -> None:
        """A packet from the publisher; rewritten and queued for this receiver (never blocks)."""
        munger = self._munger
        if munger is None or self.closed or self._sender.transport.state != "connected":
            return
        if packet.ssrc != self._in_ssrc:
            self._restart(munger, packet.ssrc)
        # Ages (NACK history, the gap at a restart) on the monotonic clock: the wall clock can
        # step (NTP) during an hours-long call. The NTP time is only what goes on the wire.
        now = time.monotonic()
        ntp = current_ntp_time()
        place = None
        if munger.started:
            place = munger.rewrite(packet.sequence_number, packet.timestamp, now)
            if not munger.started and munger.jumps == 1:  # later jumps are counted, logged at close
                log.info("%s: the publisher's sequence numbers jumped; restarting on this packet", self.name)
        if not munger.started:  # a new stream, or its numbering jumped
            if self.kind == "video" and not self._may_start(packet):
                self.waited_for_keyframe += 1
                self._request_keyframe()
                return
            self._skipped_newest = None
            place = munger.start(packet.sequence_number, packet.timestamp, now)
        if place is None:
            return  # reordered from before this receiver's start, or part of a jump not yet confirmed
        out = RtpPacket(
            payload_type=self._payload_type,
            marker=packet.marker,
            sequence_number=place.sequence_number,
            timestamp=place.timestamp,
            ssrc=self._ssrc,
            payload=packet.payload,
        )
        out.padding_size = packet.padding_size
        out.extensions.mid = self._mid
        out.extensions.abs_send_time = (ntp >> 14) & 0x00FFFFFF
        out.extensions.audio_level = packet.extensions.audio_level
        self._history.add(place.extended_seq, now, out)
        if len(self._queue) >= self._queue_max:
            self._queue.popleft()
            self.dropped += 1
            self._tally.rtp_dropped_overload += 1
        self._queue.append(out.serialize(self._extensions))
        self._note_sent(out, ntp)
        self._wake.set()

    def _may_start(self, packet: RtpPacket) -> bool:
        """A video stream starts on the first packet of a keyframe — one that is not older than a
        packet already skipped while waiting. A keyframe start recovered late (by RTX) after
        later packets of its frame were skipped can never be completed for this receiver:
        starting on it would give the receiver a broken first picture and nothing after it
        decodes, so the next keyframe (requested meanwhile) is awaited instead."""
        seq, skipped = packet.sequence_number, self._skipped_newest
        if skipped is None or uint16_gt(seq, skipped):
            if not keyframe_start(self._codec_name, packet.payload):
                self._skipped_newest = seq
                return False
            return True
        # Behind a skipped packet: a late part of a picture already skipped, unless far behind
        # (the publisher's numbering restarted).
        return keyframe_start(self._codec_name, packet.payload) and (skipped - seq) & 0xFFFF > LATE_KEYFRAME_PACKETS

    def _restart(self, munger: RtpMunger, ssrc: int) -> None:
        """A new inbound stream (first packet or a new SSRC): continue our numbering after the last."""
        if self._in_ssrc is not None:
            log.info("%s: the publisher's SSRC changed; restarting%s", self.name,
                     " on the next keyframe" if self.kind == "video" else "")
        self._in_ssrc = ssrc
        self._skipped_newest = None
        munger.restart()

    # RTCP from the receiver (through the aiortc sender) ---------------------------------

    async def retransmit(self, sequence_number: int) -> None:
        packet = self._history.get(sequence_number, time.monotonic())
        if packet is None or self.closed:
            return
        if self._rtx_payload_type is not None:
            packet = wrap_rtx(packet, self._rtx_payload_type, self._rtx_seq, self._rtx_ssrc)
            self._rtx_seq = uint16_add(self._rtx_seq, 1)
        self.retransmitted += 1
        self._tally.rtp_retransmitted += 1
        try:
            await seam.send_rtp(self._sender, packet.serialize(self._extensions))
        except ConnectionError:
            pass

    def keyframe_requested(self) -> None:
        """The receiver sent PLI or FIR: only the publisher can produce a keyframe."""
        self.keyframe_requests += 1
        self._tally.keyframe_requests_received += 1
        self._request_keyframe()

    # sending ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                data = self._queue.popleft()
                try:
                    await seam.send_rtp(self._sender, data)
                except ConnectionError:
                    self._queue.clear()
                    break

    def _note_sent(self, packet: RtpPacket, ntp_time: int) -> None:
        """Keep aiortc's sender reports truthful (receivers use them for lip sync and stats)."""
        self.forwarded += 1
        self._tally.rtp_forwarded += 1
        seam.note_sent(self._sender, ntp_time, packet.timestamp, len(packet.payload))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._wake.set()
        track = self._sender.track
        if track is not None:
            track.stop()
        log.info(
            "%s: forwarded %d packets, retransmitted %d, dropped %d (queue full), "
            "%d keyframe requests from the receiver, %d packets skipped waiting for a keyframe",
            self.name, self.forwarded, self.retransmitted, self.dropped, self.keyframe_requests,
            self.waited_for_keyframe,
        )
        munger = self._munger
        if munger is not None and (munger.before_start or munger.jumps or munger.jump_dropped):
            log.info(
                "%s: %d packets reordered from before the start dropped, %d sequence jumps "
                "(%d packets dropped until confirmed)",
                self.name, munger.before_start, munger.jumps, munger.jump_dropped,
            )
