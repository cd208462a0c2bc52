"""16-bit PCM formats, downmixing and resampling, in 20 ms frames.

Resampling uses libswresample through PyAV rather than soxr: soxr's streaming API hands
output back in bursts (0, 734, 0, 734 ... samples per 20 ms frame at 16→24 kHz), which
would force another ~20 ms of buffering on every resampled track; swresample returns a
full frame for every frame after a 1 ms priming delay.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

FRAME_MS = 20
"""Playout and delivery granularity; 20 ms is what WebRTC Opus senders use."""

Samples = npt.NDArray[np.int16]


@dataclass(frozen=True)
class PcmFormat:
    sample_rate: int
    channels: int

    @property
    def frame_samples(self) -> int:
        """Samples per channel in one 20 ms frame."""
        return self.sample_rate * FRAME_MS // 1000

    @property
    def sample_bytes(self) -> int:
        """Bytes of one sample of every channel (the stream's alignment unit)."""
        return 2 * self.channels

    @property
    def frame_bytes(self) -> int:
        return self.frame_samples * self.sample_bytes

    def bytes_for_seconds(self, seconds: float) -> int:
        return int(seconds * self.sample_rate) * self.sample_bytes


def to_mono(frame: bytes, channels: int) -> Samples:
    """Interleaved s16le bytes → mono int16 samples (channels averaged)."""
    samples = np.frombuffer(frame, dtype="<i2")
    if channels == 1:
        mono: Samples = samples.astype(np.int16, copy=False)  # no copy on little-endian hosts
        return mono
    mixed: Samples = (samples.reshape(-1, channels).astype(np.int32).sum(axis=1) // channels).astype(np.int16)
    return mixed


class Resampler:
    """A streaming mono int16 resampler; keeps filter state across frames (no clicks)."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._swr = None if in_rate == out_rate else av.AudioResampler(format="s16", layout="mono", rate=out_rate)

    def process(self, samples: Samples) -> Samples:
        if self._swr is None:
            return samples
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.in_rate
        # Read the output planes in place: to_ndarray() costs a third of the call (per-frame path).
        out: list[Samples] = [
            np.frombuffer(memoryview(f.planes[0]), dtype=np.int16, count=f.samples) for f in self._swr.resample(frame)
        ]
        if not out:
            return np.zeros(0, dtype=np.int16)
        return out[0] if len(out) == 1 else np.concatenate(out)
