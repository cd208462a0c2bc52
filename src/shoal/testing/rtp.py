"""RTP instruments for an aiortc connection: drop chosen packets on the way out or in; count NACK, RTX, PLI.

They exist to test an SFU's loss recovery. Packets are dropped where the network would lose
them: an outgoing one before SRTP, so the server never gets it and has to NACK it; an incoming
one as it comes off ICE, before SRTP (whose replay check would otherwise reject a resend with
the same sequence number), so this peer's receiver NACKs the server. Only the first
transmission of a selected sequence number is dropped: retransmissions (RTX, or a resend on the
media SSRC) go through.

The hooks replace steps of aiortc's internals on one ``RTCPeerConnection`` (through ``shoal.seam``,
which checks they exist): the DTLS transport's RTP send and receive, its ICE transport's datagram
read, each sender's RTCP handling, each receiver's RTP handling and RTCP send. Installing
them is possible at any time: transceivers added later (``addTransceiver``, ``addTrack``, or a
remote description) are hooked as they appear.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import RTCDtlsTransport, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, sdp
from aiortc.codecs import is_rtx
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    is_rtcp,
)

from shoal import seam
from shoal.media.keyframes import keyframe_start

Kind = Literal["audio", "video"]
SeqSelect = Callable[[int], bool]
"""Given an RTP sequence number, True to drop the packet's first transmission."""

MAX_DROPPED = 32768  # (ssrc, seq) pairs remembered as dropped, so that their resends pass
MAX_SEQ_LIST = 4096  # sequence numbers kept in the stats lists


def rtp_payload(data: bytes) -> bytes:
    """The payload of a serialized RTP packet: after CSRCs and the header extension, without padding."""
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= offset + 4:
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    end = len(data) - (data[-1] if data[0] & 0x20 else 0)
    return data[offset:end]


class SeqLog:
    """Sequence numbers received on one SSRC, unwrapped past 65535, kept for the last ``window`` numbers."""

    def __init__(self, window: int = 16384) -> None:
        self.window = window
        self.first: int | None = None
        """The first received number, extended (it may grow past 65535)."""
        self.highest: int | None = None
        """The highest received number, extended."""
        self.received = 0
        self._seen: set[int] = set()

    def add(self, seq: int) -> None:
        if self.highest is None:
            ext = seq
            self.first = self.highest = seq
        else:
            ext = self.highest + ((seq - self.highest + 0x8000) & 0xFFFF) - 0x8000
            self.highest = max(self.highest, ext)
            if self.first is not None and ext < self.first:
                self.first = ext
        self.received += 1
        self._seen.add(ext)
        if len(self._seen) > 2 * self.window:
            floor = self.highest - self.window
            self._seen = {s for s in self._seen if s > floor}

    def __contains__(self, seq: int) -> bool:
        if self.highest is None:
            return False
        ext = self.highest + ((seq - self.highest + 0x8000) & 0xFFFF) - 0x8000
        return ext in self._seen

    def missing(self, *, recent: int = 0) -> list[int]:
        """Numbers (16-bit) never received between the first and the highest, within the window.

        The newest ``recent`` numbers are left out: they may still be on their way (a NACK round).
        """
        if self.first is None or self.highest is None:
            return []
        low = max(self.first, self.highest - self.window + 1)
        return [s & 0xFFFF for s in range(low, self.highest - recent + 1) if s not in self._seen]


@dataclass
class RtpStats:
    """Counters of one media kind on one connection. Sequence-number counts count numbers, not packets."""

    rtp_sent: int = 0
    """Packets sent on our senders' media SSRCs (dropped ones excluded, resends on that SSRC included)."""
    rtx_sent: int = 0
    """Retransmissions our senders sent on their RTX SSRC."""
    resent_sent: int = 0
    """Packets we dropped that our senders then resent on the media SSRC (aiortc does so without RTX)."""
    dropped_sent: int = 0
    nacks_received: int = 0
    """Sequence numbers the remote NACKed to our senders."""
    keyframe_requests_received: int = 0
    """PLI and FIR packets the remote sent to our senders."""
    rtp_received: int = 0
    """Media packets handed to our receivers (dropped ones excluded)."""
    rtx_received: int = 0
    resent_received: int = 0
    """Packets whose first arrival we dropped that then arrived again on the media SSRC (not RTX)."""
    rtx_unmapped: int = 0
    """RTX packets from an SSRC the remote SDP did not pair with a media SSRC: aiortc discards them."""
    unrouted_received: int = 0
    """Packets aiortc's transport discarded before any receiver (attributed by payload type): their SSRC
    is not in the remote SDP and several receivers share their payload type (aiortc ignores the MID)."""
    dropped_received: int = 0
    nacks_sent: int = 0
    """Sequence numbers our receivers NACKed."""
    plis_sent: int = 0
    keyframes_sent: int = 0
    """Keyframes our senders' encoders produced (VP8/H264, seen in their first packets, dropped or not)."""
    keyframes_received: int = 0
    """Keyframes whose first packet reached our receivers (original or retransmitted)."""
    received: dict[int, SeqLog] = field(default_factory=dict)
    """Media sequence numbers received per media SSRC, RTX unwrapped (see :meth:`SeqLog.missing`)."""
    dropped_sent_seqs: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_SEQ_LIST))
    dropped_received_seqs: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_SEQ_LIST))
    nacked_seqs: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_SEQ_LIST))
    """The sequence numbers in the NACKs our senders received, most recent last."""

    def missing_received(self, *, recent: int = 0) -> dict[int, list[int]]:
        """Per media SSRC, the sequence numbers never received (see :meth:`SeqLog.missing`)."""
        return {ssrc: log.missing(recent=recent) for ssrc, log in self.received.items()}


