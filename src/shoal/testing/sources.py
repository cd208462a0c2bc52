"""Audio sources a test peer can publish: tones, WAV files, generated audio, pre-encoded Opus.

Each is an aiortc ``MediaStreamTrack`` that paces itself in real time by the frames'
presentation timestamps, as a microphone would; ``realtime=False`` produces as fast as the
sender reads (for tests without a network). ``OpusPacketSource`` hands aiortc ready Opus
packets, which its RTP sender packetizes without encoding, so load generators stay cheap.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
import wave
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from shoal.media.opus import encode_opus, packet_samples

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz, the packetization every WebRTC stack uses for Opus
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
LATE_RESET_S = 0.1  # a source more than 100 ms behind its clock restarts pacing instead of bursting

FrameHook = Callable[[int, float], None]
"""Called as ``hook(frame_index, time.monotonic())`` for every frame (or packet) a source produces."""


class _PacedSource(MediaStreamTrack):
    """A track that hands out frames no faster than real time, paced by their pts (audio or video)."""

    def __init__(self, *, realtime: bool = True, on_frame: FrameHook | None = None) -> None:
        super().__init__()
        self.realtime = realtime
        self.on_frame = on_frame
        self.produced = 0
        """Frames (or packets) handed to the sender so far."""
        self._anchor: float | None = None

    async def _pace(self, pts: int, rate: int) -> None:
        """Wait until ``pts`` is due; the first frame anchors the clock, as aiortc's AudioStreamTrack."""
        if not self.realtime:
            return
        offset = pts / rate
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = now - offset
            return
        wait = self._anchor + offset - now
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -LATE_RESET_S:
            self._anchor = now - offset  # stalled (e.g. a GC pause): resume now instead of bursting

    def _count(self) -> None:
        index = self.produced
        self.produced += 1
        if self.on_frame is not None:
            self.on_frame(index, time.monotonic())

    def _check_live(self) -> None:
        if self.readyState != "live":
            raise MediaStreamError


class _PacedAudioSource(_PacedSource):
    """An audio track paced in real time."""

    kind = "audio"


def _audio_frame(samples: np.ndarray, channels: int, rate: int, pts: int) -> av.AudioFrame:
    """An s16 packed frame from int16 samples shaped (n,) or (n, channels)."""
    layout = "stereo" if channels == 2 else "mono"
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1), format="s16", layout=layout
    )
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, rate)
    return frame


class ToneSource(_PacedAudioSource):
    """A sine tone: 48 kHz mono s16 frames of 20 ms, continuous in phase, for ``seconds`` or forever."""

    def __init__(
        self,
        freq_hz: float,
        amplitude: int = 8000,
        seconds: float | None = None,
        *,
        realtime: bool = True,
        on_frame: FrameHook | None = None,
    ) -> None:
        super().__init__(realtime=realtime, on_frame=on_frame)
        self.freq_hz = freq_hz
        self.amplitude = amplitude
        self._frames_left = None if seconds is None else math.ceil(seconds * SAMPLE_RATE / FRAME_SAMPLES)
        self._pts = 0
        self._phase = 0.0
        self._step = 2 * math.pi * freq_hz / SAMPLE_RATE

    async def recv(self) -> av.AudioFrame:
        self._check_live()
        if self._frames_left is not None:
            if self._frames_left <= 0:
                self.stop()
                raise MediaStreamError
            self._frames_left -= 1
        pts = self._pts
        await self._pace(pts, SAMPLE_RATE)
        phases = self._phase + self._step * np.arange(FRAME_SAMPLES)
        samples = np.round(self.amplitude * np.sin(phases)).astype(np.int16)
        self._phase = (self._phase + self._step * FRAME_SAMPLES) % (2 * math.pi)
        self._pts += FRAME_SAMPLES
        self._count()
        return _audio_frame(samples, 1, SAMPLE_RATE, pts)


def _resample_to_48k(samples: np.ndarray, rate: int, channels: int) -> np.ndarray:
    """int16 (n, channels) at ``rate`` → int16 (m, channels) at 48 kHz, with PyAV's resampler."""
    if rate == SAMPLE_RATE or len(samples) == 0:
        return samples
    layout = "stereo" if channels == 2 else "mono"
    resampler = av.AudioResampler(format="s16", layout=layout, rate=SAMPLE_RATE)
    out = resampler.resample(_audio_frame(samples, channels, rate, 0)) + resampler.resample(None)
    if not out:
        return np.zeros((0, channels), dtype=np.int16)
    return np.concatenate([f.to_ndarray().reshape(-1, channels) for f in out]).astype(np.int16)


