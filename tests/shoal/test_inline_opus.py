"""InlineOpusDecoder: participants' Opus decoded as it arrives, through hours of sequence numbers.

Driven with hundreds of thousands of real Opus packets (a 440 Hz tone, looped): every
in-order packet is decoded into the tone, across several 16-bit sequence wraps; duplicates
and reordered packets are dropped as ``late``, gaps counted as ``lost``, garbage as
``malformed`` — and the audio after each fault is the tone again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shoal.media.opus_in import RESYNC_AFTER, InboundAudioStats, InlineOpusDecoder
from shoal.testing.sources import encode_opus_tone
from tests.support.audio import dominant_frequency, rms

TONE = encode_opus_tone(440.0, 1.0)  # 50 packets of 20 ms


@dataclass
class Packet:
    sequence_number: int
    payload: bytes


class Collector:
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.rates: set[int] = set()

    def __call__(self, samples: np.ndarray, rate: int) -> None:
        self.frames.append(samples.copy())
        self.rates.add(rate)

    def tail(self, frames: int = 25) -> np.ndarray:
        return np.concatenate(self.frames[-frames:])


def test_every_in_order_packet_is_decoded_across_sequence_wraps() -> None:
    stats, out = InboundAudioStats(), Collector()
    decoder = InlineOpusDecoder(out, stats)
    total = 300_000  # 100 minutes of audio; the 16-bit sequence wraps four times
    start = 65_000
    for n in range(total):
        decoder.add(Packet((start + n) & 0xFFFF, TONE[n % len(TONE)]))
        if n % 50_000 == 49_999:
            assert abs(dominant_frequency(out.tail(), 48000) - 440) < 5
            assert {len(frame) for frame in out.frames} == {960}, "one 20 ms frame at 48 kHz per packet"
            out.frames.clear()  # bounded memory in the test too
    assert (stats.frames, stats.late, stats.lost, stats.malformed) == (total, 0, 0, 0)
    assert out.rates == {48000}


def test_packets_are_decoded_straight_at_the_rate_the_receivers_want_and_follow_its_changes() -> None:
    """libopus synthesises at the agents' rate: 320 samples per packet at 16 kHz, the tone intact."""
    stats, out = InboundAudioStats(), Collector()
    wanted = [16000]
    decoder = InlineOpusDecoder(out, stats, rate=lambda: wanted[0])
    seq = 0
    for rate in (16000, 24000, 48000, 16000):
        wanted[0] = rate
        out.frames.clear()
        out.rates.clear()
        for n in range(100):
            decoder.add(Packet(seq & 0xFFFF, TONE[n % len(TONE)]))
            seq += 1
        assert out.rates == {rate}
        assert {len(frame) for frame in out.frames} == {rate // 50}
        tail = out.tail()
        assert abs(dominant_frequency(tail, rate) - 440) < 5 and rms(tail) > 1000
    assert (stats.frames, stats.late, stats.lost, stats.malformed) == (400, 0, 0, 0)


def test_duplicates_reordering_gaps_and_garbage_are_counted_and_audio_resumes() -> None:
    stats, out = InboundAudioStats(), Collector()
    decoder = InlineOpusDecoder(out, stats)
    seq = 65_530
    for n in range(100):
        decoder.add(Packet(seq & 0xFFFF, TONE[n % len(TONE)]))
        seq += 1
    decoder.add(Packet((seq - 1) & 0xFFFF, TONE[0]))  # a duplicate
    decoder.add(Packet((seq - 5) & 0xFFFF, TONE[0]))  # reordered behind its successors
    seq += 10  # ten packets lost
    decoder.add(Packet(seq & 0xFFFF, b"\xff" * 3))  # not Opus that decodes
    seq += 1
    for n in range(50):
        decoder.add(Packet(seq & 0xFFFF, TONE[n % len(TONE)]))
        seq += 1
    assert (stats.late, stats.lost, stats.malformed) == (2, 10, 1)
    assert stats.frames == 150
    tail = out.tail()
    assert abs(dominant_frequency(tail, 48000) - 440) < 5 and rms(tail) > 1000


def test_a_sender_that_jumps_its_numbering_back_is_followed_after_a_second() -> None:
    stats, out = InboundAudioStats(), Collector()
    decoder = InlineOpusDecoder(out, stats)
    for n in range(100):
        decoder.add(Packet(40_000 + n, TONE[n % len(TONE)]))
    for n in range(200):  # numbering restarted 20,000 behind: "late" until the decoder resyncs
        decoder.add(Packet(20_000 + n, TONE[n % len(TONE)]))
    assert stats.late == RESYNC_AFTER - 1
    assert stats.frames == 100 + 200 - (RESYNC_AFTER - 1)
    assert abs(dominant_frequency(out.tail(), 48000) - 440) < 5