class RtpTap:
    """The instruments for one media kind: what to drop (``drop_sent``/``drop_received``) and ``stats``."""

    def __init__(self, kind: Kind) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"kind must be 'audio' or 'video', not {kind!r}")
        self.kind: Kind = kind
        self.stats = RtpStats()
        self.drop_sent: SeqSelect | None = None
        self.drop_received: SeqSelect | None = None
        self.held: list[tuple[Callable[[bytes], Any], bytes]] | None = None
        """While a list: outgoing RTP (not RTX) is kept here before SRTP instead of sent (``hold_sent``)."""
        self._dropped_out: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._dropped_in: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._keyframe_ts: dict[tuple[bool, int], int] = {}  # (sent, ssrc) -> timestamp last counted

    @staticmethod
    def _first_drop(
        select: SeqSelect | None, memory: OrderedDict[tuple[int, int], None], ssrc: int, seq: int
    ) -> bool:
        """True to drop: selected, and not dropped before (a resend passes)."""
        if select is None or (ssrc, seq) in memory or not select(seq):
            return False
        memory[(ssrc, seq)] = None
        if len(memory) > MAX_DROPPED:
            memory.popitem(last=False)
        return True

    def _new_keyframe(self, sent: bool, ssrc: int, timestamp: int) -> bool:
        """True the first time a keyframe with this RTP timestamp is seen on this stream."""
        if self._keyframe_ts.get((sent, ssrc)) == timestamp:
            return False
        self._keyframe_ts[(sent, ssrc)] = timestamp
        return True

    def sending(self, ssrc: int, seq: int, rtx: bool, keyframe_ts: int | None = None) -> bool:
        """Count one outgoing RTP packet of ours; False if it is to be dropped.

        ``keyframe_ts`` is the packet's RTP timestamp if it starts a keyframe.
        """
        if rtx:
            self.stats.rtx_sent += 1
            return True
        if keyframe_ts is not None and self._new_keyframe(True, ssrc, keyframe_ts):
            self.stats.keyframes_sent += 1
        if (ssrc, seq) in self._dropped_out:
            self.stats.resent_sent += 1
        if self._first_drop(self.drop_sent, self._dropped_out, ssrc, seq):
            self.stats.dropped_sent += 1
            self.stats.dropped_sent_seqs.append(seq)
            return False
        self.stats.rtp_sent += 1
        return True

    def hold_sent(self) -> None:
        """Keep outgoing packets from now on, as a stalled network would (``release_sent`` delivers them)."""
        if self.held is None:
            self.held = []

    async def release_sent(self) -> int:
        """Send every held packet at once, in order, and stop holding; returns how many."""
        count = 0
        while self.held:  # still holding while it sends: what the sender makes meanwhile queues behind
            send, data = self.held.pop(0)
            await send(data)
            count += 1
        self.held = None
        return count

    def arriving(self, ssrc: int, seq: int, rtx: bool) -> bool:
        """Decide on one incoming RTP packet before SRTP: True to drop it."""
        if rtx or not self._first_drop(self.drop_received, self._dropped_in, ssrc, seq):
            return False
        self.stats.dropped_received += 1
        self.stats.dropped_received_seqs.append(seq)
        return True

    def receiving(self, packet: RtpPacket, rtx: bool, media_ssrc: int | None, codec: str = "") -> None:
        """Count one incoming RTP packet that reached a receiver.

        For RTX, ``media_ssrc`` is the media SSRC aiortc pairs it with (None: it will discard it).
        ``codec`` is the media codec's name, to count keyframes.
        """
        stats = self.stats
        if rtx:
            stats.rtx_received += 1
            if media_ssrc is None or len(packet.payload) < 2:
                stats.rtx_unmapped += 1
                return
            self._log(media_ssrc).add(int.from_bytes(packet.payload[:2], "big"))
            self._count_keyframe(media_ssrc, packet.timestamp, codec, packet.payload[2:])
            return
        stats.rtp_received += 1
        if (packet.ssrc, packet.sequence_number) in self._dropped_in:
            stats.resent_received += 1
        self._log(packet.ssrc).add(packet.sequence_number)
        self._count_keyframe(packet.ssrc, packet.timestamp, codec, packet.payload)

    def _count_keyframe(self, ssrc: int, timestamp: int, codec: str, payload: bytes) -> None:
        if (
            self.kind == "video"
            and keyframe_start(codec, payload)
            and self._new_keyframe(False, ssrc, timestamp)
        ):
            self.stats.keyframes_received += 1

    def sender_rtcp(self, packet: Any) -> None:
        """Count the feedback the remote sent to one of our senders."""
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self.stats.nacks_received += len(packet.lost)
            self.stats.nacked_seqs.extend(packet.lost)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            self.stats.keyframe_requests_received += 1

    def receiver_rtcp(self, packet: Any) -> None:
        """Count the feedback one of our receivers sends."""
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self.stats.nacks_sent += len(packet.lost)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            self.stats.plis_sent += 1

    def _log(self, ssrc: int) -> SeqLog:
        log = self.stats.received.get(ssrc)
        if log is None:
            log = self.stats.received[ssrc] = SeqLog()
        return log


