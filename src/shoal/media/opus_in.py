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

import av
import numpy as np

from shoal.media.lateness import StaleGate
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
        deliver: Callable[[Samples], None],
        stats: InboundAudioStats,
        tally: Tally | None = None,
        max_delay_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``max_delay_s``: drop packets this much later than their stream's quickest (None: keep all)."""
        self._deliver = deliver
        self._clock = clock
        self._stats = stats
        self._tally = tally if tally is not None else Tally()
        self._codec: Any = av.CodecContext.create("libopus", "r")
        self._codec.layout = "mono"  # libopus downmixes a stereo stream itself, cheaper than after
        self._codec.sample_rate = 48000
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
        try:
            frames = self._codec.decode(av.Packet(packet.payload))
        except (av.FFmpegError, ValueError):
            self._stats.malformed += 1
            self._tally.participant_audio_malformed += 1
            return False, None
        for frame in frames:
            samples: Samples = np.frombuffer(frame.planes[0], dtype=np.int16, count=frame.samples)
            self._stats.frames += 1
            self._tally.participant_audio_frames += 1
            self._deliver(samples)
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
