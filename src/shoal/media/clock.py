"""PlayoutClock: one 20 ms tick loop that paces every active outgoing track.

One shared loop costs 50 wake-ups a second however many tracks play, instead of 50 per
track. Ticks follow absolute monotonic deadlines (anchor + n × 20 ms), so timing errors do
not accumulate. The loop only runs while some track has audio; the first tick after it
starts happens at once, so a new utterance starts without waiting.

**Stalls.** When the loop wakes up late (the event loop was blocked, the machine paused
the process) it keeps its schedule. A lag up to ``max_lag_s`` (0.2 s by default) is made
up by ticking without sleeping, at most that many frames back to back. A larger lag is a
*catch-up*: the clock skips the frame slots that have passed and every track drops as many
of its oldest queued frames (``late_dropped_frames``), so the frame played next is the one
the schedule says is due now. Audio is therefore never more than ``max_lag_s`` behind the
schedule it was queued on; a stall costs the audio of its own length, not a permanent
delay of the rest of the call (re-anchoring the schedule after each stall made audio queued
ahead of real time late by the sum of all stalls — 42 s in issue 10), and never a burst of
seconds of audio at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from shoal.media.pcm import FRAME_MS
from shoal.net.demux import OnceLog

log = logging.getLogger(__name__)

FRAME_S = FRAME_MS / 1000
DEFAULT_MAX_LAG_S = 0.2


class Player(Protocol):
    def tick(self, deadline: float) -> bool:
        """Play the frame due at ``deadline``; return False once idle (it is then dropped)."""

    def skip(self, frames: int) -> int:
        """Drop up to ``frames`` of the oldest queued frames (they are late); return how many were dropped."""


class PlayoutClock:
    """Ticks every ``FRAME_S``; ``clock`` and ``sleep`` are injectable (tests compress time)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_lag_s: float = DEFAULT_MAX_LAG_S,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._max_lag_s = max_lag_s
        self._players: dict[int, Player] = {}
        self._task: asyncio.Task[None] | None = None
        self._warned = OnceLog(log.warning, clock)
        self.ticks = 0
        self.catchups = 0
        """Times the clock was more than ``max_lag_s`` late and skipped ahead."""
        self.skipped_ticks = 0
        """Frame slots skipped by catch-ups (each track dropped up to this many frames)."""
        self.late_dropped_frames = 0
        """Frames dropped by all tracks in catch-ups."""

    def now(self) -> float:
        """The clock's time (the one deadlines are on)."""
        return self._clock()

    def stats(self) -> dict[str, int]:
        return {"catchups": self.catchups, "late_dropped_frames": self.late_dropped_frames}

    def add(self, player: Player) -> None:
        self._players[id(player)] = player
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="playout-clock")

    def remove(self, player: Player) -> None:
        self._players.pop(id(player), None)

    def queued_seconds(self) -> float:
        """Audio waiting in the active players (``GET /metrics``); an idle player has none queued."""
        return sum(getattr(player, "queued_seconds", 0.0) for player in self._players.values())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        # time.monotonic(), not loop.time(): uvloop's clock has millisecond steps, and the
        # monotonic clock is shared with other processes (benchmarks compare against it).
        # Deadlines are anchor + n frames, not a running sum: adding 0.02 s a million times
        # to a large monotonic reading would drift by the float rounding of each addition.
        anchor, n = self._clock(), 0
        while self._players:
            deadline = anchor + n * FRAME_S
            delay = deadline - self._clock()
            if delay > 0:
                await self._sleep(delay)
            late = self._clock() - deadline
            if late > self._max_lag_s:
                skipped = int(late / FRAME_S + 1e-6)  # the slot due now is played, those before it dropped
                self._catch_up(skipped, late)
                n += skipped
                deadline = anchor + n * FRAME_S
            for key, player in tuple(self._players.items()):
                try:
                    active = player.tick(deadline)
                except Exception:
                    log.exception("playout of %r failed; it is stopped", player)
                    active = False
                if not active:
                    self._players.pop(key, None)
            self.ticks += 1
            n += 1

    def _catch_up(self, skipped: int, late: float) -> None:
        self.catchups += 1
        self.skipped_ticks += skipped
        dropped = 0
        for key, player in tuple(self._players.items()):
            try:
                dropped += player.skip(skipped)
            except Exception:
                log.exception("catching up playout of %r failed; it is stopped", player)
                self._players.pop(key, None)
        self.late_dropped_frames += dropped
        self._warned.note("catchup", lambda: f"playout clock fell {late * 1000:.0f} ms behind; skipped {skipped} "
                          f"frames ({dropped} queued frames dropped) to stay on schedule")