class _Hooks:
    """What is installed on one connection: the taps by kind and the already wrapped objects."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = weakref.ref(pc)
        self.taps: dict[str, RtpTap] = {}
        self.send_ssrcs: dict[int, tuple[RTCRtpTransceiver, bool]] = {}  # our SSRC -> (transceiver, RTX?)
        self.wrapped: weakref.WeakSet[Any] = weakref.WeakSet()
        self.transceivers: weakref.WeakKeyDictionary[Any, RTCRtpTransceiver] = weakref.WeakKeyDictionary()
        """Receiver -> its transceiver."""

    def sync(self) -> None:
        """Hook the transceivers (and their transport) that are not hooked yet."""
        pc = self.pc()
        if pc is None:
            return
        for transceiver in pc.getTransceivers():
            sender, receiver = transceiver.sender, transceiver.receiver
            ssrc, rtx_ssrc = seam.sender_ssrcs(sender)
            self.send_ssrcs[ssrc] = (transceiver, False)
            self.send_ssrcs[rtx_ssrc] = (transceiver, True)
            if self._first_time(sender.transport):
                self._wrap_transport(sender.transport)
            if self._first_time(sender):
                self._wrap_sender(sender, transceiver.kind)
            if self._first_time(receiver):
                self.transceivers[receiver] = transceiver
                self._wrap_receiver(receiver, transceiver)

    def _first_time(self, target: object) -> bool:
        if target in self.wrapped:
            return False
        self.wrapped.add(target)
        return True

    def _wrap_transport(self, transport: RTCDtlsTransport) -> None:
        router = seam.rtp_router(transport)

        def route(data: bytes) -> tuple[RtpTap | None, RTCRtpTransceiver | None, bool]:
            """The tap and transceiver aiortc's router will give an incoming RTP packet, and if it routes it."""
            ssrc, pt = int.from_bytes(data[8:12], "big"), data[1] & 0x7F
            candidates = router.payload_type_table.get(pt, set())
            by_ssrc = router.ssrc_table.get(ssrc)
            if by_ssrc is not None:
                receiver = by_ssrc if by_ssrc in candidates else None
            else:
                receiver = next(iter(candidates)) if len(candidates) == 1 else None
            if receiver is None:  # aiortc discards it; blame the kind of the receivers of that type
                kinds = {t.kind for r in candidates if (t := self.transceivers.get(r)) is not None}
                return (self.taps.get(kinds.pop()) if len(kinds) == 1 else None), None, False
            transceiver = self.transceivers.get(receiver)
            return (self.taps.get(transceiver.kind) if transceiver else None), transceiver, True

        async def send_rtp_tapped(data: bytes) -> None:
            if len(data) >= 12 and not is_rtcp(data):
                ssrc = int.from_bytes(data[8:12], "big")
                transceiver, rtx = self.send_ssrcs.get(ssrc, (None, False))
                tap = self.taps.get(transceiver.kind) if transceiver is not None else None
                if transceiver is not None and tap is not None:
                    keyframe_ts = None
                    if tap.kind == "video" and not rtx:
                        codec = _codec_name(transceiver, data[1] & 0x7F)
                        if keyframe_start(codec, rtp_payload(data)):
                            keyframe_ts = int.from_bytes(data[4:8], "big")
                    if not tap.sending(ssrc, int.from_bytes(data[2:4], "big"), rtx, keyframe_ts):
                        return
                    if tap.held is not None and not rtx:
                        tap.held.append((send_rtp, data))
                        return
            await send_rtp(data)

        async def recv_tapped() -> bytes:
            """The next datagram off ICE, skipping the RTP packets to drop (their header is in clear)."""
            while True:
                data: bytes = await recv()
                if len(data) < 12 or not 128 <= data[0] < 192 or is_rtcp(data):
                    return data
                tap, transceiver, _ = route(data)
                if tap is None or transceiver is None:
                    return data
                rtx = _is_rtx_type(transceiver, data[1] & 0x7F)
                if not tap.arriving(int.from_bytes(data[8:12], "big"), int.from_bytes(data[2:4], "big"), rtx):
                    return data

        async def handle_rtp_data_tapped(data: bytes, arrival_time_ms: int) -> None:
            if len(data) >= 12:
                tap, _, routed = route(data)
                if tap is not None and not routed:
                    tap.stats.unrouted_received += 1
            await handle_rtp_data(data, arrival_time_ms=arrival_time_ms)

        send_rtp, handle_rtp_data = seam.hook_dtls_transport(transport, send_rtp_tapped, handle_rtp_data_tapped)
        recv = seam.hook_ice_recv(transport.transport, recv_tapped)

    def _wrap_sender(self, sender: RTCRtpSender, kind: str) -> None:
        async def handle_rtcp_packet(packet: Any) -> None:
            tap = self.taps.get(kind)
            if tap is not None:
                tap.sender_rtcp(packet)
            await original(packet)

        original = seam.hook_sender_rtcp(sender, handle_rtcp_packet)

    def _wrap_receiver(self, receiver: RTCRtpReceiver, transceiver: RTCRtpTransceiver) -> None:
        kind = transceiver.kind
        async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
            tap = self.taps.get(kind)
            if tap is not None:
                codec = next((c for c in seam.negotiated_codecs(transceiver) if c.payloadType == packet.payload_type),
                             None)
                rtx = codec is not None and is_rtx(codec)
                media_ssrc, name = None, codec.name if codec is not None else ""
                if codec is not None and rtx:
                    # aiortc pairs RTX and media SSRCs from the remote SDP's a=ssrc lines only
                    media_ssrc = seam.rtx_ssrc_pairs(receiver).get(packet.ssrc)
                    name = _codec_name(transceiver, codec.parameters.get("apt"))
                tap.receiving(packet, rtx, media_ssrc, name)
            await handle_rtp(packet, arrival_time_ms=arrival_time_ms)

        async def send_rtcp_packet(packet: Any) -> None:
            tap = self.taps.get(kind)
            if tap is not None:
                tap.receiver_rtcp(packet)
            await send_rtcp(packet)

        handle_rtp, send_rtcp = seam.hook_receiver(receiver, handle_rtp_packet, send_rtcp_packet)


