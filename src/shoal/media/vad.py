"""Voice activity of a participant's audio track: speech or silence, with onset and hangover.

The level comes from the RTP audio-level header extension (RFC 6464, ``ssrc-audio-level``:
browsers and aiortc put the frame's level in dBov on every packet) when the packets carry
it; otherwise from the decoded audio, which exists only while agents listen to the track
(the level of each 20 ms frame, computed the same way: RMS relative to full scale). The
packet decides: each frame is decoded from the packet seen just before it, and is used when
that packet carried no level (the agents-only fast path does not parse header extensions).

* A packet or frame is **loud** when its level is at least ``THRESHOLD_DBOV`` (-32 dBov, as
  Fishjam uses; a voice at a normal distance from a microphone is -10 to -30 dBov).
* **Speech** starts when ``ONSET_LOUD`` of the last ``ONSET_WINDOW`` packets were loud
  (60 ms of 100 ms), so a click does not count.
* **Silence** starts ``HANGOVER_S`` (0.5 s) after the last loud packet, so the pauses
  between words do not flap the state.

Silence is noticed on a packet's arrival: browsers and aiortc keep sending packets through
silence (as DTX packets at worst, several a second), so it is noticed within the hangover
plus one packet. A publisher that stops sending altogether (muted, its network gone) is
noticed by a timer, armed while the track is in speech: ``HANGOVER_S`` after the last loud
packet with no packet since, the track is in silence.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from shoal.media.pcm import Samples

THRESHOLD_DBOV = -32.0
ONSET_WINDOW = 5
ONSET_LOUD = 3
HANGOVER_S = 0.5
_WINDOW_MASK = (1 << ONSET_WINDOW) - 1


class VoiceActivity:
    """The speech/silence state machine; ``observe`` returns the new state when it changes."""

    def __init__(self) -> None:
        self.speech = False
        self._window = 0  # the last ONSET_WINDOW observations, one bit each (1 = loud)
        self._last_loud = -math.inf
        self.changes = 0

    def observe(self, level_dbov: float, now: float) -> bool | None:
        loud = level_dbov >= THRESHOLD_DBOV
        self._window = ((self._window << 1) | loud) & _WINDOW_MASK
        if loud:
            self._last_loud = now
        if not self.speech:
            if self._window.bit_count() >= ONSET_LOUD:
                self.speech = True
                self.changes += 1
                return True
        elif now - self._last_loud >= HANGOVER_S:
            self.speech = False
            self.changes += 1
            return False
        return None

    def expire(self, now: float) -> bool | None:
        """No packet came: silence (False) once the hangover has passed; speech needs a fresh onset."""
        if self.speech and now - self._last_loud >= HANGOVER_S:
            self.speech = False
            self._window = 0
            self.changes += 1
            return False
        return None

    def seconds_to_expiry(self, now: float) -> float:
        return max(0.0, HANGOVER_S - (now - self._last_loud))


def frame_dbov(frame: Samples) -> float:
    """The level of a frame of int16 samples in dBov (-127 for digital silence, as RFC 6464 floors it)."""
    if len(frame) == 0:
        return -127.0
    mean_square = float(np.mean(np.square(frame, dtype=np.float64)))
    if mean_square <= 0:
        return -127.0
    return max(-127.0, 10 * math.log10(mean_square / 32768.0**2))


class TrackVoiceActivity:
    """One participant audio track's voice activity, fed by its packets and, failing levels, its decoded frames.

    ``on_change(speech)`` runs on every change of state.
    """

    def __init__(
        self,
        on_change: Callable[[bool], None],
        clock: Callable[[], float],
        call_later: Callable[[float, Callable[[], None]], asyncio.TimerHandle] | None = None,
    ) -> None:
        """``call_later`` (the event loop's, by default) runs the silence timer."""
        self.state = VoiceActivity()
        self._on_change = on_change
        self._clock = clock
        self._call_later = call_later
        self._timer: asyncio.TimerHandle | None = None
        self._levels = False  # the last packet carried an audio level: decoded frames are not used
        self.level_dbov = -127.0
        """The last level seen (for the dashboard)."""

    def packet(self, packet: Any) -> None:
        """An RTP packet of the track (aiortc's ``RtpPacket``; the fast path's packets have no extensions)."""
        extensions = getattr(packet, "extensions", None)
        level = extensions.audio_level if extensions is not None else None
        self._levels = level is not None
        if level is not None:
            self._observe(-float(level[1]), self._clock())

    def frame(self, frame: Samples) -> None:
        """A decoded 20 ms frame (decoded from the packet just seen); used when that packet had no level."""
        if not self._levels:
            self._observe(frame_dbov(frame), self._clock())

    def _observe(self, level: float, now: float) -> None:
        self.level_dbov = level
        change = self.state.observe(level, now)
        if change is not None:
            self._on_change(change)
        if self.state.speech and self._timer is None:
            self._arm(HANGOVER_S)

    def _arm(self, delay: float) -> None:
        call_later = self._call_later or asyncio.get_running_loop().call_later
        self._timer = call_later(max(delay, 0.02), self._expire)

    def _expire(self) -> None:
        """The timer: packets stopped altogether, or they still come and it looks again later."""
        self._timer = None
        now = self._clock()
        if self.state.expire(now) is not None:
            self.level_dbov = -127.0
            self._on_change(False)
        elif self.state.speech:
            self._arm(self.state.seconds_to_expiry(now))

    def close(self) -> None:
        """The track ended: no more timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
