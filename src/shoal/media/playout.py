"""Playout queues for agents' outgoing tracks: bounded by duration, paced by the caller.

Agents send audio in chunks of any size, usually much faster than real time (TTS). The
queue keeps it in order and hands out exactly one 20 ms frame per playout tick:

* **Bounded by duration** (10 minutes by default). A chunk that does not fit is dropped
  whole (tail drop), counted and logged; what was already queued keeps playing.
* **Byte-stream semantics for PCM.** Chunk boundaries need not fall on sample boundaries:
  an odd-length chunk simply continues in the next one, so no audio is lost or shifted.
* **Partial frames wait briefly.** If less than a frame is queued, it waits up to
  ``HOLD_PARTIAL_S`` for more audio before playing out padded with silence, so a live
  source sending odd-sized chunks in real time plays without gaps.
* **Interrupt** drops everything queued at once; the next chunk plays from the next tick.
* **Silence**: when the queue is empty nothing is emitted (no frames, no comfort noise).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from shoal.media.opus import OPUS_RATE, OpusDecoder, packet_samples
from shoal.media.pcm import PcmFormat, Samples, to_mono
from shoal.tally import Tally

log = logging.getLogger(__name__)

HOLD_PARTIAL_S = 0.06
"""How long a partial frame waits for the rest of its audio (the jitter tolerance)."""

DEFAULT_MAX_SECONDS = 600.0
"""Queue bound per track: 10 minutes, as Fishjam's agent endpoint uses."""


@dataclass
class PlayoutStats:
    received_seconds: float = 0.0
    played_frames: int = 0
    overflow_dropped_seconds: float = 0.0
    overflow_dropped_chunks: int = 0
    interrupted_seconds: float = 0.0
    malformed_chunks: int = 0


class PcmPlayout:
    """Queued s16le PCM of one track (mono or stereo, any rate); emits mono frames."""

    def __init__(
        self, fmt: PcmFormat, max_seconds: float = DEFAULT_MAX_SECONDS, name: str = "", tally: Tally | None = None
    ) -> None:
        self.fmt = fmt
        self._tally = tally if tally is not None else Tally()
        self.source_rate = fmt.sample_rate
        self.name = name
        self.stats = PlayoutStats()
        self._max_bytes = fmt.bytes_for_seconds(max_seconds)
        self._queue = bytearray()
        self._skip = 0  # bytes still to discard: the tail of a sample whose start was dropped
        self._overflowing = False

    @property
    def queued_seconds(self) -> float:
        return len(self._queue) / (self.fmt.sample_rate * self.fmt.sample_bytes)

    def _seconds(self, nbytes: int) -> float:
        return nbytes / (self.fmt.sample_rate * self.fmt.sample_bytes)

    def push(self, data: bytes) -> None:
        if self._skip:
            cut = min(self._skip, len(data))
            self._skip -= cut
            data = data[cut:]
        self.stats.received_seconds += self._seconds(len(data))
        if len(self._queue) + len(data) <= self._max_bytes:
            self._queue += data
            self._overflowing = False
            return
        # Keep the stream aligned: complete the sample the queue ends in, drop the rest.
        complete = (-len(self._queue)) % self.fmt.sample_bytes
        self._queue += data[:complete]
        dropped = len(data) - complete
        self._skip = (-dropped) % self.fmt.sample_bytes
        self.stats.overflow_dropped_seconds += self._seconds(dropped)
        self.stats.overflow_dropped_chunks += 1
        self._tally.playout_dropped_chunks += 1
        if not self._overflowing:
            self._overflowing = True
            log.warning(
                "track %s: playout queue full (%.0f s queued); dropping incoming audio until it drains",
                self.name, self.queued_seconds,
            )

    def next_frame(self, idle_for: float, finishing: bool) -> Samples | None:
        """The next 20 ms mono frame, or None if nothing should play now."""
        size = self.fmt.frame_bytes
        if len(self._queue) >= size:
            frame = bytes(self._queue[:size])
            del self._queue[:size]
        elif self._queue and (finishing or idle_for >= HOLD_PARTIAL_S):
            usable = len(self._queue) - len(self._queue) % self.fmt.sample_bytes
            frame = bytes(self._queue[:usable]).ljust(size, b"\0")
            self._queue.clear()
        else:
            return None
        self.stats.played_frames += 1
        self._tally.playout_frames_played += 1
        return to_mono(frame, self.fmt.channels)

    def clear(self) -> None:
        self.stats.interrupted_seconds += self.queued_seconds
        # A partial sample at the tail belongs to audio that is now dropped.
        self._skip = (-len(self._queue)) % self.fmt.sample_bytes
        self._queue.clear()

    def has_pending(self) -> bool:
        return bool(self._queue)


