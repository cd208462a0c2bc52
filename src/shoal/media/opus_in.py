"""InlineOpusDecoder: a participant's Opus RTP decoded the moment it arrives, on the event loop.

aiortc hands received audio to a jitter buffer that holds complete frames back, then to a
decoder thread per track, then back to the event loop through a queue and a
``MediaStreamTrack.recv()`` — three hand-offs per 20 ms frame, a thread fighting the event
loop for the GIL, and a frame held ~20 ms until the next packet shows it complete. An Opus
RTP packet *is* a complete frame, and an agent gains nothing from smoothing (it receives
frames as messages, not as a sound card), so this object takes the jitter buffer's slot in
the receiver (``RtpTap``'s ``make_buffer``) and decodes each packet inline: arrival to
``deliver`` in one call. It never returns a frame to aiortc, so aiortc's decoder thread
stays idle.

Rate: the packet is decoded by libopus straight at the rate its receivers want
(``rate()``, the fan-out's ``preferred_rate``: the agents' 16 or 24 kHz), through
``shoal.media.libopus``, so no resampler runs; a change of that rate starts a new decoder.

Order: a packet at or behind the newest one decoded (a duplicate, or reordered past its
successor) is dropped and counted as ``late`` — decoding it now would put old audio after
new. A run of ``RESYNC_AFTER`` such packets means the sender jumped its numbering, and the
decoder follows it. A gap is counted as ``lost``; an undecodable payload as ``malformed``.

Freshness: with ``max_delay_s``, a packet more than that behind its stream's quickest path
on the sender's own clock (``StaleGate``) is dropped undecoded and counted as ``stale``: a
burst of audio held up in the network and delivered at once. A dropped packet's sequence
number still counts as received, so it is not also counted as lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoal.media.lateness import StaleGate
from shoal.media.libopus import MonoDecoder
from shoal.media.pcm import Samples
from shoal.tally import Tally

OPUS_RTP_CLOCK = 48000
"""RFC 7587: Opus RTP timestamps count 48 kHz whatever rate the audio was coded at."""
RESYNC_AFTER = 50
"""Consecutive "late" packets (1 s of audio) after which the sequence is taken as restarted."""


@dataclass
class InboundAudioStats:
    """Per inbound track, across decoder restarts (new SSRC, decoding paused and resumed)."""

    frames: int = 0
    late: int = 0
    lost: int = 0
    malformed: int = 0
    stale: int = 0


class InlineOpusDecoder:
    """The jitter-buffer slot of one audio receiver: decode and deliver each packet at once."""

    capacity = 0
    """Frames held back (none); ``RtpTap.capacity`` reports it."""

    def __init__(
        self,
        deliver: Callable[[Samples, int], None],
        stats: InboundAudioStats,
        tally: Tally | None = None,
        max_delay_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        rate: Callable[[], int] = lambda: OPUS_RTP_CLOCK,
    ) -> None:
        """``max_delay_s``: drop packets this much later than their stream's quickest (None: keep all).

        ``deliver(samples, rate)`` gets mono int16 at the rate ``rate()`` named when it was decoded.
        """
        self._deliver = deliver
        self._clock = clock
        self._stats = stats
        self._tally = tally if tally is not None else Tally()
        self._rate = rate
        self._decoder: MonoDecoder | None = None  # libopus downmixes a stereo stream itself
        self._newest: int | None = None
        self._behind = 0
        self._gate = StaleGate(max_delay_s, OPUS_RTP_CLOCK) if max_delay_s else None

    def add(self, packet: Any) -> tuple[bool, None]:
        """aiortc's jitter-buffer call: (send a PLI?, a frame to decode) — always (False, None)."""
        if not self._in_order(packet.sequence_number):
            return False, None
        gate = self._gate
        if gate is not None and gate.stale(packet.timestamp, self._clock()):
            self._stats.stale += 1
            self._tally.participant_audio_stale += 1
            return False, None
        rate = self._rate()
        decoder = self._decoder
        if decoder is None or decoder.rate != rate:
            decoder = self._decoder = MonoDecoder(rate)
        try:
            samples = decoder.decode(packet.payload)
        except ValueError:
            self._stats.malformed += 1
            self._tally.participant_audio_malformed += 1
            return False, None
        self._stats.frames += 1
        self._tally.participant_audio_frames += 1
        self._deliver(samples, rate)
        return False, None

    def _in_order(self, sequence: int) -> bool:
        newest = self._newest
        if newest is not None:
            ahead = (sequence - newest) & 0xFFFF
            if ahead == 0 or ahead >= 0x8000:
                self._behind += 1
                if self._behind < RESYNC_AFTER:
                    self._stats.late += 1
                    self._tally.participant_audio_late += 1
                    return False
            elif ahead > 1:
                self._stats.lost += ahead - 1
                self._tally.participant_audio_lost += ahead - 1
        self._newest = sequence
        self._behind = 0
        return True
