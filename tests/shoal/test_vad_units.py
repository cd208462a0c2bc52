"""Voice activity detection (``shoal.media.vad``) without sockets.

* Over 400 000 packets of talk spurts, pauses shorter and longer than the hangover, and
  clicks, the detector changes state exactly where its documented rules say: speech on the
  third loud packet of five, silence on the first packet 0.5 s after the last loud one —
  never for a click, never in a pause shorter than the hangover.
* Levels come from the packets' audio-level extension when they carry one, else from the
  decoded frames (the level of a known tone), never from both at once.
* A publisher that stops sending in the middle of speech is in silence ``HANGOVER_S`` after
  its last loud packet (a timer); one that keeps talking for minutes is never cut by it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from shoal.media.vad import (
    HANGOVER_S,
    ONSET_LOUD,
    THRESHOLD_DBOV,
    TrackVoiceActivity,
    VoiceActivity,
    frame_dbov,
)
from tests.shoal.test_long_call_units import FakeTime

PACKET_S = 0.02


def reference(levels: list[tuple[float, float]]) -> list[tuple[float, bool]]:
    """The rules written out plainly, for comparison."""
    changes: list[tuple[float, bool]] = []
    speech, recent, last_loud = False, [], -1e9
    for at, level in levels:
        loud = level >= THRESHOLD_DBOV
        recent = (recent + [loud])[-5:]
        if loud:
            last_loud = at
        if not speech and sum(recent) >= ONSET_LOUD:
            speech = True
            changes.append((at, True))
        elif speech and at - last_loud >= HANGOVER_S:
            speech = False
            changes.append((at, False))
    return changes


def test_400_000_packets_of_spurts_pauses_and_clicks_change_state_exactly_by_the_rules() -> None:
    rng = random.Random(11)
    levels: list[tuple[float, float]] = []
    at = 0.0
    spurts = clicks = 0
    while len(levels) < 400_000:
        kind = rng.random()
        if kind < 0.15:  # a click: one or two loud packets in silence
            clicks += 1
            for _ in range(rng.randrange(1, 3)):
                levels.append((at, rng.uniform(-20, -5)))
                at += PACKET_S
            for _ in range(rng.randrange(40, 100)):
                levels.append((at, rng.uniform(-90, -45)))
                at += PACKET_S
            continue
        spurts += 1
        for _ in range(rng.randrange(10, 300)):  # speech, with dips shorter than the hangover
            if rng.random() < 0.05:
                for _ in range(rng.randrange(1, 20)):  # at most 0.38 s
                    levels.append((at, rng.uniform(-70, -40)))
                    at += PACKET_S
            levels.append((at, rng.uniform(-30, -8)))
            at += PACKET_S
        for _ in range(rng.randrange(30, 300)):  # a pause longer than the hangover
            levels.append((at, rng.uniform(-127, -40)))
            at += PACKET_S * rng.uniform(0.9, 1.1)  # arrival jitter

    vad = VoiceActivity()
    got = [(t, change) for t, level in levels if (change := vad.observe(level, t)) is not None]

    assert got == reference(levels)
    assert [speech for _, speech in got] == [True, False] * spurts, "one speech and one silence per spurt, none for clicks"
    assert clicks > 100
    assert vad.changes == len(got)


def test_silence_comes_on_the_first_packet_a_hangover_after_the_last_loud_one() -> None:
    vad = VoiceActivity()
    changes = [vad.observe(-10, i * PACKET_S) for i in range(10)]
    assert changes.index(True) == ONSET_LOUD - 1 and changes.count(True) == 1
    last_loud = 9 * PACKET_S
    quiet = [(t, vad.observe(-80, t)) for t in np.arange(last_loud + PACKET_S, last_loud + 1.0, PACKET_S)]
    (when, _), = [(t, c) for t, c in quiet if c is not None]
    assert when - last_loud == pytest.approx(HANGOVER_S, abs=PACKET_S)


class FakeTimers:
    """``loop.call_later`` on a test clock: ``run()`` fires what is due by ``clock.now``."""

    def __init__(self, clock: FakeTime) -> None:
        self.clock = clock
        self.pending: list[tuple[float, Callable[[], None], SimpleNamespace]] = []
        self.armed = 0

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        handle = SimpleNamespace(cancelled=False)
        handle.cancel = lambda: setattr(handle, "cancelled", True)
        self.pending.append((self.clock.now + delay, callback, handle))
        self.armed += 1
        return handle

    def run(self) -> None:
        due = [entry for entry in self.pending if entry[0] <= self.clock.now]
        self.pending = [entry for entry in self.pending if entry[0] > self.clock.now]
        for _, callback, handle in sorted(due, key=lambda entry: entry[0]):
            if not handle.cancelled:
                callback()


def packet(level: int | None) -> SimpleNamespace:
    return SimpleNamespace(extensions=SimpleNamespace(audio_level=None if level is None else (False, level)))


def test_levels_from_packets_win_over_decoded_frames_and_frames_serve_when_packets_have_none() -> None:
    clock = FakeTime(100.0)
    changes: list[bool] = []
    track = TrackVoiceActivity(changes.append, clock, FakeTimers(clock).call_later)  # timers never fire here
    loud = (8000 * np.sin(2 * np.pi * 440 * np.arange(320) / 16000)).astype(np.int16)
    silent = np.zeros(320, dtype=np.int16)
    for _ in range(50):  # packets say silence (level 90 = -90 dBov) while the frames are loud: packets win
        track.packet(packet(90))
        track.frame(loud)
        clock.now += PACKET_S
    assert changes == []
    for _ in range(5):  # packets without a level (the fast path's): their frames are the source now
        track.packet(packet(None))  # the fast path's packets carry none
        track.frame(loud)
        clock.now += PACKET_S
    assert changes == [True]
    for _ in range(40):
        track.frame(silent)
        clock.now += PACKET_S
    assert changes == [True, False]


def test_a_frames_level_is_its_rms_relative_to_full_scale() -> None:
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(960) / 48000)).astype(np.int16)
    assert frame_dbov(tone) == pytest.approx(20 * np.log10(8000 / np.sqrt(2) / 32768), abs=0.1)
    assert frame_dbov(np.zeros(960, dtype=np.int16)) == -127
    assert frame_dbov(np.full(960, -32768, dtype=np.int16)) == pytest.approx(0.0)


def test_a_publisher_that_stops_sending_in_speech_is_silent_one_hangover_after_its_last_loud_packet() -> None:
    clock = FakeTime(100.0)
    timers = FakeTimers(clock)
    changes: list[tuple[float, bool]] = []
    track = TrackVoiceActivity(lambda speech: changes.append((clock.now, speech)), clock, timers.call_later)
    for _ in range(25):  # 0.5 s of speech
        track.packet(packet(10))
        clock.now += PACKET_S
    last_loud = clock.now - PACKET_S
    assert [speech for _, speech in changes] == [True]
    while clock.now < last_loud + HANGOVER_S - 0.005:  # then nothing at all: no packet, no frame
        timers.run()
        clock.now += 0.005
    timers.run()
    assert [speech for _, speech in changes] == [True], "silence before the hangover had passed"
    clock.now = last_loud + HANGOVER_S + 0.001
    timers.run()
    assert [speech for _, speech in changes] == [True, False]
    assert changes[-1][0] == pytest.approx(last_loud + HANGOVER_S, abs=0.01)
    assert track.level_dbov == -127
    for _ in range(ONSET_LOUD):  # sending again: speech needs a fresh onset
        assert [speech for _, speech in changes] == [True, False]
        track.packet(packet(10))
        clock.now += PACKET_S
    assert [speech for _, speech in changes] == [True, False, True]
    track.close()
    clock.now += 10
    timers.run()
    assert [speech for _, speech in changes] == [True, False, True], "a closed track's timer fired"


def test_speech_that_keeps_coming_is_never_cut_by_the_timer_over_an_hour_of_packets() -> None:
    clock = FakeTime(0.0)
    timers = FakeTimers(clock)
    changes: list[bool] = []
    track = TrackVoiceActivity(changes.append, clock, timers.call_later)
    for n in range(180_000):  # an hour of 20 ms packets, a short pause every 2 s
        track.packet(packet(90 if n % 100 >= 95 else 10))
        clock.now += PACKET_S
        timers.run()
    assert changes == [True]
    assert timers.armed <= 180_000 * PACKET_S / (HANGOVER_S - 0.1) + 2, "the timer is re-armed more often than needed"
    assert len(timers.pending) == 1
