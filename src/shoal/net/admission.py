"""Past capacity, keep whole streams: the oldest senders are read, the newest paused at the ICE socket.

When the server cannot keep up, the ICE age check (``gathering.MEDIA_MAX_AGE_S``) thins
every stream alike: each participant loses a share of its packets, every conversation
degrades at once, and loop iterations stay long — which is what ``/health`` and the
delivered audio's latency wait for. Under sustained overload shoal instead pauses the
inbound media of the most recently connected WebRTC senders: their SRTP datagrams are
dropped on receipt (a few µs each, before SRTP, decode or forwarding), counted as
``ice_receive``/``shed``; STUN (ICE consent), DTLS and SRTCP still pass, so their
connections stay up and what they receive keeps flowing. The others keep all their audio,
on time. Readmission is one stream at a time once the loop keeps up, so the system finds
its capacity without oscillating; a readmission that brings the overload back doubles the
wait before the next try at that count.

Each lag sample counts the larger of the loop's lag and the longest a media datagram
waited in its connection's queue since the previous sample: the receive loops yield
between queued datagrams (so a burst does not hold ``/health``), and the loop then turns on
time while media waits. A readmission that brings the lag back is undone within two
samples, before a REST call notices.

``AdmissionPolicy`` is the decision (no I/O, no clock of its own); ``StreamAdmission``
keeps the streams, closes one-second windows from the loop-lag monitor's samples, applies
the decisions and logs them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

WINDOW_S = 1.0
"""Decisions are taken once per window of loop-lag samples."""
BEHIND_LAG_S = 0.05
"""A lag sample (how late a 0.1 s sleep woke up) over this counts as behind."""
CALM_LAG_S = 0.02
"""A lag sample at most this late counts as calm (``StreamAdmission.calm``)."""
BEHIND_SHARE = 0.5
"""A window is overloaded when at least this share of its lag samples were behind."""
MIN_KEPT = 4
"""Never pause below this many senders: so few streams cost too little to matter, and a slow
machine's hiccup must not silence a small call."""
READMIT_WAIT_S = 5.0
"""Calm this long after the last decision readmits one paused stream."""
READMIT_MAX_WAIT_S = 60.0
"""Ceiling of the readmission wait, which doubles each time a readmission brings overload back."""
PROBATION_S = READMIT_WAIT_S
"""For this long after a readmission, ``PROBATION_BEHIND`` lag samples over ``BEHIND_LAG_S`` in a
row undo it at once."""
PROBATION_BEHIND = 2


@dataclass(frozen=True)
class Window:
    """What one window of the event loop looked like."""

    lag_samples: int
    behind_samples: int
    media_in: int
    """SRTP datagrams received by the admitted senders."""
    aged_out: int
    """Of those, dropped unread by the ICE age check (the loop read them too late)."""

    @property
    def overloaded(self) -> bool:
        return self.lag_samples > 0 and self.behind_samples >= BEHIND_SHARE * self.lag_samples

    @property
    def read_share(self) -> float:
        """The share of the admitted senders' media the loop got to in time: its capacity, roughly."""
        return 1.0 - self.aged_out / self.media_in if self.media_in else 1.0