def _is_rtx_type(transceiver: RTCRtpTransceiver, payload_type: int) -> bool:
    return any(c.payloadType == payload_type and is_rtx(c) for c in seam.negotiated_codecs(transceiver))


def _codec_name(transceiver: RTCRtpTransceiver, payload_type: object) -> str:
    """The negotiated codec name of ``payload_type`` on ``transceiver`` ("" if unknown)."""
    return next((c.name for c in seam.negotiated_codecs(transceiver) if c.payloadType == payload_type), "")


HOOKS_ATTRIBUTE = "_shoal_rtp_hooks"  # on the connection itself, so that they live and die with it


def _hooks(pc: RTCPeerConnection) -> _Hooks:
    """The hooks of ``pc``, installing them (and the wrappers that hook later transceivers) once."""
    hooks = getattr(pc, HOOKS_ATTRIBUTE, None)
    if isinstance(hooks, _Hooks):
        return hooks
    hooks = _Hooks(pc)
    setattr(pc, HOOKS_ATTRIBUTE, hooks)
    add_transceiver, add_track = pc.addTransceiver, pc.addTrack
    set_local, set_remote = pc.setLocalDescription, pc.setRemoteDescription

    def hooked_add_transceiver(*args: Any, **kwargs: Any) -> Any:
        result = add_transceiver(*args, **kwargs)
        hooks.sync()
        return result

    def hooked_add_track(*args: Any, **kwargs: Any) -> Any:
        result = add_track(*args, **kwargs)
        hooks.sync()
        return result

    async def hooked_set_local(*args: Any, **kwargs: Any) -> None:
        await set_local(*args, **kwargs)
        hooks.sync()  # bundling may have given a sender another transport

    async def hooked_set_remote(*args: Any, **kwargs: Any) -> None:
        await set_remote(*args, **kwargs)
        hooks.sync()  # an offer creates transceivers on the answering side

    setattr(pc, "addTransceiver", hooked_add_transceiver)  # noqa: B010
    setattr(pc, "addTrack", hooked_add_track)  # noqa: B010
    setattr(pc, "setLocalDescription", hooked_set_local)  # noqa: B010
    setattr(pc, "setRemoteDescription", hooked_set_remote)  # noqa: B010
    return hooks


