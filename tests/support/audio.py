"""Test signals and their analysis: tones in, dominant frequency and level out."""

from __future__ import annotations

import numpy as np


def tone(freq: float, seconds: float, rate: int, amplitude: int = 8000, channels: int = 1) -> bytes:
    """A sine tone as s16le bytes (the same signal on every channel)."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * freq * t) * amplitude).astype("<i2")
    return np.repeat(mono, channels).astype("<i2").tobytes() if channels > 1 else mono.tobytes()


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """Frequency (Hz) of the strongest spectral peak, windowed to limit leakage."""
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * rate / len(x))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
