"""StaleGate: participants' audio judged on the sender's clock, through hours of a call.

Streams are simulated packet by packet (20 ms Opus at the 48 kHz RTP clock): arrival times
come from a seeded random network or a scripted fault, so each test drives hundreds of
thousands of packets through the gate in about a second and checks exactly which ones it
calls stale.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from shoal.media.lateness import RESYNC_S, StaleGate
from shoal.media.opus_in import OPUS_RTP_CLOCK, InboundAudioStats, InlineOpusDecoder
from shoal.testing.sources import encode_opus_tone
from tests.support.audio import dominant_frequency

STEP = 960  # RTP ticks per 20 ms packet
MAX_DELAY = 0.1


def rtp_ts(n: int, start: int = 0) -> int:
    return (start + n * STEP) & 0xFFFFFFFF


@pytest.mark.parametrize("drift_ppm", [-100.0, 0.0, 100.0])
def test_a_jittery_real_time_stream_is_never_stale_across_a_timestamp_wrap_and_clock_drift(drift_ppm: float) -> None:
    """300,000 packets (100 minutes), the 32-bit timestamp wrapping after 20 s, the network
    adding 0–60 ms of jitter, the sender's clock 100 ppm fast or slow (0.6 s over the call,
    six times the bound): nothing is stale."""
    rng = random.Random(int(drift_ppm) + 7)
    gate = StaleGate(MAX_DELAY, OPUS_RTP_CLOCK)
    start = (1 << 32) - 1000 * STEP
    stale = 0
    for n in range(300_000):
        arrival = 1000.0 + n * 0.02 * (1 + drift_ppm * 1e-6) + rng.uniform(0.0, 0.06)
        stale += gate.stale(rtp_ts(n, start), arrival)
    assert stale == 0
    assert gate.resyncs == 0


def test_a_ten_second_outage_delivered_at_once_keeps_only_its_freshest_packets() -> None:
    """The network holds a participant's packets for 10 s, then delivers all 500 together
    30 ms after the last was sampled (transit otherwise 20 ms): the 495 that are more than
    100 ms late are stale, the last 5 pass, and the stream after it is fresh at once —
    400 times over 2.4 hours (222,000 packets)."""
    gate = StaleGate(MAX_DELAY, OPUS_RTP_CLOCK)
    seq, in_bursts, elsewhere = 0, 0, 0
    for _ in range(400):
        for _ in range(50):  # 1 s in real time
            elsewhere += gate.stale(rtp_ts(seq), seq * 0.02 + 0.02)
            seq += 1
        release = (seq + 499) * 0.02 + 0.03
        for _ in range(500):
            in_bursts += gate.stale(rtp_ts(seq), release)
            seq += 1
        for _ in range(5):
            elsewhere += gate.stale(rtp_ts(seq), seq * 0.02 + 0.02)
            seq += 1
    assert elsewhere == 0
    assert in_bursts == 400 * 495
    assert gate.resyncs == 0, "a burst that arrives at once never looks like a change of the sender's timing"


def test_a_sender_whose_timestamps_fall_behind_real_time_is_followed_after_the_resync_time() -> None:
    """The sender pauses 5 s without advancing its timestamps, so every later packet looks 5 s
    late: the packets of the first RESYNC_S are dropped, then the gate takes the new timing
    and drops nothing more over the next 33 minutes."""
    gate = StaleGate(MAX_DELAY, OPUS_RTP_CLOCK)

    def arrival(n: int) -> float:
        return n * 0.02 + (5.0 if n >= 1000 else 0.0)

    verdicts = [gate.stale(rtp_ts(n), arrival(n)) for n in range(100_000)]
    resync_at = next(n for n in range(1000, 100_000) if arrival(n) - arrival(1000) >= RESYNC_S)
    assert not any(verdicts[:1000])
    assert all(verdicts[1000:resync_at])
    assert not any(verdicts[resync_at:])
    assert resync_at - 1000 == pytest.approx(RESYNC_S / 0.02, abs=1)
    assert gate.resyncs == 1


def test_a_stall_of_the_server_drops_what_waited_too_long_and_nothing_else() -> None:
    """Every 10 s the server stops reading for 400 ms, then reads the backlog at once (5.41 s
    into the period): the 16 packets sampled over 100 ms before that are stale, the 4 after
    them and every other packet are not — 500 stalls, 250,000 packets."""
    gate = StaleGate(MAX_DELAY, OPUS_RTP_CLOCK)
    stale = []
    for n in range(250_000):
        period, slot = divmod(n, 500)  # 500 packets per 10 s
        read = period * 10.0 + 5.41 if 250 <= slot < 270 else n * 0.02
        if gate.stale(rtp_ts(n), 1.0 + read):
            stale.append(slot)
    assert len(stale) == 500 * 16
    assert set(stale) == set(range(250, 266))
    assert gate.resyncs == 0


def test_the_decoder_drops_stale_packets_undecoded_and_counts_them_apart_from_loss() -> None:
    """Through InlineOpusDecoder with a 1 s bound: of 150 packets held up 3 s and then
    delivered at once, all but the last second's 50 are stale (not lost); the frames that are
    delivered are the tone."""
    tone = encode_opus_tone(440.0, 1.0)

    class Packet:
        def __init__(self, seq: int) -> None:
            self.sequence_number, self.timestamp, self.payload = seq & 0xFFFF, rtp_ts(seq), tone[seq % len(tone)]

    now = [0.0]
    stats, frames = InboundAudioStats(), []
    decoder = InlineOpusDecoder(lambda samples, rate: frames.append(samples), stats, max_delay_s=1.0, clock=lambda: now[0])
    for seq in range(100):
        now[0] = seq * 0.02
        decoder.add(Packet(seq))
    now[0] = 249 * 0.02 + 0.01  # packets 100..249 arrive together, 10 ms after the last was sampled
    for seq in range(100, 250):
        decoder.add(Packet(seq))
    assert stats.stale == 100
    assert (stats.lost, stats.late, stats.malformed) == (0, 0, 0)
    assert stats.frames == len(frames) == 150
    assert abs(dominant_frequency(np.concatenate(frames[-30:]), 48000) - 440) < 5
