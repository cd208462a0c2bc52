"""Playout queues for agents' outgoing tracks: bounded by a budget, paced by the caller.

Agents send audio in chunks of any size, usually much faster than real time (TTS). The
queue keeps it in order and hands out exactly one 20 ms frame per playout tick:

* **Bounded in bytes and seconds** per track, agent and server (``shoal.media.budget``;
  10 minutes and 64 MiB per track by default). A chunk that does not fit is dropped whole
  (tail drop), counted and logged; what was already queued keeps playing.
* **Byte-stream semantics for PCM.** Chunk boundaries need not fall on sample boundaries:
  an odd-length chunk simply continues in the next one, so no audio is lost or shifted.
* **Partial frames wait briefly.** If less than a frame is queued, it waits up to
  ``HOLD_PARTIAL_S`` for more audio before playing out padded with silence, so a live
  source sending odd-sized chunks in real time plays without gaps.
* **Interrupt** drops everything queued at once; the next chunk plays from the next tick.
* **Late frames are dropped**: when the playout clock fell behind (a stall), ``drop_frames``
  discards the oldest frames so the track is back on schedule (see ``shoal.media.clock``).
* **Silence**: when the queue is empty nothing is emitted (no frames, no comfort noise).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from shoal.media.budget import BudgetLimits, PlayoutBudget, TrackBudget, units_per_byte
from shoal.media.opus import OPUS_RATE, OpusDecoder, packet_samples
from shoal.media.pcm import PcmFormat, Samples, to_mono
from shoal.tally import Tally

log = logging.getLogger(__name__)

HOLD_PARTIAL_S = 0.06
"""How long a partial frame waits for the rest of its audio (the jitter tolerance)."""

DEFAULT_MAX_SECONDS = 600.0
"""Queue bound per track: 10 minutes, as Fishjam's agent endpoint uses."""

OPUS_FRAME = OPUS_RATE // 50
OPUS_UNITS = 4
"""Budget units per 48 kHz sample."""


def standalone_budget(max_seconds: float, name: str) -> TrackBudget:
    """The budget of a queue outside a server (unit tests, tools): only the per-track bounds apply."""
    return PlayoutBudget(BudgetLimits(track_seconds=max_seconds, agent_seconds=max_seconds)).agent("").track(name)


@dataclass
class PlayoutStats:
    received_seconds: float = 0.0
    played_frames: int = 0
    overflow_dropped_seconds: float = 0.0
    overflow_dropped_chunks: int = 0
    interrupted_seconds: float = 0.0
    malformed_chunks: int = 0
    late_dropped_frames: int = 0


