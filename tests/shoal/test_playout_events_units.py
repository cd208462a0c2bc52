"""Playout reports of an agent's outgoing track (shoal's ``PlayoutEvent`` extension), without sockets.

* A burst reports STARTED with its first frame, PROGRESS every 200 ms, FINISHED with its
  last frame, each in the tick that played the frame, with what is still queued.
* An interrupt answers INTERRUPTED with what it dropped; nothing plays after it.
* A chunk that leaves nothing to play while the track is silent is answered with FINISHED,
  so an agent counting its chunks is never left waiting.
* Over 300 000 frames of talk spurts, pauses, interrupts and a stall, the reports keep their
  grammar (STARTED, PROGRESS*, FINISHED|INTERRUPTED), their played time matches the frames
  the listener got, and their chunk counts never go back.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from shoal.media.clock import FRAME_S, PlayoutClock
from shoal.media.fanout import PcmOut, TrackFanout
from shoal.media.outgoing import OutgoingAudio, PlayoutKind, PlayoutReport
from shoal.media.pcm import PcmFormat
from shoal.media.playout import PcmPlayout
from tests.shoal.test_long_call_units import FakeTime

FMT = PcmFormat(16000, 1)
K = PlayoutKind


class Rig:
    """One PCM track on a compressed-time playout clock, a listener and the reports."""

    def __init__(self, stall_at: int | None = None, stall_s: float = 0.0) -> None:
        self.clock = FakeTime(1000.0)
        self.ticks = PlayoutClock(clock=self.clock, sleep=self.clock.sleep)
        self.frames: list[float] = []  # when the listener got each frame
        self.reports: list[tuple[float, PlayoutReport]] = []
        self._stall_at, self._stall_s = stall_at, stall_s
        fanout = TrackFanout(FMT.sample_rate, lambda pcm: pcm)
        fanout.attach("listener", PcmOut(FMT.sample_rate), self._deliver)
        self.playout = PcmPlayout(FMT)
        self.track = OutgoingAudio(
            "t", self.playout, fanout, self.ticks, on_report=lambda r: self.reports.append((self.clock.now, r))
        )

    def _deliver(self, frame: bytes) -> None:
        assert np.frombuffer(frame, "<i2").any(), "a frame of the tone must not be silent"
        self.frames.append(self.clock.now)
        if len(self.frames) == self._stall_at:
            self.clock.now += self._stall_s

    def kinds(self) -> list[PlayoutKind]:
        return [r.kind for _, r in self.reports]

    async def run_for(self, seconds: float) -> None:
        end = self.clock.now + seconds
        while self.clock.now < end:
            await self.clock.sleep(min(FRAME_S, end - self.clock.now))


def tone(seconds: float) -> bytes:
    t = np.arange(int(FMT.sample_rate * seconds)) / FMT.sample_rate
    return (8000 * np.sin(2 * np.pi * 440 * t) + 1).astype("<i2").tobytes()


async def test_a_burst_reports_started_progress_and_finished_in_the_ticks_that_played_its_frames() -> None:
    rig = Rig()
    audio = tone(1.0)
    for start in range(0, len(audio), 3200):  # ten chunks of 100 ms, sent at once
        rig.track.push(audio[start:start + 3200])
    await rig.run_for(1.5)
    await rig.ticks.close()

    assert len(rig.frames) == 50
    assert rig.kinds() == [K.STARTED, K.PROGRESS, K.PROGRESS, K.PROGRESS, K.PROGRESS, K.FINISHED]
    (started_at, started), *progress, (finished_at, finished) = rig.reports
    assert started_at == rig.frames[0] and finished_at == rig.frames[-1]
    assert started.queued_s == pytest.approx(0.98) and started.played_s == pytest.approx(0.02)
    for index, (at, report) in enumerate(progress, start=1):
        assert at == rig.frames[10 * index - 1]
        assert report.played_s == pytest.approx(0.2 * index)
        assert report.queued_s == pytest.approx(1.0 - 0.2 * index)
    assert finished.queued_s == 0 and finished.played_s == pytest.approx(1.0)
    assert {r.chunks for _, r in rig.reports} == {10}


async def test_an_interrupt_is_answered_with_what_it_dropped_and_nothing_plays_after_it() -> None:
    rig = Rig()
    rig.track.push(tone(3.0))
    await rig.run_for(0.5)
    played_before = len(rig.frames)
    rig.track.interrupt()
    await rig.run_for(0.5)
    await rig.ticks.close()

    assert len(rig.frames) == played_before
    at, report = rig.reports[-1]
    assert report.kind is K.INTERRUPTED and at == rig.clock.now - 0.5
    assert report.dropped_s == pytest.approx(3.0 - 0.02 * played_before)
    assert report.queued_s == 0 and report.chunks == 1
    assert K.FINISHED not in rig.kinds()


async def test_a_chunk_that_leaves_nothing_to_play_is_answered_with_finished() -> None:
    rig = Rig()
    rig.track.push(b"")
    assert rig.reports[-1][1].kind is K.FINISHED and rig.reports[-1][1].chunks == 1
    rig.track.interrupt()  # nothing queued: still acknowledged
    assert rig.reports[-1][1].kind is K.INTERRUPTED and rig.reports[-1][1].dropped_s == 0
    rig.track.push(tone(0.1))  # something to play: no report until its first frame plays
    assert len(rig.reports) == 2
    await rig.run_for(0.3)
    await rig.ticks.close()
    assert rig.kinds()[2:] == [K.STARTED, K.FINISHED] and rig.reports[-1][1].chunks == 2


async def test_late_frames_skipped_to_the_end_of_the_queue_still_end_with_finished() -> None:
    rig = Rig(stall_at=5, stall_s=2.0)
    rig.track.push(tone(1.0))
    await rig.run_for(3.0)
    await rig.ticks.close()
    assert rig.kinds()[0] is K.STARTED and rig.kinds()[-1] is K.FINISHED
    assert rig.reports[-1][1].played_s == pytest.approx(0.02 * len(rig.frames))


async def test_300_000_frames_of_spurts_pauses_interrupts_and_a_stall_keep_the_reports_consistent() -> None:
    rng = random.Random(7)
    rig = Rig(stall_at=150_000, stall_s=3.0)
    sent_chunks = 0
    while len(rig.frames) < 300_000:
        spurt = tone(rng.uniform(0.1, 6.0))
        for start in range(0, len(spurt), 1600 * rng.randrange(1, 20)):
            rig.track.push(spurt[start:start + 32000])
            sent_chunks += 1
        if rng.random() < 0.2:
            await rig.run_for(rng.uniform(0.0, 1.0))
            rig.track.interrupt()
        await rig.run_for(rng.uniform(0.0, 8.0))
    await rig.run_for(10.0)
    await rig.ticks.close()

    playing, chunks = False, 0
    for _, report in rig.reports:
        if report.kind is K.STARTED:
            assert not playing
            playing = True
        elif report.kind is K.PROGRESS:
            assert playing
        elif report.kind is K.FINISHED:
            playing = False
        else:
            assert report.kind is K.INTERRUPTED
            playing = False
        assert report.chunks >= chunks
        chunks = report.chunks
    assert not playing and chunks == sent_chunks
    assert rig.reports[-1][1].played_s == pytest.approx(0.02 * len(rig.frames))
    assert rig.playout.budget.queued_bytes == 0
