"""Opus decoding (libopus through PyAV) and packet-duration parsing.

Agents may publish Opus tracks: one Opus packet per ``TrackData`` message. Packets are
queued as they are and decoded one frame at a time at playout, so a burst of minutes of
audio never blocks the event loop with a long decode.
"""

from __future__ import annotations

import av
import numpy as np

from shoal.media.pcm import Samples

OPUS_RATE = 48000

# Frame durations in 48 kHz samples per TOC configuration (RFC 6716, section 3.1).
_SILK = (480, 960, 1920, 2880)
_HYBRID = (480, 960)
_CELT = (120, 240, 480, 960)


def packet_samples(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples; raises ValueError if malformed."""
    if not packet:
        raise ValueError("empty Opus packet")
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        frame = _SILK[config % 4]
    elif config < 16:
        frame = _HYBRID[config % 2]
    else:
        frame = _CELT[config % 4]
    code = toc & 0x03
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        if len(packet) < 2:
            raise ValueError("Opus packet with code 3 has no frame count byte")
        count = packet[1] & 0x3F
        if count == 0:
            raise ValueError("Opus packet with code 3 declares zero frames")
    total = frame * count
    if total > 5760:  # 120 ms is the most one packet may hold
        raise ValueError("Opus packet longer than 120 ms")
    return total


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


class OpusEncoder:
    """Encodes mono 48 kHz int16 in 20 ms frames to Opus packets (used by tests and tools)."""

    def __init__(self, bitrate: int = 32000) -> None:
        self._ctx = av.CodecContext.create("libopus", "w")
        self._ctx.sample_rate = OPUS_RATE
        self._ctx.layout = "mono"
        self._ctx.format = "s16"
        self._ctx.bit_rate = bitrate
        self._pts = 0

    def encode(self, samples: Samples) -> list[bytes]:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OPUS_RATE
        frame.pts = self._pts
        self._pts += samples.shape[0]
        return [bytes(packet) for packet in self._ctx.encode(frame)]
