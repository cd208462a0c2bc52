"""libopus' decoder, called directly: participants' audio decoded straight at the agents' rate.

PyAV reaches libopus through FFmpeg's wrapper, which always decodes at 48 kHz, so every
frame an agent hears (16 or 24 kHz) then went through a resampler: ~35 µs per 20 ms frame
for decode and resample, where libopus itself decodes a frame at 16 kHz in ~14 µs (its
decoder synthesises at the rate asked for; no resampler runs). This is that one call,
``opus_decode``, through ``ctypes`` with argument types declared once and the output buffer
allocated once per decoder, so a call costs ~1 µs over the library's own work. (A general
binding measured earlier, ``opuslib-next``, lost the gain to allocating per call.)

The library is the libopus PyAV's wheel carries (the one FFmpeg already uses here, pinned by
the lock), else the system's ``libopus.so.0``. ``check()`` runs at server start: without a
usable libopus the server refuses to start, naming what it looked for.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os

import numpy as np

from shoal.media.pcm import Samples

RATES = (8000, 12000, 16000, 24000, 48000)
"""The output rates libopus decodes at (RFC 6716 decoders may synthesise at any of these)."""
MAX_PACKET_MS = 120
"""The longest Opus packet (RFC 6716 3.2.1): the output buffer holds this much."""
OPUS_OK = 0


class LibopusError(RuntimeError):
    """No usable libopus was found (raised by ``check()`` at server start)."""


def _candidates() -> list[str]:
    """Where libopus may be: PyAV's bundled copy first (the one its FFmpeg loads), then the system's."""
    paths: list[str] = []
    try:
        import av

        here = os.path.dirname(os.path.dirname(os.path.abspath(av.__file__)))
        paths += sorted(glob.glob(os.path.join(here, "av.libs", "libopus*.so*")))
    except ImportError:  # pragma: no cover - PyAV is a dependency
        pass
    system = ctypes.util.find_library("opus")
    paths += [system] if system else []
    paths += ["libopus.so.0"]
    return paths


@functools.cache
def _library() -> ctypes.CDLL:
    tried: list[str] = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            create, decode, destroy = lib.opus_decoder_create, lib.opus_decode, lib.opus_decoder_destroy
        except (OSError, AttributeError) as exc:
            tried.append(f"{path}: {exc}")
            continue
        create.restype = ctypes.c_void_p
        create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        decode.restype = ctypes.c_int
        decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        destroy.restype = None
        destroy.argtypes = [ctypes.c_void_p]
        return lib
    raise LibopusError("no usable libopus (tried " + "; ".join(tried or ["nothing found"]) + ")")


def check() -> None:
    """Raise ``LibopusError`` unless a decoder can be made and decodes a packet (server start)."""
    decoder = MonoDecoder(16000)
    if decoder.decode(b"\xf8\xff\xfe").size != 320:  # a 20 ms CELT packet of silence
        raise LibopusError("libopus decoded a 20 ms packet to the wrong length")


class MonoDecoder:
    """One Opus stream decoded to mono int16 at ``rate`` (a stereo stream is downmixed by libopus)."""

    def __init__(self, rate: int) -> None:
        if rate not in RATES:
            raise ValueError(f"libopus decodes at {RATES}, not {rate}")
        lib = _library()
        error = ctypes.c_int(OPUS_OK)
        handle = lib.opus_decoder_create(rate, 1, ctypes.byref(error))
        if error.value != OPUS_OK or not handle:
            raise LibopusError(f"opus_decoder_create({rate}, 1) failed: {error.value}")
        self.rate = rate
        self._handle = handle
        self._decode = lib.opus_decode
        self._destroy = lib.opus_decoder_destroy
        self._capacity = rate * MAX_PACKET_MS // 1000
        self._out = np.zeros(self._capacity, dtype=np.int16)
        self._out_ptr = self._out.ctypes.data

    def decode(self, payload: bytes) -> Samples:
        """The packet's audio (a copy, the caller may keep it); ``ValueError`` if it does not decode."""
        if not payload:
            raise ValueError("empty Opus packet")
        samples = self._decode(self._handle, payload, len(payload), self._out_ptr, self._capacity, 0)
        if samples < 0:
            raise ValueError(f"opus_decode failed: {samples}")
        return self._out[:samples].copy()

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._destroy(handle)
