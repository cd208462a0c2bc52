"""A publisher's SSRC change: late packets of the replaced stream must not restart anything."""

from __future__ import annotations

import random

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from shoal.media.forward import RtpTap
from shoal.media.keyframes import keyframe_start
from shoal.media.ssrc import RETIRED_FOR_S, RETIRED_KEPT, Arrival, SsrcTracker

from .test_long_call_units import VP8, VP8_KEY, VP8_RTX, Sent, drive, make_forwarder, vp8_payload

WRAP16 = 1 << 16


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_tracker_matches_a_reference_over_300k_packets_and_stays_bounded() -> None:
    """300,000 arrivals from a pool of 12 SSRCs, the clock moving by random steps: every
    answer equals a reference written from the rules (current; a replaced SSRC is stale
    for RETIRED_FOR_S; otherwise new), except that the tracker may forget retired SSRCs
    beyond its RETIRED_KEPT newest — which it must, to stay bounded."""
    rng = random.Random(11)
    clock = Clock()
    tracker = SsrcTracker(clock)
    current: int | None = None
    retired: dict[int, float] = {}
    counts = {a: 0 for a in Arrival}
    for _ in range(300_000):
        clock.now += rng.choice((0.0, 0.001, 0.02, 0.5, 3.0))
        ssrc = current if current is not None and rng.random() < 0.9 else rng.randrange(12)
        got = tracker.arrive(ssrc)
        newest = sorted(retired, key=retired.__getitem__)[-RETIRED_KEPT:]
        if ssrc == current:
            want = Arrival.CURRENT
        elif ssrc in newest and clock.now - retired[ssrc] < RETIRED_FOR_S:
            want = Arrival.STALE
        else:
            want = Arrival.NEW
            retired.pop(ssrc, None)
            if current is not None:
                retired[current] = clock.now
            current = ssrc
        assert got is want
        counts[got] += 1
        assert len(tracker._retired) <= RETIRED_KEPT
    assert tracker.current == current
    assert tracker.stale == counts[Arrival.STALE] > 1000
    assert tracker.changes == counts[Arrival.NEW] - 1 > 1000


def test_a_publisher_going_back_to_an_old_ssrc_later_is_followed() -> None:
    clock = Clock()
    tracker = SsrcTracker(clock)
    assert tracker.arrive(1) is Arrival.NEW
    assert tracker.arrive(2) is Arrival.NEW
    clock.now += RETIRED_FOR_S - 0.1
    assert tracker.arrive(1) is Arrival.STALE
    clock.now += 0.2
    assert tracker.arrive(1) is Arrival.NEW and tracker.current == 1
    assert tracker.arrive(2) is Arrival.STALE  # 2 was just replaced in turn


def vp8_stream(ssrc: int, count: int, seq0: int, tag: bytes, number: int) -> list[Sent]:
    payload = vp8_payload(30, tag)
    sent = []
    for i in range(count):
        packet = RtpPacket(payload_type=96, sequence_number=(seq0 + i) % WRAP16,
                           timestamp=(i // 3) * 3000, ssrc=ssrc, payload=payload(i))
        packet._data = packet.payload  # type: ignore[attr-defined]  # aiortc's depayloader sets this
        sent.append(Sent(number, i, packet))
    return sent


async def test_late_packets_of_a_replaced_stream_do_not_restart_the_forwarder_or_decoder() -> None:
    """A video publisher changes SSRC; eight packets of the old stream, delayed in the
    network, arrive among the first 200 of the new one. Through the tap into a real
    forwarder: every packet of both streams goes out, numbered on without a gap, and the
    late ones are dropped (and counted), not forwarded. The decoder's jitter buffer keeps
    the new stream, so its frames keep coming. Before the fix each late packet restarted
    the forwarder (which then waited for a keyframe and asked the publisher for one) and
    reset the jitter buffer: this test then failed with ~a GOP of the new stream missing."""
    forwarder, wire, extensions, requests = await make_forwarder("video", [VP8, VP8_RTX])
    old = vp8_stream(0x0A, 900, 65_000, b"A", 1)
    new = vp8_stream(0x0B, 2700, 20_000, b"B", 2)
    late = old[-8:]
    arrived = [*old[:-8], *new[:40], late[0], *new[40:60], *late[1:4], *new[60:200], *late[4:], *new[200:]]
    frames: list[bytes] = []

    def make_buffer() -> JitterBuffer:
        return JitterBuffer(capacity=128, is_video=True)

    tap = RtpTap(forwarder.put, lambda: True, make_buffer, lambda p: keyframe_start("VP8", p.payload))

    class ThroughTap:
        """Feeds each packet to the tap (which forwards it) and keeps what the decoder gets."""

        dropped = 0  # what drive() checks of a forwarder: this one's queue never fills

        def put(self, packet: RtpPacket) -> None:
            _, frame = tap.add(packet)
            if frame is not None:
                frames.append(frame.data)

    # drive() calls .put on what it is given and pairs what the forwarder sent
    pairs = await drive(ThroughTap(), wire, extensions, arrived)  # type: ignore[arg-type]
    sent_streams = [(s.stream, s.index) for s, _ in pairs]
    assert sent_streams == [(1, i) for i in range(892)] + [(2, i) for i in range(2700)]
    seqs = [out.sequence_number for _, out in pairs]
    assert all((b - a) % WRAP16 == 1 for a, b in zip(seqs, seqs[1:], strict=False)), "a gap in the numbering"
    assert tap.streams.stale == 8 and tap.streams.changes == 1
    assert forwarder.waited_for_keyframe == 0 and requests == []
    new_frames = [f for f in frames if f[len(VP8_KEY)] == ord("B")]
    assert len(new_frames) == 900 - 1, "the decoder lost frames of the new stream"  # the last is still held