def install_rtp_tap(pc: RTCPeerConnection, tap: RtpTap) -> RtpTap:
    """Make ``tap`` the instruments of ``pc`` for ``tap.kind`` (replacing any earlier one); returns it."""
    hooks = _hooks(pc)
    hooks.taps[tap.kind] = tap
    hooks.sync()
    return tap


def rtp_tap(pc: RTCPeerConnection, kind: Kind) -> RtpTap:
    """The instruments of ``pc`` for ``kind``, installed on first use (before or after media starts)."""
    hooks = _hooks(pc)
    tap = hooks.taps.get(kind)
    return tap if tap is not None else install_rtp_tap(pc, RtpTap(kind))


def drop_sent_rtp(pc: RTCPeerConnection, kind: Kind, select: SeqSelect | None) -> RtpTap:
    """Drop the first transmission of our outgoing ``kind`` packets whose ``select(seq)`` is True (None: stop)."""
    tap = rtp_tap(pc, kind)
    tap.drop_sent = select
    return tap


def drop_received_rtp(pc: RTCPeerConnection, kind: Kind, select: SeqSelect | None) -> RtpTap:
    """Drop the first arrival of incoming ``kind`` media packets whose ``select(seq)`` is True (None: stop)."""
    tap = rtp_tap(pc, kind)
    tap.drop_received = select
    return tap


async def send_raw(pc: RTCPeerConnection, datagrams: list[bytes]) -> None:
    """Send datagrams as they are on the connection's media path (no DTLS, no SRTP): forged media."""
    transceivers = pc.getTransceivers()
    if not transceivers:
        raise RuntimeError("no transceiver: nothing to send on")
    send = seam.ice_send(transceivers[0].sender.transport.transport)
    for datagram in datagrams:
        await send(datagram)


def rtp_stats(pc: RTCPeerConnection, kind: Kind) -> RtpStats:
    """The counters of ``pc`` for ``kind`` (counting starts when the instruments are installed)."""
    return rtp_tap(pc, kind).stats


def route_announced_ssrcs(pc: RTCPeerConnection) -> int:
    """Route incoming RTP by the SSRCs the remote description announces per m-line, as browsers do.

    aiortc 1.16 routes by the SSRC a receiver first started with, else by payload type alone, and
    never by MID: with two video receivers on one BUNDLE transport every RTX packet is discarded
    (the RTX payload type is shared), and an m-line reused for a new SSRC receives nothing. This
    maps each m-line's media SSRC and RTX SSRC (``a=ssrc-group:FID``) to its receiver. Call it
    after every ``setRemoteDescription``; returns the number of SSRCs mapped.
    """
    if pc.remoteDescription is None:
        return 0
    transceivers = {t.mid: t for t in pc.getTransceivers() if t.mid is not None}
    mapped = 0
    for media in sdp.SessionDescription.parse(pc.remoteDescription.sdp).media:
        transceiver = transceivers.get(media.rtp.muxId)
        if transceiver is None or not media.ssrc:
            continue
        receiver = transceiver.receiver
        router = seam.rtp_router(receiver.transport)
        fid = next((g.items for g in media.ssrc_group if g.semantic == "FID" and len(g.items) == 2), None)
        media_ssrc = int(fid[0]) if fid else media.ssrc[0].ssrc
        router.ssrc_table[media_ssrc] = receiver
        mapped += 1
        if fid:
            router.ssrc_table[int(fid[1])] = receiver
            seam.rtx_ssrc_pairs(receiver)[int(fid[1])] = media_ssrc  # what aiortc unwraps RTX with
            mapped += 1
    return mapped
