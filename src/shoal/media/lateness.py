"""StaleGate: a stream's packets judged late on the sender's own clock, wherever they waited.

The ICE socket drops media that sat in shoal's receive queue too long (``shoal.net.gathering``),
but it can only see time since the datagram was read. A packet can also wait in the kernel's
socket buffer while the event loop is busy, in a long loop iteration that reads thousands of
datagrams, or in the network: a participant whose connection stalled for ten seconds then
delivers ten seconds of packets at once. For an agent that audio is stale: transcribing it or
answering it now only makes everything after it late.

The RTP timestamp says when the sender sampled a packet. ``arrival − timestamp / clock`` is
the packet's transit plus a constant offset between the two clocks; the smallest such value
seen recently is the path at its quickest (the *floor*). A packet more than ``max_delay_s``
over the floor is stale, however long it waited and where.

* The floor is the minimum over the last ``WINDOW_BUCKETS`` buckets of ``BUCKET_S`` each, so
  it follows a drift between the sender's clock and ours (100 ppm is 0.36 s an hour).
* A sender whose timestamps step back against real time (it paused without advancing them)
  would look stale for ever; after ``RESYNC_S`` of wall time in which every packet was stale,
  the floor is taken afresh from the current packets. A burst that arrives at once never
  lasts that long, so its stale part is dropped and its freshest part kept.
* Timestamps are unwrapped past 2³² (24.8 hours at 48 kHz).

No I/O; ``now`` is passed in.
"""

from __future__ import annotations

import math
from collections import deque

BUCKET_S = 2.0
"""Width of one bucket of the floor's sliding minimum, in seconds of arrival time."""
WINDOW_BUCKETS = 5
"""Buckets kept before the current one: the floor remembers 10–12 s."""
RESYNC_S = 2.0
"""Every packet stale for this long (wall time): the sender's timing changed, start afresh."""


class StaleGate:
    """Per stream (one SSRC): ``stale(timestamp, now)`` says whether to drop the packet."""

    def __init__(self, max_delay_s: float, clock_rate: int) -> None:
        if max_delay_s <= 0:
            raise ValueError("max_delay_s must be positive")
        self._max_delay = max_delay_s
        self._rate = float(clock_rate)
        self._last_ts: int | None = None
        self._extended = 0
        self._bucket_start = 0.0
        self._bucket_min = math.inf
        self._older: deque[float] = deque(maxlen=WINDOW_BUCKETS)
        self._floor = math.inf
        self._stale_since: float | None = None
        self.resyncs = 0
        """Times the floor was taken afresh (the sender's timing changed)."""

    def stale(self, timestamp: int, now: float) -> bool:
        """True if this packet (RTP ``timestamp``, arriving at monotonic ``now``) is stale."""
        last = self._last_ts
        if last is None:
            self._extended = timestamp
            self._bucket_start = now
        else:
            self._extended += ((timestamp - last + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        self._last_ts = timestamp
        transit = now - self._extended / self._rate
        if now - self._bucket_start >= BUCKET_S:
            self._roll(now)
        if transit < self._bucket_min:
            self._bucket_min = transit
            if transit < self._floor:
                self._floor = transit
        if transit - self._floor <= self._max_delay:
            self._stale_since = None
            return False
        if self._stale_since is None:
            self._stale_since = now
        elif now - self._stale_since >= RESYNC_S:
            self._resync(transit, now)
            return False
        return True

    def _roll(self, now: float) -> None:
        if self._bucket_min < math.inf:
            self._older.append(self._bucket_min)
        self._bucket_start = now
        self._bucket_min = math.inf
        self._floor = min(self._older, default=math.inf)

    def _resync(self, transit: float, now: float) -> None:
        self.resyncs += 1
        self._older.clear()
        self._bucket_start = now
        self._bucket_min = self._floor = transit
        self._stale_since = None