class OpusPlayout:
    """Queued Opus packets of one track; decoded one frame at a time at playout."""

    def __init__(self, max_seconds: float = DEFAULT_MAX_SECONDS, name: str = "", tally: Tally | None = None) -> None:
        self.source_rate = OPUS_RATE
        self._tally = tally if tally is not None else Tally()
        self.name = name
        self.stats = PlayoutStats()
        self._max_samples = int(max_seconds * OPUS_RATE)
        self._packets: deque[tuple[bytes, int]] = deque()
        self._queued_samples = 0
        self._decoded: Samples = np.zeros(0, dtype=np.int16)
        self._decoder = OpusDecoder()
        self._overflowing = False

    @property
    def queued_seconds(self) -> float:
        return (self._queued_samples + len(self._decoded)) / OPUS_RATE

    def push(self, packet: bytes) -> None:
        """Queue one Opus packet; raises ValueError if it is not a valid Opus packet."""
        samples = packet_samples(packet)
        self.stats.received_seconds += samples / OPUS_RATE
        if self._queued_samples + samples > self._max_samples:
            self.stats.overflow_dropped_seconds += samples / OPUS_RATE
            self.stats.overflow_dropped_chunks += 1
            self._tally.playout_dropped_chunks += 1
            if not self._overflowing:
                self._overflowing = True
                log.warning("track %s: playout queue full; dropping incoming Opus packets", self.name)
            return
        self._overflowing = False
        self._packets.append((packet, samples))
        self._queued_samples += samples

    def next_frame(self, idle_for: float, finishing: bool) -> Samples | None:
        size = OPUS_RATE // 50
        while len(self._decoded) < size and self._packets:
            packet, samples = self._packets.popleft()
            self._queued_samples -= samples
            try:
                decoded = self._decoder.decode(packet)
            except Exception:  # a packet libopus rejects is skipped, not fatal
                self.stats.malformed_chunks += 1
                self._tally.playout_malformed += 1
                if self.stats.malformed_chunks == 1:  # a broken encoder sends many: say it once
                    log.warning("track %s: libopus could not decode a packet; skipped (later ones are "
                                "counted, reported when the track ends)", self.name)
                continue
            self._decoded = np.concatenate([self._decoded, decoded])
        if len(self._decoded) >= size:
            frame, self._decoded = self._decoded[:size], self._decoded[size:]
        elif len(self._decoded) and (finishing or idle_for >= HOLD_PARTIAL_S):
            frame = np.concatenate([self._decoded, np.zeros(size - len(self._decoded), dtype=np.int16)])
            self._decoded = np.zeros(0, dtype=np.int16)
        else:
            return None
        self.stats.played_frames += 1
        self._tally.playout_frames_played += 1
        return frame

    def clear(self) -> None:
        self.stats.interrupted_seconds += self.queued_seconds
        self._packets.clear()
        self._queued_samples = 0
        self._decoded = np.zeros(0, dtype=np.int16)

    def has_pending(self) -> bool:
        return bool(self._packets) or bool(len(self._decoded))


Playout = PcmPlayout | OpusPlayout