class WavSource(_PacedAudioSource):
    """A 16-bit WAV file played in real time as 48 kHz frames (stereo files stay stereo, others mono).

    The whole file is read and resampled up front, which suits test fixtures.
    """

    def __init__(
        self,
        path: str | Path,
        loop: bool = False,
        *,
        realtime: bool = True,
        on_frame: FrameHook | None = None,
    ) -> None:
        super().__init__(realtime=realtime, on_frame=on_frame)
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise ValueError(f"{path}: only 16-bit PCM WAV files are supported")
            rate, file_channels = wav.getframerate(), wav.getnchannels()
            raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, file_channels)
        if file_channels > 2:  # no standard layout to hand to the resampler: average to mono
            raw = raw.mean(axis=1, keepdims=True).round().astype(np.int16)
        self.channels = 2 if file_channels == 2 else 1
        self.loop = loop
        self._audio = _resample_to_48k(raw.astype(np.int16), rate, self.channels)
        self._pos = 0
        self._pts = 0

    @property
    def duration_s(self) -> float:
        return len(self._audio) / SAMPLE_RATE

    async def recv(self) -> av.AudioFrame:
        self._check_live()
        total = len(self._audio)
        if total == 0 or (not self.loop and self._pos >= total):
            self.stop()
            raise MediaStreamError
        if self.loop:
            index = (self._pos + np.arange(FRAME_SAMPLES)) % total
            chunk = self._audio[index]
        else:
            chunk = self._audio[self._pos : self._pos + FRAME_SAMPLES]
            if len(chunk) < FRAME_SAMPLES:  # pad the last frame: encoders want whole 20 ms frames
                chunk = np.concatenate(
                    [chunk, np.zeros((FRAME_SAMPLES - len(chunk), self.channels), np.int16)]
                )
        self._pos = (self._pos + FRAME_SAMPLES) % total if self.loop else self._pos + FRAME_SAMPLES
        pts = self._pts
        await self._pace(pts, SAMPLE_RATE)
        self._pts += FRAME_SAMPLES
        self._count()
        return _audio_frame(chunk, self.channels, SAMPLE_RATE, pts)


ChunkSupplier = Iterable[np.ndarray] | Callable[[], np.ndarray | None]


class GeneratorSource(_PacedAudioSource):
    """Audio from code: an iterable of int16 chunks, or a callable returning the next chunk (None ends).

    Chunks may have any length, shaped (n,) or (n, channels), at ``rate``; they are cut into
    20 ms frames (aiortc's encoder resamples them to 48 kHz). The supplier runs on the event
    loop, so it must be quick.
    """

    def __init__(
        self,
        supplier: ChunkSupplier,
        rate: int = SAMPLE_RATE,
        channels: int = 1,
        *,
        realtime: bool = True,
        on_frame: FrameHook | None = None,
    ) -> None:
        super().__init__(realtime=realtime, on_frame=on_frame)
        if channels not in (1, 2):
            raise ValueError("channels must be 1 or 2")
        self.rate = rate
        self.channels = channels
        self._frame = rate // 50
        self._iter: Iterator[np.ndarray] | None = None
        self._call: Callable[[], np.ndarray | None] | None = None
        if callable(supplier) and not isinstance(supplier, Iterable):
            self._call = supplier
        else:
            self._iter = iter(supplier)
        self._buffer = np.zeros((0, channels), dtype=np.int16)
        self._exhausted = False
        self._pts = 0

    def _next_chunk(self) -> np.ndarray | None:
        if self._call is not None:
            return self._call()
        assert self._iter is not None
        return next(self._iter, None)

    async def recv(self) -> av.AudioFrame:
        self._check_live()
        while len(self._buffer) < self._frame and not self._exhausted:
            chunk = self._next_chunk()
            if chunk is None:
                self._exhausted = True
                break
            shaped = np.asarray(chunk, dtype=np.int16).reshape(-1, self.channels)
            self._buffer = np.concatenate([self._buffer, shaped])
        if len(self._buffer) == 0:
            self.stop()
            raise MediaStreamError
        out, self._buffer = self._buffer[: self._frame], self._buffer[self._frame :]
        pts = self._pts
        await self._pace(pts, self.rate)
        self._pts += len(out)
        self._count()
        return _audio_frame(out, self.channels, self.rate, pts)


class OpusPacketSource(_PacedAudioSource):
    """Pre-encoded Opus packets, sent as they are: aiortc's sender packs ``av.Packet``s without encoding.

    A cheap load generator: no encoder runs per peer. ``pts`` advances by each packet's duration.
    ``speed`` compresses time (40: forty times faster than real time, paced all the same), for
    hours of a call in minutes; it may be changed while the track plays.
    """

    def __init__(
        self,
        packets: Sequence[bytes],
        loop: bool = True,
        *,
        realtime: bool = True,
        on_frame: FrameHook | None = None,
        speed: float = 1.0,
    ) -> None:
        super().__init__(realtime=realtime, on_frame=on_frame)
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = speed
        self._speed_base = 0  # the pts from which the current speed paces
        if not packets:
            raise ValueError("no Opus packets")
        self._packets = [bytes(p) for p in packets]
        self._durations = [packet_samples(p) for p in self._packets]  # raises ValueError if malformed
        self.loop = loop
        self._index = 0
        self._pts = 0

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if value <= 0:
            raise ValueError("speed must be positive")
        self._speed = value
        self._speed_base = self._pts
        self._anchor = None  # pacing restarts from the next packet

    async def recv(self) -> av.Packet[Any]:
        self._check_live()
        if self._index >= len(self._packets):
            if not self.loop:
                self.stop()
                raise MediaStreamError
            self._index = 0
        data, duration = self._packets[self._index], self._durations[self._index]
        self._index += 1
        pts = self._pts
        await self._pace(round((pts - self._speed_base) / self._speed), SAMPLE_RATE)
        self._pts += duration
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = TIME_BASE
        self._count()
        return packet


def encode_opus_tone(freq: float, seconds: float, amplitude: int = 8000, bitrate: int = 32000) -> list[bytes]:
    """A sine tone encoded with libopus: 48 kHz mono, one 20 ms frame per packet."""
    total = math.ceil(seconds * SAMPLE_RATE / FRAME_SAMPLES) * FRAME_SAMPLES
    signal = np.round(amplitude * np.sin(2 * np.pi * freq * np.arange(total) / SAMPLE_RATE)).astype(np.int16)
    return encode_opus(signal, bitrate)
