"""A participant who talks on cue, what it hears, and an agent program it talks to.

``Talker.source`` is an audio track that is silent until ``say(freq, seconds)`` queues a
tone; ``spoken`` records when each utterance's first frame went out. ``tone_level`` and
``heard_spans`` read a ``Recording`` frame by frame, to see when a reply at a frequency
started and ended at the listener. ``AgentProgram`` runs an agent script (an example) that
prints one JSON object per line and waits for its lines.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shoal.testing.peer import Recording
from shoal.testing.server import stop_process
from shoal.testing.sources import SAMPLE_RATE, GeneratorSource

FRAME = SAMPLE_RATE // 50


@dataclass
class Utterance:
    freq: float
    seconds: float
    started: float | None = None  # when its first frame went out (time.monotonic())
    ended: float | None = None  # when its last frame went out


class Talker:
    def __init__(self, amplitude: int = 8000) -> None:
        self.amplitude = amplitude
        self.spoken: list[Utterance] = []
        self._queue: deque[tuple[Utterance, int]] = deque()  # (utterance, frames left)
        self._planned: dict[int, tuple[Utterance, bool, bool]] = {}  # frame index -> (utterance, first, last)
        self._frames = 0
        self.source = GeneratorSource(self._next, rate=SAMPLE_RATE, on_frame=self._sent)

    def say(self, freq: float, seconds: float) -> Utterance:
        utterance = Utterance(freq, seconds)
        self.spoken.append(utterance)
        self._queue.append((utterance, round(seconds * 50)))
        return utterance

    def _next(self) -> np.ndarray:
        index = self._frames
        self._frames += 1
        if not self._queue:
            return np.zeros(FRAME, dtype=np.int16)
        utterance, left = self._queue[0]
        total = round(utterance.seconds * 50)
        done = total - left
        if left == 1:
            self._queue.popleft()
        else:
            self._queue[0] = (utterance, left - 1)
        self._planned[index] = (utterance, done == 0, left == 1)
        t = (np.arange(FRAME) + done * FRAME) / SAMPLE_RATE
        return (self.amplitude * np.sin(2 * np.pi * utterance.freq * t)).astype(np.int16)

    def _sent(self, index: int, at: float) -> None:
        planned = self._planned.pop(index, None)
        if planned is None:
            return
        utterance, first, last = planned
        if first:
            utterance.started = at
        if last:
            utterance.ended = at


def tone_level(frame: np.ndarray, freq: float, rate: int = SAMPLE_RATE) -> float:
    """The amplitude of ``freq`` in one frame (a sine of amplitude A gives about A)."""
    if len(frame) == 0:
        return 0.0
    n = np.arange(len(frame))
    return float(2 * abs(np.dot(frame.astype(np.float64), np.exp(-2j * math.pi * freq * n / rate))) / len(frame))


def heard_spans(recording: Recording, freq: float, threshold: float = 1500.0, since: float = -math.inf) -> list[tuple[float, float]]:
    """(first, last) arrival times of each run of frames in which ``freq`` is louder than ``threshold``.

    Runs separated by less than 100 ms are one run (a frame lost or concealed in between).
    """
    spans: list[tuple[float, float]] = []
    for at, frame in recording.timed_frames():
        if at < since or tone_level(frame, freq, recording.rate) < threshold:
            continue
        if spans and at - spans[-1][1] < 0.1:
            spans[-1] = (spans[-1][0], at)
        else:
            spans.append((at, at))
    return spans



class AgentProgram:
    """``python SCRIPT ARGS...`` as a child process; its stdout is JSON lines with an ``event`` key."""

    def __init__(self, script: Path, *args: str) -> None:
        self.name = script.name
        self.process = subprocess.Popen(
            [sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, name=f"{self.name} stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == event]

    async def wait_for(self, event: str, count: int = 1, timeout: float = 20.0) -> dict[str, Any]:
        """The ``count``-th line with this event; AssertionError (with the program's output) if none comes."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = self.events(event)
            if len(found) >= count:
                return found[count - 1]
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.02)
        stderr = self.process.stderr.read() if self.process.poll() is not None and self.process.stderr else ""
        raise AssertionError(f"{self.name} did not say {event!r} (x{count}): {self.lines} {stderr[-2000:]}")

    def stop(self) -> None:
        stop_process(self.process)
