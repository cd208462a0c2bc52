"""What an outgoing track still has queued at the server, and waiting for it to play.

Two sources, the better one used when it is there:

* **Playout events** (shoal's extension, asked for with ``Agent.connect(playout_events=True)``):
  the server reports, per track, when audio starts playing, every 200 ms while it plays,
  when the queue runs empty and what an interrupt dropped; each report says how many of
  the track's chunks it covers, so chunks still in flight are added on top.
* **Local pacing** otherwise (Fishjam cloud, or an older shoal): the server plays in real
  time from the moment a chunk arrives, so the queue ends ``sent duration`` after the first
  chunk of a burst. Network delay and server-side drops are not seen.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from fishjam._opus_packets import packet_samples
from fishjam._proto import agent_notifications_pb2

PlayoutEvent = agent_notifications_pb2.AgentResponse.PlayoutEvent
_PLAYING = (PlayoutEvent.KIND_STARTED, PlayoutEvent.KIND_PROGRESS)
_IDLE = (PlayoutEvent.KIND_FINISHED, PlayoutEvent.KIND_INTERRUPTED)


class PlayoutState:
    """Queued audio of one outgoing track, as far as the agent can know it.

    ``bytes_per_second`` is the PCM byte rate, or None for Opus (one packet per chunk,
    its duration read from the packet's TOC byte).
    """

    def __init__(self, bytes_per_second: int | None, server_events: bool, clock: Callable[[], float] = time.monotonic):
        self._rate = bytes_per_second
        self.server_events = server_events
        self._clock = clock
        self.sent_chunks = 0
        self._in_flight: deque[tuple[int, float]] = deque()  # (chunk number, seconds) not yet covered by a report
        self._reported_queued = 0.0
        self._reported_at = 0.0
        self._reported_playing = False
        self._local_end = 0.0  # local pacing: when the queue runs out
        self._settled = asyncio.Event()
        self._settled.set()

    def duration(self, chunk: bytes) -> float:
        if not chunk:
            return 0.0
        if self._rate is not None:
            return len(chunk) / self._rate
        try:
            return packet_samples(chunk) / 48000
        except ValueError:
            return 0.0  # the server refuses it too

    def sent(self, chunk: bytes) -> None:
        seconds = self.duration(chunk)
        self.sent_chunks += 1
        now = self._clock()
        self._local_end = max(now, self._local_end) + seconds
        if self.server_events:
            self._in_flight.append((self.sent_chunks, seconds))
            self._settled.clear()

    def interrupted(self) -> None:
        """The agent asked to drop what is queued (the server's report, when it comes, confirms it)."""
        self._local_end = self._clock()

    def report(self, event: PlayoutEvent) -> None:
        covered = event.chunks_received  # the report includes every chunk up to this one
        while self._in_flight and self._in_flight[0][0] <= covered:
            self._in_flight.popleft()
        self._reported_queued = event.queued_ms / 1000
        self._reported_at = self._clock()
        self._reported_playing = event.kind in _PLAYING
        if event.kind in _IDLE and covered >= self.sent_chunks:
            self._settled.set()

    @property
    def queued(self) -> float:
        """Seconds of audio sent but not yet played (an estimate between reports)."""
        now = self._clock()
        if not self.server_events:
            return max(0.0, self._local_end - now)
        queued = self._reported_queued
        if self._reported_playing:
            queued = max(0.0, queued - (now - self._reported_at))
        return queued + sum(seconds for _, seconds in self._in_flight)

    async def wait(self) -> None:
        """Until everything sent so far has played or was dropped by an interrupt."""
        if self.server_events:
            await self._settled.wait()
            return
        await asyncio.sleep(self.queued)  # what was sent so far; later chunks are not waited for
