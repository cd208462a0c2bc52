"""Playout budget and stall catch-up without sockets (issue 10: memory per agent/server, stalls).

* The budget charges every queued byte at its track, agent and server, and returns it as the
  byte leaves the queue however it leaves — played, dropped late, interrupted, track ended —
  so after hundreds of thousands of operations an idle server's budget is exactly zero.
* The playout clock keeps its schedule through a stall: after a 5 s stall (an injected
  clock) the frame played is the one due now, within 200 ms, and the frames dropped are
  exactly the slots skipped.
"""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from shoal.media.budget import UNITS_PER_S, BudgetLimits, PlayoutBudget, TrackBudget
from shoal.media.clock import FRAME_S, PlayoutClock
from shoal.media.fanout import PcmOut, TrackFanout
from shoal.media.opus import OpusEncoder, max_packet_bytes, packet_samples
from shoal.media.outgoing import OutgoingAudio
from shoal.media.pcm import PcmFormat
from shoal.media.playout import OpusPlayout, PcmPlayout, Playout
from tests.shoal.test_long_call_units import FakeTime


def queued_bytes(playout: Playout) -> int:
    if isinstance(playout, PcmPlayout):
        return len(playout._queue)
    return sum(len(packet) for packet, _ in playout._packets)


def opus_packets(count: int) -> list[bytes]:
    encoder = OpusEncoder()
    t = np.arange(960 * count) / 48000
    pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return [p for start in range(0, len(pcm), 960) for p in encoder.encode(pcm[start : start + 960])]


def test_the_budget_returns_to_zero_after_200k_pushes_on_many_tracks_and_agents() -> None:
    """400,000 random operations — over 200,000 pushes, plays, late drops, interrupts and
    track ends — on 3 agents × 4 tracks (PCM in all six formats and Opus) under bounds small
    enough that every level overflows: at every check each level holds exactly what its
    queues hold and never more than its bound; at the end every level is back to 0 bytes, 0 s."""
    rng = random.Random(10)
    limits = BudgetLimits(track_seconds=0.5, track_bytes=20_000, agent_seconds=1.2, agent_bytes=50_000, server_bytes=90_000)
    causes: set[str] = set()
    budget = PlayoutBudget(limits, lambda cause, _: causes.add(cause))
    opus = opus_packets(50)
    formats = [PcmFormat(rate, ch) for rate in (16000, 24000, 48000) for ch in (1, 2)]
    agents = [budget.agent(f"agent-{a}") for a in range(3)]
    tracks: list[tuple[TrackBudget, Playout]] = []
    ended = pushes = 0

    def new_track(agent_index: int) -> tuple[TrackBudget, Playout]:
        track = agents[agent_index].track(f"t{len(tracks)}")
        if rng.random() < 0.3:
            return track, OpusPlayout(budget=track)
        return track, PcmPlayout(rng.choice(formats), budget=track)

    tracks = [new_track(a % 3) for a in range(12)]
    for step in range(400_000):
        i = rng.randrange(len(tracks))
        track, playout = tracks[i]
        action = rng.random()
        if action < 0.55:
            pushes += 1
            playout.push(rng.choice(opus) if isinstance(playout, OpusPlayout) else rng.randbytes(rng.randrange(1, 6000)))
        elif action < 0.85:
            playout.next_frame(rng.choice((0.0, 1.0)), rng.random() < 0.1)
        elif action < 0.95:
            playout.drop_frames(rng.randrange(1, 30))
        elif action < 0.99:
            playout.clear()
        else:  # the track ends (as OutgoingAudio does): queue dropped, share returned, a new one opens
            playout.clear()
            track.release_all()
            tracks[i] = new_track(agents.index(track.agent))
            ended += 1
        if step % 97 == 0:
            for track, playout in tracks:
                assert track.queued_bytes == queued_bytes(playout) <= limits.track_bytes
                assert track.queued_units <= limits.track_seconds * UNITS_PER_S
            for agent in agents:
                assert agent.queued_bytes == sum(t.queued_bytes for t, _ in tracks if t.agent is agent) <= limits.agent_bytes
            assert budget.queued_bytes == sum(t.queued_bytes for t, _ in tracks) <= limits.server_bytes
    assert pushes > 200_000 and budget.dropped_chunks > 1000 and ended > 1000
    assert causes == {f"playout.{cause}" for cause in ("track_seconds", "track_bytes", "agent_seconds", "agent_bytes",
                                                       "server_bytes")}, "every level overflowed"
    for track, playout in tracks:
        while playout.next_frame(1.0, True) is not None:
            pass
        track.release_all()
    for level in (budget, *agents):
        assert (level.queued_bytes, level.queued_units) == (0, 0), f"{level} leaked"
    assert sum(a.dropped_chunks for a in agents) == budget.dropped_chunks


