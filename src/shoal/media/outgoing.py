"""OutgoingAudio: an agent's published track — queue, real-time pacing and fan-out."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from shoal.media.clock import PlayoutClock
from shoal.media.fanout import TrackFanout
from shoal.media.pcm import FRAME_MS
from shoal.media.playout import Playout
from shoal.media.trace import PlayoutTrace

log = logging.getLogger(__name__)

PROGRESS_FRAMES = 10
"""While a track plays, a ``PROGRESS`` report every this many frames (200 ms)."""


class PlayoutKind(enum.Enum):
    STARTED = "started"  # the first frame after the queue was empty has just been played
    PROGRESS = "progress"  # every PROGRESS_FRAMES frames of playing
    FINISHED = "finished"  # the queue ran empty (or a chunk arrived and nothing is queued)
    INTERRUPTED = "interrupted"  # interrupt() dropped what was queued


@dataclass(frozen=True)
class PlayoutReport:
    """Where a track's queue stands, for an agent that asked to hear it (``playout_events``)."""

    kind: PlayoutKind
    queued_s: float  # still queued after this report
    played_s: float  # played on this track so far
    dropped_s: float  # INTERRUPTED: what the interrupt dropped; else 0
    chunks: int  # push() calls so far, so the agent knows which of its chunks the report covers


class OutgoingAudio:
    """Plays one queued track out in real time through its fan-out.

    ``on_finished`` runs once after ``finish()`` was called and everything queued before
    it has played (RemoveTrack semantics), or at once on ``stop()``. ``on_report``, when
    given, hears each ``PlayoutReport`` as it happens, in the tick that played the frame.
    """

    def __init__(
        self,
        track_id: str,
        playout: Playout,
        fanout: TrackFanout,
        clock: PlayoutClock,
        on_finished: Callable[[], None] = lambda: None,
        trace: PlayoutTrace | None = None,
        on_report: Callable[[PlayoutReport], None] | None = None,
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
        self._on_report = on_report
        self._playing = False  # a STARTED was reported and no FINISHED/INTERRUPTED since
        self._playing_frames = 0
        self.chunks = 0

    @property
    def queued_seconds(self) -> float:
        return self.playout.queued_seconds

    def push(self, data: bytes) -> None:
        """Queue a chunk; raises ValueError if it is malformed for the track's encoding.

        Every call counts as a chunk, an empty one too; a chunk that leaves nothing to play
        (empty, refused by the budget, after ``finish``) while the track is silent is answered
        with a ``FINISHED`` report, so an agent waiting for its chunks to play is not left waiting.
        """
        self.chunks += 1
        if data and not (self._done or self._finishing):
            self.playout.push(data)
            self._last_push = self._clock.now()
            self._clock.add(self)
        if not self._playing and not self.playout.has_pending():
            self._report(PlayoutKind.FINISHED)

    def interrupt(self) -> None:
        """Drop everything queued; the frame being played is the last one heard."""
        dropped = self.playout.queued_seconds
        self.playout.clear()
        self._playing = False
        self._report(PlayoutKind.INTERRUPTED, dropped)

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
        pending = self.playout.has_pending()
        if frame is not None:
            self.fanout.deliver(frame)
            if self._trace is not None:
                self._trace.record(self.track_id, self._frames, deadline)
            self._frames += 1
            if self._on_report is not None:
                self._report_frame(pending)
        elif self._playing and not pending:  # late frames were skipped to the end of the queue
            self._playing = False
            self._report(PlayoutKind.FINISHED)
        if pending:
            return True
        if self._finishing:
            self._complete()
        return False

    def _report_frame(self, pending: bool) -> None:
        if not self._playing:
            self._playing = True
            self._playing_frames = 0
            self._report(PlayoutKind.STARTED)
        self._playing_frames += 1
        if not pending:
            self._playing = False
            self._report(PlayoutKind.FINISHED)
        elif self._playing_frames % PROGRESS_FRAMES == 0:
            self._report(PlayoutKind.PROGRESS)

    def _report(self, kind: PlayoutKind, dropped_s: float = 0.0) -> None:
        if self._on_report is None:
            return
        played = self.playout.stats.played_frames * FRAME_MS / 1000
        report = PlayoutReport(kind, self.playout.queued_seconds, played, dropped_s, self.chunks)
        try:
            self._on_report(report)
        except Exception:
            log.exception("reporting playout of track %s failed", self.track_id)

    def _complete(self) -> None:
        if self._done:
            return
        self._done = True
        self.playout.budget.release_all()  # nothing is queued any more; return its share
        try:
            self._on_finished()
        except Exception:
            log.exception("finishing track %s failed", self.track_id)
