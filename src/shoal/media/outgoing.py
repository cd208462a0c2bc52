"""OutgoingAudio: an agent's published track — queue, real-time pacing and fan-out."""

from __future__ import annotations

import logging
from collections.abc import Callable

from shoal.media.clock import PlayoutClock
from shoal.media.fanout import TrackFanout
from shoal.media.playout import Playout
from shoal.media.trace import PlayoutTrace

log = logging.getLogger(__name__)


class OutgoingAudio:
    """Plays one queued track out in real time through its fan-out.

    ``on_finished`` runs once after ``finish()`` was called and everything queued before
    it has played (RemoveTrack semantics), or at once on ``stop()``.
    """

    def __init__(
        self,
        track_id: str,
        playout: Playout,
        fanout: TrackFanout,
        clock: PlayoutClock,
        on_finished: Callable[[], None] = lambda: None,
        trace: PlayoutTrace | None = None,
    ) -> None:
        self.track_id = track_id
        self.playout = playout
        self.fanout = fanout
        self._clock = clock
        self._on_finished = on_finished
        self._trace = trace
        self._frames = 0
        self._finishing = False
        self._done = False
        self._last_push = 0.0

    @property
    def queued_seconds(self) -> float:
        return self.playout.queued_seconds

    def push(self, data: bytes) -> None:
        """Queue a chunk; raises ValueError if it is malformed for the track's encoding."""
        if self._done or self._finishing:
            return
        self.playout.push(data)
        self._last_push = self._clock.now()
        self._clock.add(self)

    def interrupt(self) -> None:
        """Drop everything queued; the frame being played is the last one heard."""
        self.playout.clear()

    def finish(self) -> None:
        """End the track once the audio queued so far has played."""
        if self._done:
            return
        self._finishing = True
        if not self.playout.has_pending():
            self._complete()
        else:
            self._clock.add(self)

    def stop(self) -> None:
        """End at once, dropping what is queued."""
        self.playout.clear()
        self._clock.remove(self)
        self._complete()

    def skip(self, frames: int) -> int:
        """The clock fell behind: drop the oldest ``frames`` (they are late), keeping the frame count."""
        dropped = self.playout.drop_frames(frames)
        self._frames += dropped
        return dropped

    def tick(self, deadline: float) -> bool:
        if self._done:
            return False
        frame = self.playout.next_frame(deadline - self._last_push, self._finishing)
        if frame is not None:
            self.fanout.deliver(frame)
            if self._trace is not None:
                self._trace.record(self.track_id, self._frames, deadline)
            self._frames += 1
        if self.playout.has_pending():
            return True
        if self._finishing:
            self._complete()
        return False

    def _complete(self) -> None:
        if self._done:
            return
        self._done = True
        self.playout.budget.release_all()  # nothing is queued any more; return its share
        try:
            self._on_finished()
        except Exception:
            log.exception("finishing track %s failed", self.track_id)
