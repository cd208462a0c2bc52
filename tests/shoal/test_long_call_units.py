"""Hours of a call, compressed: every per-packet counter and comparison driven past its wrap.

Each test pushes ≥ 200,000 packets (or frames, or ticks) through one part of a long call —
the forwarder with a real aiortc ``RTCRtpSender`` and DTLS transport (no socket: the
transport is marked connected and its ``_send_rtp`` keeps the datagrams), the NACK history
and the RTX sequence, keyframe waiting, the Opus timestamps of agent tracks, the playout
clock and queue, the RTP tap feeding aiortc's jitter buffer — with sequence-number and
timestamp wraps, loss, reordering and an SSRC change, and checks what comes out packet by
packet. Each docstring says what the code before the fix did to fail it.
"""

from __future__ import annotations

import asyncio
import fractions
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import av
import numpy as np
import pytest
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCRtpSender
from aiortc.codecs.opus import OpusEncoder as AiortcOpusEncoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from aiortc.utils import uint32_add

from shoal.media.clock import FRAME_S, PlayoutClock
from shoal.media.forward import RtpForwarder, RtpTap
from shoal.media.munger import MAX_DROPOUT, RtpMunger, SendHistory
from shoal.media.opus import LivePts, OpusPacketizer
from shoal.media.pcm import PcmFormat
from shoal.media.playout import PcmPlayout
from shoal.media.seqnum import Unwrapper, nearest_extension

LONG = 200_000
WRAP16 = 1 << 16
WRAP32 = 1 << 32

OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
VP8_RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96})
MID = RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid")


