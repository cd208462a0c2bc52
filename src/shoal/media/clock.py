"""PlayoutClock: one 20 ms tick loop that paces every active outgoing track.

One shared loop costs 50 wake-ups a second however many tracks play, instead of 50 per
track. Ticks follow absolute monotonic deadlines, so timing errors do not accumulate; if
the loop falls more than ``MAX_LAG_S`` behind (a stall), it re-anchors instead of
bursting the missed frames. The loop only runs while some track has audio; the first
tick after it starts happens at once, so a new utterance starts without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from shoal.media.pcm import FRAME_MS

log = logging.getLogger(__name__)

FRAME_S = FRAME_MS / 1000
MAX_LAG_S = 0.1


class Player(Protocol):
    def tick(self, deadline: float) -> bool:
        """Play the frame due at ``deadline``; return False once idle (it is then dropped)."""


class PlayoutClock:
    """Ticks every ``FRAME_S``; ``clock`` and ``sleep`` are injectable (tests compress time)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._players: dict[int, Player] = {}
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.reanchors = 0

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
        deadline = anchor
        while self._players:
            delay = deadline - self._clock()
            if delay > 0:
                await self._sleep(delay)
            now = self._clock()
            if now - deadline > MAX_LAG_S:
                self.reanchors += 1
                log.warning("playout clock fell %.0f ms behind; re-anchoring", (now - deadline) * 1000)
                anchor, n = now, 0
                deadline = now
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
            deadline = anchor + n * FRAME_S
