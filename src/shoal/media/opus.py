"""Opus decoding (libopus through PyAV) and packet-duration parsing.

Agents may publish Opus tracks: one Opus packet per ``TrackData`` message. Packets are
queued as they are and decoded one frame at a time at playout, so a burst of minutes of
audio never blocks the event loop with a long decode.
"""

from __future__ import annotations

import fractions
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np

# Packet durations are parsed by the SDK's module (agents estimate what they queued); re-exported here.
from fishjam._opus_packets import MAX_FRAME_BYTES as MAX_FRAME_BYTES
from fishjam._opus_packets import max_packet_bytes as max_packet_bytes
from fishjam._opus_packets import packet_samples as packet_samples
from shoal.media.pcm import Samples

OPUS_RATE = 48000

class OpusDecoder:
    """Decodes Opus packets to mono 48 kHz int16 (stereo streams are downmixed by libopus)."""

    def __init__(self) -> None:
        self._ctx = av.CodecContext.create("libopus", "r")
        self._ctx.sample_rate = OPUS_RATE
        self._ctx.layout = "mono"

    def decode(self, packet: bytes) -> Samples:
        chunks = [frame.to_ndarray().reshape(-1) for frame in self._ctx.decode(av.Packet(packet))]
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        out = np.concatenate(chunks)
        if out.dtype != np.int16:  # some builds decode to float
            out = np.clip(out, -1.0, 1.0) * 32767
        return out.astype(np.int16)


def opus_encoder_context(bitrate: int, application: str = "audio") -> Any:
    """A libopus encoder for mono 48 kHz s16 in 20 ms frames (one packet per frame)."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = OPUS_RATE
    ctx.layout = "mono"
    ctx.format = "s16"
    ctx.bit_rate = bitrate
    ctx.options = {"application": application, "frame_duration": "20"}
    return ctx


class OpusEncoder:
    """Encodes mono 48 kHz int16 to Opus packets, 20 ms each (tests, tools, load generators)."""

    def __init__(self, bitrate: int = 32000) -> None:
        self._ctx = opus_encoder_context(bitrate)
        self._pts = 0

    def encode(self, samples: Samples) -> list[bytes]:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OPUS_RATE
        frame.pts = self._pts
        self._pts += samples.shape[0]
        return [bytes(packet) for packet in self._ctx.encode(frame)]

    def flush(self) -> list[bytes]:
        """The packets still held in the encoder (its look-ahead)."""
        return [bytes(packet) for packet in self._ctx.encode(None)]


def encode_opus(samples: Samples, bitrate: int = 32000) -> list[bytes]:
    """A whole mono 48 kHz signal as 20 ms Opus packets (padded to a whole frame)."""
    frame = OpusPacketizer.FRAME
    padded = np.zeros(-(-len(samples) // frame) * frame, dtype=np.int16)
    padded[: len(samples)] = samples
    encoder = OpusEncoder(bitrate)
    packets = [p for start in range(0, len(padded), frame) for p in encoder.encode(padded[start : start + frame])]
    return packets + encoder.flush()


class LivePts:
    """Presentation timestamps (48 kHz) of a live track's 20 ms packets, for hours.

    A packet's pts is the previous one's plus a frame while audio flows. After a pause (an
    agent that stopped talking, a stalled loop) it jumps to where the clock says the track
    now is, counted from the first packet, so RTP timestamps follow the wall clock and
    listeners' jitter buffers never see a burst that looks minutes late. Counting from one
    origin, not from pause to pause, keeps rounding from piling up over a long call; pts
    never steps back (a listener would discard such packets as old).
    """

    def __init__(self, frame: int = 960, rate: int = OPUS_RATE, gap_s: float = 0.1) -> None:
        self.frame = frame
        self.rate = rate
        self.gap_s = gap_s
        self.pts = 0
        """The pts the next packet gets."""
        self._origin: float | None = None
        self._last = 0.0

    def tick(self, now: float) -> None:
        """Note the time audio is handed in; after a pause, move ``pts`` on to the clock."""
        if self._origin is None:
            self._origin = now
        elif now - self._last > self.gap_s:
            due = round((now - self._origin) * self.rate / self.frame) * self.frame
            self.pts = max(self.pts, due)
        self._last = now

    def take(self) -> int:
        """The next packet's pts (and advance one frame)."""
        pts = self.pts
        self.pts += self.frame
        return pts


class OpusPacketizer:
    """Encodes a track's 48 kHz mono PCM to Opus packets for WebRTC senders, once per track.

    Packets carry their own ``pts`` (48 kHz units, from ``LivePts``); aiortc's senders turn
    it into RTP timestamps (adding their random origin, modulo 2^32).
    """

    FRAME = 960
    GAP_S = 0.1

    def __init__(self, bitrate: int = 48000, clock: Callable[[], float] = time.monotonic) -> None:
        self._ctx = opus_encoder_context(bitrate, application="voip")
        self._pending = np.zeros(0, dtype=np.int16)
        self._in_pts = 0
        self._timing = LivePts(self.FRAME, OPUS_RATE, self.GAP_S)
        self._clock = clock
        self._time_base = fractions.Fraction(1, OPUS_RATE)

    def encode(self, samples: Samples) -> list[av.Packet[Any]]:
        self._timing.tick(self._clock())
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        usable = len(samples) - len(samples) % self.FRAME
        self._pending = samples[usable:].copy()
        packets: list[av.Packet[Any]] = []
        for start in range(0, usable, self.FRAME):
            frame = av.AudioFrame.from_ndarray(samples[start : start + self.FRAME].reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = OPUS_RATE
            frame.pts = self._in_pts
            self._in_pts += self.FRAME
            for packet in self._ctx.encode(frame):
                packet.pts = self._timing.take()
                packet.time_base = self._time_base
                packets.append(packet)
        return packets