class AdmissionPolicy:
    """How many senders to read: ``limit`` (None: all), decided once per window.

    Overloaded for ``sustain_windows`` windows in a row: keep the share of the admitted
    senders the loop managed to read in time (at least one fewer, at most half of them, at
    least ``MIN_KEPT``),
    and remember the count that overloaded as the ceiling. Still overloaded the window after
    a pause (the loop can be behind while reading nearly everything in time, so the share
    says little): pause again at once, at least twice as many as the last time. Calm for ``READMIT_WAIT_S`` since
    the last decision: readmit ``_step`` senders (1, then doubling while readmissions hold, up to
    one under the ceiling). A readmission up to the ceiling is a probe of one sender: it waits
    ``probe_wait_s``, which doubles each time a probe overloads again (up to
    ``READMIT_MAX_WAIT_S``), so a steady overload costs a window or two a minute; a probe
    that holds means the capacity grew, and the ceiling is forgotten.

    A readmission is on probation for ``PROBATION_S``: ``PROBATION_BEHIND`` lag samples
    behind in a row in that time (``lag_sample``) undo it at once, without waiting for
    overloaded windows, and its count becomes the ceiling. Lag that soon after a
    readmission is most likely its doing, and while whole windows are counted it grows past
    what a health check or a REST call tolerates (measured: a step of 8 readmitted over
    capacity kept ``/health`` over 50 ms, up to 126 ms, for 2.5 s before the windows caught
    it). One sample alone is a stall and undoes nothing.
    """

    def __init__(self, sustain_windows: int) -> None:
        self.sustain_windows = sustain_windows
        """0: never pause anything."""
        self.limit: int | None = None
        self.ceiling: int | None = None
        """The fewest admitted senders known to overload the loop."""
        self.probe_wait_s = READMIT_WAIT_S
        self._behind = 0
        self._changed_at = float("-inf")
        self._shed_step = 1
        """The fewest senders the next pause takes: doubles while each pause leaves the loop behind."""
        self._step = 1
        """Senders the next readmission takes: doubles while readmissions hold, 1 again after a pause."""
        self._readmitted = False
        self._undo_to: int | None = None
        """The limit before the readmission on probation (None: none is)."""
        self._behind_in_a_row = 0
        self.undone = 0
        """Readmissions undone on probation, over the policy's life."""

    def lag_sample(self, now: float, behind: bool) -> int | None:
        """One lag sample (``behind``: over ``BEHIND_LAG_S``): the new limit. ``PROBATION_BEHIND``
        behind in a row undo a readmission on probation; one alone is a stall, not the readmission."""
        if self._undo_to is None:
            return self.limit
        if not behind or now - self._changed_at >= PROBATION_S:
            self._behind_in_a_row = 0
            return self.limit
        self._behind_in_a_row += 1
        if self._behind_in_a_row < PROBATION_BEHIND:
            return self.limit
        if self.ceiling is not None and self.limit is not None and self.limit >= self.ceiling:
            self.probe_wait_s = min(self.probe_wait_s * 2, READMIT_MAX_WAIT_S)  # the probe failed
        self.ceiling = self.limit
        self.limit, self._undo_to, self._behind_in_a_row = self._undo_to, None, 0
        self._changed_at = now
        self._step, self._readmitted = 1, False
        self.undone += 1
        return self.limit

    @property
    def _probing(self) -> bool:
        """The next readmission reaches the ceiling: it is a probe of one sender."""
        return self.limit is not None and self.ceiling is not None and self.limit + 1 >= self.ceiling

    @property
    def readmit_wait_s(self) -> float:
        """Calm needed after the last decision before the next readmission."""
        return self.probe_wait_s if self._probing else READMIT_WAIT_S

    def decide(self, now: float, window: Window, admitted: int, senders: int) -> int | None:
        """The new limit, given this window and how many senders are admitted of those sending."""
        if not self.sustain_windows:
            return None
        if window.overloaded:
            self._behind += 1
            needed = 1 if self._shed_step > 1 else self.sustain_windows  # still overloaded right after a pause
            if self._behind >= needed and admitted > MIN_KEPT:
                self._behind = 0
                if self.ceiling is not None and admitted >= self.ceiling:
                    self.probe_wait_s = min(self.probe_wait_s * 2, READMIT_MAX_WAIT_S)  # the probe failed again
                self.ceiling = admitted
                keep = min(admitted - self._shed_step, int(admitted * window.read_share))
                self.limit = max(MIN_KEPT, admitted // 2, keep)  # at most half at once: the cause may be elsewhere
                self._shed_step *= 2
                self._changed_at = now
                self._step, self._readmitted, self._undo_to = 1, False, None
            return self.limit
        self._behind = 0
        self._shed_step = 1
        if self.limit is None:
            return None
        calm = now - self._changed_at
        if calm >= PROBATION_S and self._readmitted:
            self._step *= 2  # the last readmission held: take more at once next time
            self._readmitted, self._undo_to = False, None
            if self.ceiling is not None and self.limit >= self.ceiling:
                self.ceiling, self.probe_wait_s = None, READMIT_WAIT_S  # a probe held: the capacity grew
        probing = self._probing
        if calm >= self.readmit_wait_s:
            if senders <= self.limit:
                self.limit = self.ceiling = self._undo_to = None  # every sender fits (some left)
                self.probe_wait_s, self._step = READMIT_WAIT_S, 1
                return None
            if probing:
                more = 1
            elif self.ceiling is not None:
                more = min(self._step, self.ceiling - 1 - self.limit)
            else:
                more = self._step
            self._undo_to = self.limit
            self.limit += more
            self._readmitted = True
            self._changed_at = now
        return self.limit


@dataclass(eq=False)
class Stream:
    """One WebRTC connection's inbound media, as the admission sees it."""

    label: str
    key: int
    media_in: int = 0
    """SRTP datagrams received (paused or not)."""
    aged_out: int = 0
    """Media datagrams the age check dropped."""
    shed: int = 0
    """SRTP datagrams dropped because the stream was paused."""
    paused: bool = False
    paused_at: float = 0.0
    shed_at_pause: int = 0
    seen_in: int = 0
    seen_aged: int = 0


@dataclass
class StreamAdmission:
    """A server's senders in the order they connected, and which of them are read."""

    sustain_windows: int = 2
    clock: Callable[[], float] = field(default=lambda: 0.0)
    policy: AdmissionPolicy = field(init=False)
    streams: dict[int, Stream] = field(default_factory=dict)
    """Registration order is age order: the first are the oldest."""
    shed_dropped: int = 0
    """SRTP datagrams dropped while their stream was paused, over the server's life."""
    pauses: int = 0
    resumes: int = 0
    senders: int = 0
    """Streams that sent media in the last window."""
    calm: bool = True
    """The last lag sample was under ``CALM_LAG_S`` and nothing is paused: media may be handled
    in the datagram's own callback (``shoal.media.fast_audio``); else it queues, where the age
    bound and this admission shed what the loop cannot read in time."""
    _window_start: float | None = None
    _lag_samples: int = 0
    _behind_samples: int = 0
    _next_key: int = 0
    _media_age_s: float = 0.0
    """The oldest media datagram read since the last lag sample."""
    _last_active: set[int] = field(default_factory=set)
    """Keys of the streams that sent in the last window."""

    def __post_init__(self) -> None:
        self.policy = AdmissionPolicy(self.sustain_windows)

    @classmethod
    def pausing_after(cls, seconds: float, clock: Callable[[], float]) -> StreamAdmission:
        """Pausing once the loop has been behind for ``seconds`` (``--overload-pause-after``; 0: never)."""
        return cls(sustain_windows=math.ceil(seconds / WINDOW_S), clock=clock)

    # streams ------------------------------------------------------------------------------

    def register(self, label: str) -> Stream:
        stream = Stream(label, self._next_key)
        self.streams[stream.key] = stream
        self._next_key += 1
        return stream

    def unregister(self, stream: Stream) -> None:
        if self.streams.pop(stream.key, None) is None:
            return
        if stream.paused:
            log.info(
                "%s: closed while its inbound media was paused (overload), %d datagrams dropped",
                stream.label, stream.shed - stream.shed_at_pause,
            )

    @property
    def paused(self) -> int:
        return sum(1 for s in self.streams.values() if s.paused)

    # windows ------------------------------------------------------------------------------

    def observe_media_age(self, age_s: float) -> None:
        """How long a media datagram waited in its connection's queue before it was read."""
        if age_s > self._media_age_s:
            self._media_age_s = age_s

    def observe_lag(self, lag_s: float) -> None:
        """One loop-lag sample; closes a window (and may decide) every ``WINDOW_S``.

        The sample counts as the larger of the loop's lag and the oldest media datagram read
        since the previous sample: the receive loops yield between queued datagrams, so the
        loop can turn on time while media waits, and either kind of lateness is overload."""
        lag_s, self._media_age_s = max(lag_s, self._media_age_s), 0.0
        now = self.clock()
        if self._window_start is None:
            self._window_start = now
        self._lag_samples += 1
        self.calm = lag_s <= CALM_LAG_S and self.policy.limit is None
        behind = lag_s > BEHIND_LAG_S
        self._behind_samples += behind
        before = self.policy.limit
        limit = self.policy.lag_sample(now, behind)
        if limit != before:
            self._undo(now, limit, before, lag_s)
        if now - self._window_start >= WINDOW_S:
            self._close_window(now)

    def _undo(self, now: float, limit: int | None, before: int | None, lag_s: float) -> None:
        """A readmission on probation brought the lag back: pause the readmitted senders again now."""
        active = [s for s in self.streams.values() if s.key in self._last_active or s.media_in > s.seen_in]
        self._apply(now, active, limit, None)
        log.warning(
            "overload after a readmission: the event loop fell %.0f ms behind within %.0f s of readmitting; "
            "%s of %d sending WebRTC peers read again (was %s); the next readmission after %.0f s of calm",
            lag_s * 1000, PROBATION_S, limit, len(active), before, self.policy.readmit_wait_s,
        )

    def _close_window(self, now: float) -> None:
        active: list[Stream] = []
        media_in = aged_out = admitted = 0
        for stream in self.streams.values():
            sent = stream.media_in - stream.seen_in
            if sent:
                active.append(stream)
                if not stream.paused:
                    admitted += 1
                    media_in += sent
                    aged_out += stream.aged_out - stream.seen_aged
            stream.seen_in, stream.seen_aged = stream.media_in, stream.aged_out
        window = Window(self._lag_samples, self._behind_samples, media_in, aged_out)
        self._window_start, self._lag_samples, self._behind_samples = now, 0, 0
        self.senders = len(active)
        self._last_active = {stream.key for stream in active}
        before = self.policy.limit
        limit = self.policy.decide(now, window, admitted, len(active))
        if limit != before or (limit is not None and self._misranked(active, limit)):
            self._apply(now, active, limit, window if limit != before else None)

    def _misranked(self, active: list[Stream], limit: int) -> bool:
        """A newer sender is read while an older one waits (a paused stream fell silent and came back)."""
        return any(stream.paused == (rank < limit) for rank, stream in enumerate(active))

    def _apply(self, now: float, active: list[Stream], limit: int | None, window: Window | None) -> None:
        """Read the ``limit`` oldest senders, pause the rest; ``window``: the one that changed the limit."""
        paused: list[Stream] = []
        resumed: list[Stream] = []
        for rank, stream in enumerate(active):
            keep = limit is None or rank < limit
            if stream.paused and keep:
                stream.paused = False
                resumed.append(stream)
                log.info(
                    "%s: inbound media resumed after %.1f s paused (overload), %d datagrams dropped",
                    stream.label, now - stream.paused_at, stream.shed - stream.shed_at_pause,
                )
            elif not stream.paused and not keep:
                stream.paused, stream.paused_at, stream.shed_at_pause = True, now, stream.shed
                paused.append(stream)
                log.info("%s: inbound media paused (overload): its SRTP is dropped on receipt", stream.label)
        if limit is None:
            for stream in self.streams.values():  # senders that fell silent while paused
                if stream.paused:
                    stream.paused = False
                    resumed.append(stream)
        self.pauses += len(paused)
        self.resumes += len(resumed)
        if window is None:
            return  # re-ranked only: a paused sender fell silent and came back, or new ones joined
        if paused:
            log.warning(
                "overload: the event loop stayed behind (%d of %d lag samples over %.0f ms; %.0f %% of the media "
                "read in time): the inbound media of the %d newest of %d sending WebRTC peers is paused so the %d "
                "oldest stay whole; counted as ice_receive/shed, readmitted one at a time after %.0f s of calm",
                window.behind_samples, window.lag_samples, BEHIND_LAG_S * 1000, window.read_share * 100,
                len(active) - (limit or 0), len(active), limit or 0, READMIT_WAIT_S,
            )
        elif resumed:
            log.warning(
                "overload easing: %d paused WebRTC peers readmitted (%s)",
                len(resumed), "all senders read" if limit is None else f"{limit} of {len(active)} senders read",
            )

    def stats(self) -> dict[str, object]:
        return {
            "enabled": bool(self.sustain_windows),
            "limit": self.policy.limit,
            "streams": len(self.streams),
            "senders": self.senders,
            "paused": self.paused,
            "shed_dropped": self.shed_dropped,
            "pauses": self.pauses,
            "resumes": self.resumes,
            "readmissions_undone": self.policy.undone,
            "ceiling": self.policy.ceiling,
            "probe_wait_s": self.policy.probe_wait_s,
        }