def test_each_level_of_the_budget_refuses_what_would_go_over_it_and_says_which() -> None:
    notes: list[tuple[str, str]] = []
    budget = PlayoutBudget(
        BudgetLimits(track_seconds=1.0, track_bytes=40_000, agent_seconds=1.5, agent_bytes=70_000, server_bytes=100_000),
        lambda cause, message: notes.append((cause, message if isinstance(message, str) else message())),
    )
    a, b = budget.agent("a" * 100), budget.agent("b")
    mono16, stereo48 = PcmFormat(16000, 1), PcmFormat(48000, 2)  # 32,000 and 192,000 bytes a second
    a1, a2 = (PcmPlayout(mono16, budget=a.track(name)) for name in ("1", "2"))
    b1, b2 = (PcmPlayout(stereo48, budget=b.track(name)) for name in ("1", "2"))
    a1.push(bytes(32_000))
    a1.push(bytes(640))  # 1.02 s on track a1
    a2.push(bytes(12_800))
    a2.push(bytes(6_400))  # 1.6 s on agent a
    b1.push(bytes(36_000))
    b1.push(bytes(5_000))  # 41,000 bytes on track b1
    b2.push(bytes(36_000))  # 72,000 bytes on agent b
    b2.push(bytes(24_000))  # 104,800 bytes on the server
    assert [cause for cause, _ in notes] == [
        "playout.track_seconds", "playout.agent_seconds", "playout.track_bytes", "playout.agent_bytes",
        "playout.server_bytes",
    ]
    assert "agent " + "a" * 64 + "…(+36) track 1: playout queue full (1 s per track)" in notes[0][1]
    assert "(100000 bytes per server)" in notes[-1][1]
    assert (a.dropped_chunks, b.dropped_chunks, budget.dropped_chunks) == (2, 3, 5)
    assert (a1.stats.overflow_dropped_chunks, b2.stats.overflow_dropped_chunks) == (1, 2)
    assert budget.queued_bytes == 32_000 + 12_800 + 36_000


@pytest.mark.parametrize("frames", [1, 2, 3, 48])
def test_an_opus_packet_larger_than_rfc_6716_allows_is_refused(frames: int) -> None:
    toc = {1: bytes([0xF8]), 2: bytes([0xF9])}.get(frames, bytes([0x83, frames]))  # 20 ms CELT, 2.5 ms for code 3
    limit = max_packet_bytes(frames)
    assert limit == 1277 * frames + 2
    assert packet_samples(toc.ljust(limit, b"\0")) > 0
    with pytest.raises(ValueError, match="exceeds RFC 6716"):
        packet_samples(toc.ljust(limit + 1, b"\0"))


class Listener:
    """Receives a track's frames and notes the clock's time at each."""

    def __init__(self, clock: FakeTime) -> None:
        self.clock = clock
        self.frames: list[tuple[float, int]] = []  # (time, index written in the frame's samples)
        self.stall_at: int | None = None
        self.stall_s = 0.0

    def deliver(self, message: bytes) -> None:
        pcm = np.frombuffer(message, dtype="<i2")
        assert len(set(pcm.tolist())) == 1
        self.frames.append((self.clock.now, int(pcm[0])))
        if len(self.frames) == self.stall_at:
            self.clock.now += self.stall_s  # the event loop was blocked this long


def indexed_frames(count: int, fmt: PcmFormat) -> bytes:
    """``count`` 20 ms frames whose samples are all the frame's index."""
    return np.repeat(np.arange(count, dtype="<i2"), fmt.frame_bytes // 2).tobytes()


async def test_after_a_5_s_stall_playout_is_back_on_schedule_and_drops_exactly_the_skipped_frames() -> None:
    """30 s queued at once, a 5 s stall after frame 200: the frames played afterwards are the
    ones due (within 200 ms of the schedule: never the 5 s behind a re-anchoring clock left
    them), the frames dropped equal the slots skipped, and the track's budget ends at 0."""
    clock = FakeTime(5000.0)
    ticks = PlayoutClock(clock=clock, sleep=clock.sleep)
    fmt = PcmFormat(16000, 1)
    budget = PlayoutBudget().agent("a").track("t")
    playout = PcmPlayout(fmt, budget=budget)
    listener = Listener(clock)
    listener.stall_at, listener.stall_s = 200, 5.0
    fanout = TrackFanout(16000, lambda pcm: pcm)
    fanout.attach("listener", PcmOut(16000), listener.deliver)
    done = asyncio.Event()
    track = OutgoingAudio("t", playout, fanout, ticks, done.set)
    track.push(indexed_frames(1500, fmt))
    track.finish()
    await asyncio.wait_for(done.wait(), 60)
    await ticks.close()

    start = listener.frames[0][0]
    worst = max(abs(at - (start + index * FRAME_S)) for at, index in listener.frames)
    assert worst <= 0.2, f"a frame played {worst:.2f} s off its schedule"
    indices = [index for _, index in listener.frames]
    gaps = [later - earlier - 1 for earlier, later in zip(indices, indices[1:], strict=False) if later != earlier + 1]
    assert ticks.catchups == 1 and gaps == [ticks.skipped_ticks]
    assert ticks.skipped_ticks >= (5.0 - 0.2) / FRAME_S
    assert playout.stats.late_dropped_frames == ticks.late_dropped_frames == ticks.skipped_ticks
    assert len(indices) + ticks.skipped_ticks == 1500
    assert (budget.queued_bytes, budget.agent.server.queued_bytes) == (0, 0)


async def test_an_opus_track_drops_late_packets_whole_and_stays_on_schedule() -> None:
    clock = FakeTime(10.0)
    ticks = PlayoutClock(clock=clock, sleep=clock.sleep)
    server = PlayoutBudget()
    playout = OpusPlayout(budget=server.agent("a").track("t"))
    played: list[float] = []

    def deliver(message: bytes) -> None:
        played.append(clock.now)
        if len(played) == 50:
            clock.now += 2.0

    fanout = TrackFanout(48000, lambda pcm: pcm)
    fanout.attach("listener", PcmOut(48000), deliver)
    done = asyncio.Event()
    track = OutgoingAudio("t", playout, fanout, ticks, done.set)
    for packet in opus_packets(500):
        track.push(packet)
    track.finish()
    await asyncio.wait_for(done.wait(), 60)
    await ticks.close()
    assert playout.stats.late_dropped_frames == ticks.skipped_ticks >= 90
    assert len(played) + ticks.skipped_ticks == 500
    assert played[-1] - played[0] == pytest.approx(499 * FRAME_S, abs=0.2)
    assert server.queued_bytes == 0