# -- pure counters ----------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [16, 32])
def test_the_unwrapper_keeps_order_through_wraps_and_reordering(bits: int) -> None:
    """300,000 values walking forwards with gaps and steps back (reordering) across many wraps:
    each unwraps to its true position. (Raw serial-number comparisons, as the old forwarder's
    ``uint16_gt(first, seq)``, flip once values are half the range apart.)"""
    rng = random.Random(bits)
    mod = 1 << bits
    stride = 1 if bits == 16 else 30_000  # 32-bit: steps of 30,000 ticks make it wrap within the run
    true = mod - 5 * stride
    unwrapper = Unwrapper(bits)
    first = unwrapper.unwrap(true % mod)
    wraps = 0
    for _ in range(300_000):
        step = rng.choice((1, 1, 1, 2, 3, -1, -2, -40)) * stride
        if rng.random() < 0.0005:
            step = rng.randrange(1, mod // 2 - 1)  # a big but legal jump forward
        before = true // mod
        true += step
        wraps += true // mod != before
        assert unwrapper.peek(true % mod) - first == true - (mod - 5 * stride)
        assert unwrapper.unwrap(true % mod) - first == true - (mod - 5 * stride)
    assert wraps >= 3
    with pytest.raises(ValueError):
        unwrapper.unwrap(mod)


def test_a_nack_means_the_packet_with_that_number_nearest_the_newest() -> None:
    assert nearest_extension(5, 65541) == 65541
    assert nearest_extension(4, 65541) == 65540
    assert nearest_extension(6, 65541) == 65542  # after the newest: never sent, not a wrap older
    assert nearest_extension(65535, 65541) == 65535
    assert nearest_extension(10, 10 + 5 * WRAP16) == 10 + 5 * WRAP16
    assert nearest_extension(5, WRAP32 + 10, bits=32) == WRAP32 + 5


def test_the_send_history_answers_only_the_packet_meant_for_200k_packets() -> None:
    """Extended numbers from near a wrap, with a slot that is never refilled (every packet
    ≡ 3 mod 64 lost after the first 1,000). A NACK for a lost number (sent once the next
    packet went out, as a receiver would) is never answered with the packet of the same
    16-bit number a wrap earlier — what the old ``history[seq % size]`` +
    ``packet.sequence_number == seq`` check answered at 65,536. No time passes here, so the
    age limit is not what rejects it; it is checked on its own at the end."""
    history: SendHistory[int] = SendHistory(64, max_age=1e9)
    start = WRAP16 - 300
    stale_checked = 0
    for ext in range(start, start + LONG):
        lost = ext - start > 1000 and ext % 64 == 3
        if not lost:
            history.add(ext, 0.0, ext)
            assert history.get(ext & 0xFFFF, 0.0) == ext
            if ext - 1 - start > 1000 and (ext - 1) % 64 == 3:
                assert history.get((ext - 1) & 0xFFFF, 0.0) is None
                stale_checked += ext - 1 - WRAP16 - start <= 1000  # its slot still holds that number, a wrap older
        assert history.get((ext + 1) & 0xFFFF, 0.0) is None  # not sent yet
        if ext - start > 70:
            back = ext - 60
            expect = None if back - start > 1000 and back % 64 == 3 else back
            assert history.get(back & 0xFFFF, 0.0) == expect
    assert stale_checked >= 1
    assert history.too_old == 0
    aging: SendHistory[int] = SendHistory(64, max_age=1.0)
    aging.add(WRAP16 + 7, 100.0, 1)
    assert aging.get(7, 100.999) == 1
    assert aging.get(7, 101.001) is None and aging.too_old == 1


def test_a_sequence_jump_is_confirmed_before_the_munger_restarts_on_it() -> None:
    munger = RtpMunger(100, 5000, 48000)
    assert munger.start(40_000, 0, 0.0).extended_seq == 100
    assert munger.rewrite(40_001, 960, 0.02) is not None
    assert munger.rewrite(40_001 + MAX_DROPOUT + 10, 10**6, 0.04) is None  # one stray packet
    assert munger.started
    assert munger.rewrite(40_002, 1920, 0.04).extended_seq == 102  # type: ignore[union-attr]
    assert munger.rewrite(9, 0, 0.06) is None  # a new numbering: its first packet...
    assert munger.rewrite(10, 960, 0.08) is None and not munger.started  # ...confirmed by the next
    restarted = munger.start(10, 960, 0.08)
    assert restarted.extended_seq == 103
    assert restarted.timestamp == 1920 + 5000 + int(0.04 * 48000)  # on from the last, by the time between
    assert (munger.jumps, munger.jump_dropped) == (1, 2)


# -- the forwarder, with a real aiortc sender --------------------------------------------------


class Wire:
    """A real DTLS transport of aiortc, marked connected; what it would encrypt and send is kept."""

    def __init__(self) -> None:
        self.transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
        self.transport._state = State.CONNECTED
        self.sent: list[bytes] = []
        setattr(self.transport, "_send_rtp", self._send)  # noqa: B010

    async def _send(self, data: bytes) -> None:
        self.sent.append(data)

    def take(self, extensions: HeaderExtensionsMap) -> list[RtpPacket]:
        packets = [RtpPacket.parse(data, extensions) for data in self.sent]
        self.sent.clear()
        return packets


@dataclass
class Sent:
    """One inbound packet as the publisher numbered it: its index in its stream and its payload."""

    stream: int
    index: int
    packet: RtpPacket


async def make_forwarder(kind: str, codecs: list[RTCRtpCodecParameters]) -> tuple[RtpForwarder, Wire, HeaderExtensionsMap, list[int]]:
    wire = Wire()
    sender = RTCRtpSender(kind, wire.transport)
    requests: list[int] = []
    forwarder = RtpForwarder(sender, f"test {kind}", lambda: requests.append(1))
    forwarder.install()
    parameters = RTCRtpSendParameters(codecs=codecs, headerExtensions=[MID], muxId="1")
    forwarder.configure(parameters)
    extensions = HeaderExtensionsMap()
    extensions.configure(parameters)
    return forwarder, wire, extensions, requests


def stream(
    number: int, count: int, ssrc: int, seq0: int, ts0: int, ts_step: int, payload: Callable[[int], bytes],
    rng: random.Random, loss: float = 0.01, reorder: float = 0.01, early: int = 0,
) -> Iterator[Sent]:
    """``count`` packets of one publisher stream in arrival order: random loss, adjacent swaps,
    and ``early`` packets numbered before the first one that arrive just after it."""

    def make(index: int) -> Sent:
        packet = RtpPacket(
            payload_type=111 if ts_step == 960 else 96, sequence_number=(seq0 + index) % WRAP16,
            timestamp=(ts0 + (index // (1 if ts_step == 960 else 3)) * ts_step) % WRAP32, ssrc=ssrc,
            payload=payload(index),
        )
        return Sent(number, index, packet)

    order = [0, *range(-early, 0), *range(1, count)]
    for i in range(early + 1, len(order) - 1):
        if rng.random() < reorder:
            order[i], order[i + 1] = order[i + 1], order[i]
    for index in order:
        if index > 0 and rng.random() < loss:
            continue
        yield make(index)


async def drive(forwarder: RtpForwarder, wire: Wire, extensions: HeaderExtensionsMap, packets: Iterable[Sent],
                each: Callable[[Sent, list[RtpPacket]], None] | None = None) -> list[tuple[Sent, RtpPacket]]:
    """Put every packet; after each, let the forwarder's send task run and pair what it sent."""
    pairs: list[tuple[Sent, RtpPacket]] = []
    for sent in packets:
        forwarder.put(sent.packet)
        await asyncio.sleep(0)  # the send task drains the queue in one step (our _send_rtp never waits)
        out = wire.take(extensions)
        assert len(out) <= 1
        if out:
            pairs.append((sent, out[0]))
        if each is not None:
            each(sent, out)
    assert forwarder.dropped == 0
    return pairs


def nearest(seq: int, reference: int) -> int:
    """The extension of 16-bit ``seq`` nearest to extended ``reference`` (the test's own arithmetic)."""
    return reference + (seq - reference + WRAP16 // 2) % WRAP16 - WRAP16 // 2


def check_continuous(pairs: list[tuple[Sent, RtpPacket]], clock_rate: int) -> None:
    """Within a stream: out seq = in index + a constant, out ts = in ts + a constant (mod 2^16/2^32);
    at each new stream: the next seq after the highest sent, the timestamp on by ≥ 20 ms and < 2 s."""
    base: dict[int, tuple[int, int]] = {}
    highest: tuple[int, int] | None = None  # (extended seq, timestamp) of the newest packet sent
    for sent, out in pairs:
        if sent.stream not in base:
            if highest is not None:
                assert out.sequence_number == (highest[0] + 1) % WRAP16, "a gap or a step back at the new stream"
                step = (out.timestamp - highest[1]) % WRAP32
                assert 0.02 * clock_rate <= step < 2 * clock_rate
            base[sent.stream] = ((out.sequence_number - sent.index) % WRAP16, (out.timestamp - sent.packet.timestamp) % WRAP32)
        seq_base, ts_base = base[sent.stream]
        assert out.sequence_number == (seq_base + sent.index) % WRAP16
        assert out.timestamp == (sent.packet.timestamp + ts_base) % WRAP32
        ext = out.sequence_number if highest is None else nearest(out.sequence_number, highest[0])
        if highest is None or ext > highest[0]:
            highest = (ext, out.timestamp)


async def test_an_audio_forwarder_forwards_every_packet_for_hours_across_wraps_and_an_ssrc_change() -> None:
    """220,000 Opus packets (73 min of audio) in two publisher streams, each starting near a
    sequence wrap, the first also near a timestamp wrap, with 1 % loss, 1 % reordering, and
    two packets from before each start arriving after it. Every packet but those two goes
    out exactly once, numbered continuously. Before the fix the forwarder stopped 32,768
    packets after its start (``uint16_gt(first_in_seq, seq)`` turned true) and never resumed:
    this test then failed with 32,768 of ~217,800 forwarded."""
    rng = random.Random(1)
    forwarder, wire, extensions, _ = await make_forwarder("audio", [OPUS])
    first = stream(1, 120_000, 0x1111, 65_000, WRAP32 - 48000 * 5, 960, lambda i: i.to_bytes(4, "big", signed=True), rng, early=2)
    second = stream(2, 100_000, 0x2222, 65_500, 123_456, 960, lambda i: b"B" + i.to_bytes(4, "big", signed=True), rng, early=2)
    arrived = [*first, *second]
    pairs = await drive(forwarder, wire, extensions, arrived)

    expected = [s for s in arrived if s.index >= 0]
    assert [s for s, _ in pairs] == expected, "a packet that should pass was dropped (or one from before the start passed)"
    assert all(out.payload == s.packet.payload for s, out in pairs)
    assert all(out.ssrc == forwarder._sender._ssrc and out.payload_type == 111 for _, out in pairs[:: 997])
    check_continuous(pairs, 48000)
    assert len(pairs) > LONG and forwarder.forwarded == len(pairs)


VP8_KEY = b"\x10\x00\x9d\x01\x2a"  # S=1, partition 0; frame tag with P=0 (keyframe)
VP8_DELTA = b"\x10\x01\x00\x00\x00"  # S=1, P=1
VP8_MORE = b"\x00\x01\x00\x00\x00"  # a later packet of the same frame


def vp8_payload(gop_frames: int, tag: bytes = b"") -> Callable[[int], bytes]:
    """Three packets per frame; every ``gop_frames`` frames a keyframe; the index makes each unique."""

    def payload(index: int) -> bytes:
        frame, part = divmod(index, 3)
        head = VP8_MORE if part else VP8_KEY if frame % gop_frames == 0 else VP8_DELTA
        return head + tag + index.to_bytes(4, "big", signed=True)

    return payload


async def test_a_video_forwarder_answers_nacks_with_the_right_packet_as_rtx_for_200k_packets() -> None:
    """210,000 VP8 packets across three sequence wraps and an SSRC change; the receiver NACKs
    every packet just after it went out (≥ 200,000 retransmissions) and every lost one. Each
    answer is RTX with the next RTX sequence number (continuous mod 2^16) carrying the right
    original number and payload; lost numbers are never answered. One history slot is never
    refilled after a point (every 512th packet lost from index 2,000 on): before the fix, the
    NACK for that slot's number one wrap later was answered with the packet sent 65,536
    numbers earlier (and the forwarder stopped forwarding after 32,768 packets)."""
    rng = random.Random(2)
    forwarder, wire, extensions, _ = await make_forwarder("video", [VP8, VP8_RTX])
    rtx_ssrc = forwarder._sender._rtx_ssrc
    phase = 100

    def lossy(packets: Iterator[Sent]) -> Iterator[Sent]:
        return (s for s in packets if not (s.index > 2000 and s.index % 512 == phase))

    arrived = [
        *lossy(stream(1, 140_000, 0xAAAA, 60_000, 1000, 3000, vp8_payload(60), rng, loss=0.0, reorder=0.0)),
        *lossy(stream(2, 70_000, 0xBBBB, 10, 5, 3000, vp8_payload(60, b"B"), rng, loss=0.0, reorder=0.0)),
    ]
    rtx_seqs: list[int] = []
    stale_answers = lost_nacks = 0
    pairs: list[tuple[Sent, RtpPacket]] = []
    seq_base: dict[int, int] = {}
    for sent in arrived:
        forwarder.put(sent.packet)
        await asyncio.sleep(0)
        (out,) = wire.take(extensions)
        pairs.append((sent, out))
        seq_base.setdefault(sent.stream, (out.sequence_number - sent.index) % WRAP16)
        await forwarder.retransmit(out.sequence_number)
        (rtx,) = wire.take(extensions)
        assert (rtx.ssrc, rtx.payload_type) == (rtx_ssrc, 97)
        assert int.from_bytes(rtx.payload[:2], "big") == out.sequence_number and rtx.payload[2:] == out.payload
        rtx_seqs.append(rtx.sequence_number)
        if sent.index > 2000 and sent.index % 512 == phase + 1:  # the receiver NACKs the lost one
            await forwarder.retransmit((seq_base[sent.stream] + sent.index - 1) % WRAP16)
            answered = wire.take(extensions)
            stale_answers += len(answered)
            lost_nacks += 1
    assert forwarder.dropped == 0
    assert stale_answers == 0, f"{stale_answers} NACKs for lost packets were answered with a packet a wrap older"
    assert lost_nacks > 300
    assert len(pairs) == len(arrived) > LONG
    check_continuous(pairs, 90000)
    assert len(rtx_seqs) > LONG
    assert all((b - a) % WRAP16 == 1 for a, b in zip(rtx_seqs, rtx_seqs[1:], strict=False)), "the RTX sequence is not continuous"
    assert forwarder.retransmitted == len(rtx_seqs)


async def test_a_video_forwarder_waits_for_keyframes_after_start_ssrc_change_and_a_jump() -> None:
    """210,000 VP8 packets: the stream starts mid-GOP, later the publisher's SSRC changes
    (mid-GOP again) and then its numbering jumps by 20,000 (a restarted encoder). Each time
    nothing goes out until the first packet of a keyframe, the forwarder asks for one
    while it waits, and from the keyframe on every packet (1 % loss, 1 % reordering) goes
    out, numbered on without a gap. Before the fix forwarding stopped 32,768 packets after
    each start, and a jump within one SSRC was forwarded as is (a 20,000-number gap)."""
    rng = random.Random(3)
    forwarder, wire, extensions, requests = await make_forwarder("video", [VP8, VP8_RTX])
    gop = 90  # frames: 270 packets between keyframes
    first = list(stream(1, 90_000, 0x0101, 65_400, WRAP32 - 900_000, 3000, vp8_payload(gop), rng))
    second = list(stream(2, 60_000, 0x0202, 30_000, 77, 3000, vp8_payload(gop, b"B"), rng))
    jumped = list(stream(3, 60_000, 0x0202, 50_000, 180_077 + 3000 * 30_000, 3000, vp8_payload(gop, b"J"), rng))
    first, second, jumped = first[100:], second[1000:], jumped[130:]  # each begins mid-GOP
    arrived = [*first, *second, *jumped]
    pairs = await drive(forwarder, wire, extensions, arrived)

    expected = []
    for part in (first, second, jumped):
        key = next(i for i, s in enumerate(part) if s.packet.payload.startswith(VP8_KEY))
        expected += part[key:]
    assert [s for s, _ in pairs] == expected
    check_continuous(pairs, 90000)
    munger = forwarder._munger
    assert munger is not None and munger.jumps == 1
    assert forwarder.waited_for_keyframe + munger.jump_dropped == len(arrived) - len(expected)
    assert len(requests) == forwarder.waited_for_keyframe > 0
    assert len(pairs) > LONG - 10_000 and len(arrived) > LONG


async def test_a_video_forwarder_never_starts_on_a_keyframe_it_already_skipped_part_of() -> None:
    """The first packet of a keyframe is lost on the way in and comes back late (RTX) after
    the rest of that picture was skipped while waiting: starting there would give the
    receiver a picture that can never be completed, and nothing after it decodes. The
    forwarder waits for the next keyframe instead. 3,000 stream starts (a new SSRC each, mid-
    GOP), half of them with such a late first packet, ~220,000 packets across sequence wraps.
    Before the fix every late one started on the broken keyframe."""
    rng = random.Random(9)
    forwarder, wire, extensions, requests = await make_forwarder("video", [VP8, VP8_RTX])
    gop = 10  # frames: 30 packets between keyframes
    payload = vp8_payload(gop)
    index, late_rounds = 7, 0
    for round_ in range(3000):
        key = index + (-index) % (3 * gop)  # the next keyframe's first packet
        late = rng.random() < 0.5
        late_rounds += late
        order = list(range(index, key + 3 * gop * 2))
        if late:
            order.remove(key)
            order.insert(order.index(key + 2) + 1, key)
        first: int | None = None
        for n in order:
            forwarder.put(RtpPacket(payload_type=96, sequence_number=(60_000 + n) % WRAP16,
                                    timestamp=(n // 3) * 3000 % WRAP32, ssrc=round_ + 1, payload=payload(n)))
            await asyncio.sleep(0)
            if wire.take(extensions) and first is None:
                first = n
        assert first == (key + 3 * gop if late else key), (round_, late, first, key)
        index = key + 3 * gop * 2 + rng.randrange(1, 3 * gop)  # the next start is mid-GOP again
    assert 1000 < late_rounds < 2000
    assert forwarder.waited_for_keyframe > 0 and len(requests) == forwarder.waited_for_keyframe
    assert index > 3 * WRAP16


# -- agent tracks: Opus timestamps, the playout clock and queue ---------------------------------


class FakeTime:
    """A clock the test moves; ``sleep`` jumps it forward (time compressed, order kept)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def talk_and_pause(rng: random.Random, frames: int, start: float) -> Iterator[float]:
    """Times at which 20 ms frames are handed in: talk spurts of 1–10 s, pauses of 0.15–4.3 s."""
    now, left = start, frames
    while left > 0:
        spurt = min(left, rng.randrange(50, 500))
        for k in range(spurt):
            yield now + k * 0.02 + rng.uniform(0, 0.003)  # a tick's deadline and its scheduling delay
        left -= spurt
        now += spurt * 0.02 + rng.uniform(0.15, 4.3)


def test_agent_track_timestamps_follow_the_clock_for_hours_through_aiortcs_packer() -> None:
    """200,000 Opus packets with 800-odd pauses (about 4 h of talk and silence): the RTP
    timestamp aiortc's sender makes of each pts (its ``pack`` and a random origin near the
    32-bit wrap) steps 960 while audio flows, never steps back, and stays within a frame of
    the clock. (The old packetizer added ``int(gap / 0.02 - 1)`` frames per pause, losing up
    to 20 ms each time: after 800 pauses its timestamps lagged ~8 s behind the clock.)"""
    rng = random.Random(4)
    timing = LivePts()
    packer = AiortcOpusEncoder()
    origin = WRAP32 - 48000 * 60  # aiortc's sender adds a random origin; this one wraps after a minute
    previous: tuple[float, int] | None = None
    worst = 0.0
    wraps = 0
    start = 5000.0
    for now in talk_and_pause(rng, LONG, start):
        timing.tick(now)
        packet = av_packet(timing.take())
        _, rtp_pts = packer.pack(packet)
        timestamp = uint32_add(origin, rtp_pts)
        if previous is not None:
            gap, step = now - previous[0], (timestamp - previous[1]) % WRAP32
            wraps += timestamp < previous[1]
            assert 0 < step < WRAP32 // 2, "the timestamp stepped back"
            if gap < 0.1:
                assert step == 960
        worst = max(worst, abs(rtp_pts / 48000 - (now - start)))
        previous = (now, timestamp)
    assert wraps >= 1
    assert worst < 0.035, f"timestamps drifted {worst:.3f} s from the clock"  # a frame and the delay, no pile-up


def av_packet(pts: int) -> av.Packet:
    packet = av.Packet(b"\xf8\xff\xfe")
    packet.pts = pts
    packet.time_base = fractions.Fraction(1, 48000)
    return packet


def test_the_opus_packetizer_keeps_its_timestamps_on_the_clock_across_pauses() -> None:
    """The real packetizer (libopus) for 6,000 frames with ~20 pauses on an injected clock:
    packets' pts stay within a frame (plus the encoder's one-packet delay) of the clock.
    The old per-pause truncation fell 0.2 s behind (checked by patching its time.monotonic)."""
    rng = random.Random(5)
    now = [1000.0]
    packetizer = OpusPacketizer(clock=lambda: now[0])
    frame = (3000 * np.sin(np.arange(960) * 0.05)).astype(np.int16)
    worst = 0.0
    pauses = 0
    last = now[0]
    for at in talk_and_pause(rng, 6000, 1000.0):
        pauses += at - last > 0.1
        last = now[0] = at
        for packet in packetizer.encode(frame):
            assert packet.pts is not None
            worst = max(worst, abs(packet.pts / 48000 - (at - 1000.0)))
    assert pauses > 10
    assert worst < 0.06, f"pts drifted {worst:.3f} s from the clock"


async def test_the_playout_clock_ticks_on_exact_deadlines_for_hours() -> None:
    """200,000 ticks (67 min) on a monotonic clock that reads 10^6 s (a machine up 12 days),
    with one 0.5 s stall: every deadline is the anchor plus n × 20 ms to the nanosecond, and
    the stall skips the 24 slots that passed (one catch-up) instead of bursting or moving the
    schedule. (The old running sum ``deadline += 0.02`` was off by microseconds after an
    hour; each addition rounds at 10^6 s.)"""
    clock = FakeTime(1_000_000.0)
    ticks = PlayoutClock(clock=clock, sleep=clock.sleep)
    deadlines: list[float] = []
    skips: list[int] = []
    done = asyncio.Event()

    class Player:
        def tick(self, deadline: float) -> bool:
            deadlines.append(deadline)
            if len(deadlines) == 100_000:
                clock.now += 0.5  # a stall: the loop wakes half a second late
            if len(deadlines) >= LONG + 1:
                done.set()
                return False
            return True

        def skip(self, frames: int) -> int:
            skips.append(frames)
            return 0

    ticks.add(Player())
    await asyncio.wait_for(done.wait(), 120)
    await ticks.close()
    assert (ticks.catchups, ticks.skipped_ticks, skips) == (1, 24, [24])
    anchor = deadlines[0]
    for n in (1, 1000, 50_000, 99_999, 100_000, 150_000, len(deadlines) - 1):
        slot = n + (24 if n >= 100_000 else 0)
        assert abs(deadlines[n] - (anchor + slot * FRAME_S)) < 1e-9, f"deadline {n} off by {deadlines[n] - anchor - slot * FRAME_S:.2e} s"
    assert deadlines[100_000] - deadlines[99_999] == pytest.approx(0.5, abs=1e-6)


def stereo_bytes(first_byte: int, size: int) -> bytes:
    """Bytes [first_byte, first_byte + size) of a 16-bit stereo stream: sample n is (n, 3n) mod 30011."""
    first = first_byte // 4
    n = np.arange(first, (first_byte + size + 3) // 4)
    data = np.stack([n % 30011, (3 * n) % 30011], axis=1).astype("<i2").tobytes()
    offset = first_byte - first * 4
    return data[offset : offset + size]


def test_pcm_playout_hands_out_every_sample_of_hours_of_odd_chunks() -> None:
    """200,000 frames (67 min) of 16 kHz stereo PCM pushed in chunks of odd byte lengths
    (chunks end mid-sample): every mono sample comes out, in order, none dropped."""
    rng = random.Random(6)
    fmt = PcmFormat(16000, 2)
    playout = PcmPlayout(fmt)
    total = LONG * fmt.frame_bytes
    pushed = produced = 0
    while produced < LONG:
        while pushed < total and playout.queued_seconds < 0.5:
            chunk = stereo_bytes(pushed, min(total - pushed, rng.randrange(1, 3000) | 1))
            playout.push(chunk)
            pushed += len(chunk)
        frame = playout.next_frame(0.0, False)
        assert frame is not None, f"no frame {produced} with {playout.queued_seconds:.3f} s queued"
        n = np.arange(produced * fmt.frame_samples, (produced + 1) * fmt.frame_samples)
        expect = (((n % 30011) + ((3 * n) % 30011)) // 2).astype(np.int16)
        assert np.array_equal(frame, expect), f"frame {produced} differs"
        produced += 1
    assert not playout.has_pending() and playout.stats.overflow_dropped_chunks == 0


# -- the publisher side: the RTP tap and aiortc's jitter buffer ---------------------------------


def test_the_tap_feeds_aiortcs_jitter_buffer_across_wraps_and_restarts_it_on_a_new_ssrc() -> None:
    """220,000 audio packets through ``RtpTap`` into aiortc's ``JitterBuffer`` (capacity 16,
    prefetch 1, as shoal's agents use it) across three sequence wraps, with 1 % reordering
    and a new SSRC whose numbers start 10 below the old stream's: every frame the tap
    forwards, and the buffer hands out every frame in order, in both streams, but for the
    last few of each stream (still held back when it ends: aiortc's buffer releases one
    frame per packet, so each reordering adds a frame of lag, up to its capacity). Before
    the fix the tap kept the buffer, which then discarded the new stream's first packets
    as misordered; aiortc's buffer itself handles the wraps."""
    rng = random.Random(7)
    forwarded: list[int] = []
    frames: list[int] = []

    def make_buffer() -> JitterBuffer:
        return JitterBuffer(capacity=16, prefetch=1)

    tap = RtpTap(lambda packet: forwarded.append(packet.sequence_number), lambda: True, make_buffer)
    sent = 0
    for number, (ssrc, seq0, count) in enumerate(((0x51, 65_000, 120_000), (0x52, (65_000 + 120_000 - 10) % WRAP16, 100_000))):
        order = list(range(count))
        for i in range(1, count - 2):
            if rng.random() < 0.01:
                order[i], order[i + 1] = order[i + 1], order[i]
        for index in order:
            packet = RtpPacket(payload_type=111, sequence_number=(seq0 + index) % WRAP16, timestamp=(index * 960) % WRAP32, ssrc=ssrc)
            packet._data = (number << 24 | index).to_bytes(4, "big")  # type: ignore[attr-defined]
            _, frame = tap.add(packet)
            sent += 1
            if frame is not None:
                frames.append(int.from_bytes(frame.data, "big"))
    assert len(forwarded) == sent == 220_000
    firsts = [(n << 24 | i) for n, count in ((0, 120_000), (1, 100_000)) for i in range(count - 1)]
    missing = sorted(set(firsts) - set(frames))
    assert frames == sorted(frames), "frames out of order"
    tails = [i for n, count in ((0, 120_000), (1, 100_000)) for i in range(n << 24 | (count - 16), n << 24 | count)]
    assert set(missing) <= set(tails), f"{len(missing)} frames lost, the first {missing[:5]}"


async def test_nacks_are_answered_and_numbering_holds_when_the_wall_clock_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """An hours-long call sees the wall clock stepped by NTP. 1,100 VP8 packets with the wall
    clock (aiortc's ``current_ntp_time``) stepped forward by an hour before packet 1,050:
    the 50 packets sent just before the step are still answered when NACKed after it. Before
    the fix the history aged packets on the wall clock, so none of them was."""
    import shoal.media.forward as forward

    offset = [0]
    real = forward.current_ntp_time
    monkeypatch.setattr(forward, "current_ntp_time", lambda: real() + offset[0])
    forwarder, wire, extensions, _ = await make_forwarder("video", [VP8, VP8_RTX])
    sent_out: list[RtpPacket] = []
    for sent in stream(1, 1100, 0x77, 65_000, 0, 3000, vp8_payload(30), random.Random(5), loss=0.0, reorder=0.0):
        if sent.index == 1050:
            offset[0] += 3600 << 32  # NTP time: seconds in the upper 32 bits
        forwarder.put(sent.packet)
        await asyncio.sleep(0)
        (out,) = wire.take(extensions)
        sent_out.append(out)
    for out in sent_out[1000:1050]:
        await forwarder.retransmit(out.sequence_number)
    answers = wire.take(extensions)
    assert [int.from_bytes(rtx.payload[:2], "big") for rtx in answers] == [o.sequence_number for o in sent_out[1000:1050]]
    seqs = [o.sequence_number for o in sent_out]
    assert all((b - a) % WRAP16 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
