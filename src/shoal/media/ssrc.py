"""Which RTP stream of a track is current: a new SSRC takes over, late packets of the old one don't.

A publisher that changes SSRC (a browser renegotiating, a track replaced) keeps sending a
few packets of the old stream that were already on the way, or reordered behind the first
packets of the new one. Treating each of those as yet another new stream would restart
every forwarder and the decoder twice, and a video receiver would wait for another
keyframe. So an SSRC that was replaced stays *retired* for a while: its packets are dropped
(and counted). After ``RETIRED_FOR_S`` it is forgotten, so a publisher that really goes
back to an old SSRC is followed.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable

RETIRED_FOR_S = 5.0
"""How long late packets of a replaced stream are expected: far longer than any reordering."""

RETIRED_KEPT = 8
"""Replaced SSRCs remembered at most (a misbehaving publisher cannot grow the table)."""


class Arrival(enum.Enum):
    CURRENT = "current"  # the stream in use
    NEW = "new"  # a new stream takes over (the first packet of the track, too)
    STALE = "stale"  # a late packet of a stream that was replaced: drop it


class SsrcTracker:
    """Classifies each packet's SSRC; constant memory however often the stream changes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.current: int | None = None
        self._retired: OrderedDict[int, float] = OrderedDict()  # ssrc → when it was replaced
        self.changes = 0
        self.stale = 0

    def arrive(self, ssrc: int) -> Arrival:
        if ssrc == self.current:
            return Arrival.CURRENT
        retired_at = self._retired.get(ssrc)
        now = self._clock()
        if retired_at is not None:
            if now - retired_at < RETIRED_FOR_S:
                self.stale += 1
                return Arrival.STALE
            del self._retired[ssrc]
        if self.current is not None:
            self._retired[self.current] = now
            self._retired.move_to_end(self.current)
            while len(self._retired) > RETIRED_KEPT:
                self._retired.popitem(last=False)
            self.changes += 1
        self.current = ssrc
        return Arrival.NEW