class PcmPlayout:
    """Queued s16le PCM of one track (mono or stereo, any rate); emits mono frames.

    Every byte in the queue is charged to ``budget``; bytes leave it as they leave the queue.
    """

    def __init__(
        self, fmt: PcmFormat, max_seconds: float = DEFAULT_MAX_SECONDS, name: str = "", budget: TrackBudget | None = None,
        tally: Tally | None = None,
    ) -> None:
        self.fmt = fmt
        self._tally = tally if tally is not None else Tally()
        self.source_rate = fmt.sample_rate
        self.name = name
        self.stats = PlayoutStats()
        self.budget = budget if budget is not None else standalone_budget(max_seconds, name)
        self._units = units_per_byte(fmt.sample_rate, fmt.channels)
        self._queue = bytearray()
        self._skip = 0  # bytes still to discard: the tail of a sample whose start was dropped

    @property
    def queued_seconds(self) -> float:
        return self._seconds(len(self._queue))

    def _seconds(self, nbytes: int) -> float:
        return nbytes / (self.fmt.sample_rate * self.fmt.sample_bytes)

    def push(self, data: bytes) -> None:
        if self._skip:
            cut = min(self._skip, len(data))
            self._skip -= cut
            data = data[cut:]
        self.stats.received_seconds += self._seconds(len(data))
        if self.budget.admit(len(data), len(data) * self._units):
            self._queue += data
            return
        # Keep the stream aligned: complete the sample the queue ends in, drop the rest.
        piece = data[: (-len(self._queue)) % self.fmt.sample_bytes]
        self.budget.charge(len(piece), len(piece) * self._units)
        self._queue += piece
        dropped = len(data) - len(piece)
        self._skip = (-dropped) % self.fmt.sample_bytes
        self.stats.overflow_dropped_seconds += self._seconds(dropped)
        self.stats.overflow_dropped_chunks += 1
        self._tally.playout_dropped_chunks += 1

    def _take(self, nbytes: int) -> bytes:
        """Remove the first ``nbytes`` from the queue (all of it: a trailing partial sample is skipped too)."""
        if nbytes >= len(self._queue):
            nbytes = len(self._queue)
            # A partial sample at the tail belongs to audio that is now gone. (A skip still
            # pending from an overflow implies the queue ends on a sample boundary: it adds 0.)
            self._skip += (-nbytes) % self.fmt.sample_bytes
        taken = bytes(self._queue[:nbytes])
        del self._queue[:nbytes]
        self.budget.release(nbytes, nbytes * self._units)
        return taken

    def next_frame(self, idle_for: float, finishing: bool) -> Samples | None:
        """The next 20 ms mono frame, or None if nothing should play now."""
        size = self.fmt.frame_bytes
        if len(self._queue) >= size:
            frame = self._take(size)
        elif self._queue and (finishing or idle_for >= HOLD_PARTIAL_S):
            frame = self._take(len(self._queue))
            frame = frame[: len(frame) - len(frame) % self.fmt.sample_bytes].ljust(size, b"\0")
        else:
            return None
        self.stats.played_frames += 1
        self._tally.playout_frames_played += 1
        return to_mono(frame, self.fmt.channels)

    def drop_frames(self, frames: int) -> int:
        """Drop up to ``frames`` of the oldest frames (they are late); returns how many were dropped."""
        size = self.fmt.frame_bytes
        dropped = len(self._take(frames * size))
        count = -(-dropped // size)
        self.stats.late_dropped_frames += count
        return count

    def clear(self) -> None:
        self.stats.interrupted_seconds += self.queued_seconds
        self._take(len(self._queue))

    def has_pending(self) -> bool:
        return bool(self._queue)


class OpusPlayout:
    """Queued Opus packets of one track; decoded one frame at a time at playout.

    A packet is charged to ``budget`` (its bytes and duration) until it is taken for decoding.
    """

    def __init__(
        self, max_seconds: float = DEFAULT_MAX_SECONDS, name: str = "", budget: TrackBudget | None = None,
        tally: Tally | None = None,
    ) -> None:
        self.source_rate = OPUS_RATE
        self._tally = tally if tally is not None else Tally()
        self.name = name
        self.stats = PlayoutStats()
        self.budget = budget if budget is not None else standalone_budget(max_seconds, name)
        self._packets: deque[tuple[bytes, int]] = deque()
        self._queued_samples = 0
        self._decoded: Samples = np.zeros(0, dtype=np.int16)
        self._decoder = OpusDecoder()

    @property
    def queued_seconds(self) -> float:
        return (self._queued_samples + len(self._decoded)) / OPUS_RATE

    def push(self, packet: bytes) -> None:
        """Queue one Opus packet; raises ValueError if it is not a valid Opus packet."""
        samples = packet_samples(packet)
        self.stats.received_seconds += samples / OPUS_RATE
        if not self.budget.admit(len(packet), samples * OPUS_UNITS):
            self.stats.overflow_dropped_seconds += samples / OPUS_RATE
            self.stats.overflow_dropped_chunks += 1
            self._tally.playout_dropped_chunks += 1
            return
        self._packets.append((packet, samples))
        self._queued_samples += samples

    def _pop(self) -> tuple[bytes, int]:
        packet, samples = self._packets.popleft()
        self._queued_samples -= samples
        self.budget.release(len(packet), samples * OPUS_UNITS)
        return packet, samples

    def _decode_next(self) -> None:
        packet, _ = self._pop()
        try:
            decoded = self._decoder.decode(packet)
        except Exception:  # a packet libopus rejects is skipped, not fatal
            self.stats.malformed_chunks += 1
            self._tally.playout_malformed += 1
            if self.stats.malformed_chunks == 1:  # a broken encoder sends many: say it once
                log.warning("track %s: libopus could not decode a packet; skipped (later ones are "
                            "counted, reported when the track ends)", self.name)
            return
        self._decoded = np.concatenate([self._decoded, decoded])

    def next_frame(self, idle_for: float, finishing: bool) -> Samples | None:
        size = OPUS_FRAME
        while len(self._decoded) < size and self._packets:
            self._decode_next()
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

    def drop_frames(self, frames: int) -> int:
        """Drop up to ``frames`` of the oldest frames (they are late); returns how many were dropped.

        Whole packets are dropped undecoded; only a packet that straddles the cut is decoded.
        """
        want = frames * OPUS_FRAME
        dropped = min(len(self._decoded), want)
        self._decoded = self._decoded[dropped:]
        while self._packets and dropped + self._packets[0][1] <= want:
            dropped += self._pop()[1]
        if dropped < want and self._packets:
            self._decode_next()
            cut = min(len(self._decoded), want - dropped)
            self._decoded = self._decoded[cut:]
            dropped += cut
        count = -(-dropped // OPUS_FRAME)
        self.stats.late_dropped_frames += count
        return count

    def clear(self) -> None:
        self.stats.interrupted_seconds += self.queued_seconds
        self._packets.clear()
        self._queued_samples = 0
        self._decoded = np.zeros(0, dtype=np.int16)
        self.budget.release_all()

    def has_pending(self) -> bool:
        return bool(self._packets) or bool(len(self._decoded))


Playout = PcmPlayout | OpusPlayout
