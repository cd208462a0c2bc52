"""Test video: a source whose every frame carries its index in the picture, and a bounded recording.

``VideoSource`` draws a moving bright square (so every frame differs and the encoder has real
work) and writes its frame index as 16 large black/white blocks along the top, with the
inverted blocks right below them as a check. Blocks that large survive lossy coding and
scaling, so a receiver can read the index back with :func:`read_frame_index` and tell which
frames arrived, in which order, and whether any were skipped or repeated.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from typing import Any

import av
import numpy as np

from shoal.testing.sources import FrameHook, _PacedSource

VIDEO_CLOCK = 90000  # the RTP clock rate of every video codec
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
INDEX_BITS = 16  # the index is read back modulo 2**16
BAND_FRACTION = 8  # each row of index blocks is 1/8 of the picture height
BLACK, WHITE, BACKGROUND = 16, 235, 60  # video-range luma
THRESHOLD, MARGIN = 126, 40  # a block whose mean is within MARGIN of THRESHOLD is unreadable
LUMA_FORMATS = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}


def _block(width: int, height: int, row: int, col: int) -> tuple[int, int, int, int]:
    """Pixel box ``(y0, y1, x0, x1)`` of index block ``col`` in band ``row`` (0: bits, 1: inverted)."""
    return (
        row * height // BAND_FRACTION,
        (row + 1) * height // BAND_FRACTION,
        col * width // INDEX_BITS,
        (col + 1) * width // INDEX_BITS,
    )


class VideoSource(_PacedSource):
    """Synthetic camera: yuv420p frames at ``fps``, pts in 1/90000, paced in real time (``realtime``).

    Frame ``n`` shows ``n % 65536`` in its index blocks (see :func:`read_frame_index`) and a square
    at a position that depends on ``n``. ``frames_sent`` counts the frames handed to the sender.
    """

    kind = "video"

    def __init__(
        self,
        width: int = 320,
        height: int = 240,
        fps: float = 15,
        realtime: bool = True,
        *,
        on_frame: FrameHook | None = None,
    ) -> None:
        super().__init__(realtime=realtime, on_frame=on_frame)
        if width < 64 or height < 48 or width % 2 or height % 2:
            raise ValueError("width and height must be even and at least 64x48")
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.width = width
        self.height = height
        self.fps = fps
        self._top = 2 * height // BAND_FRACTION  # the square moves below the index bands
        self._side = max(8, (height - self._top) // 3) // 2 * 2

    @property
    def frames_sent(self) -> int:
        return self.produced

    async def recv(self) -> av.VideoFrame:
        self._check_live()
        index = self.produced
        pts = round(index * VIDEO_CLOCK / self.fps)
        await self._pace(pts, VIDEO_CLOCK)
        frame = av.VideoFrame.from_ndarray(self.picture(index), format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self._count()
        return frame

    def picture(self, index: int) -> np.ndarray:
        """The yuv420p planes of frame ``index``, stacked as PyAV's ``from_ndarray`` takes them."""
        w, h = self.width, self.height
        y = np.full((h, w), BACKGROUND, dtype=np.uint8)
        uv = np.full((h // 2, w), 128, dtype=np.uint8)  # the U plane, then the V plane, each h/2 x w/2
        value = index % (1 << INDEX_BITS)
        for col in range(INDEX_BITS):
            bit = (value >> (INDEX_BITS - 1 - col)) & 1
            for row, on in ((0, bit), (1, 1 - bit)):
                y0, y1, x0, x1 = _block(w, h, row, col)
                y[y0:y1, x0:x1] = WHITE if on else BLACK
        side, span_x, span_y = self._side, w - self._side, h - self._top - self._side
        x = (index * 7) % (2 * span_x)
        x = (x if x < span_x else 2 * span_x - x) // 2 * 2
        top = (index * 3) % (2 * span_y)
        top = self._top + (top if top < span_y else 2 * span_y - top) // 2 * 2
        y[top : top + side, x : x + side] = 220
        flat, quarter = uv.reshape(-1), (h // 2) * (w // 2)
        u, v = flat[:quarter].reshape(h // 2, w // 2), flat[quarter:].reshape(h // 2, w // 2)
        u[top // 2 : (top + side) // 2, x // 2 : (x + side) // 2] = 90
        v[top // 2 : (top + side) // 2, x // 2 : (x + side) // 2] = 200
        return np.concatenate([y, uv])


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """The luma plane as a (height, width) uint8 array, without converting the whole frame."""
    if frame.format.name in LUMA_FORMATS:
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
        return rows[: frame.height, : frame.width]
    return np.asarray(frame.reformat(format="gray").to_ndarray())


def read_frame_index(frame: av.VideoFrame) -> int | None:
    """The index a :class:`VideoSource` wrote into ``frame`` (modulo 65536), None if unreadable.

    Reads the middle of each block; a block too close to mid-grey, or a bit whose check block
    is not its inverse, makes the whole frame unreadable (a corrupt or foreign picture).
    """
    if frame.width < INDEX_BITS * 2 or frame.height < BAND_FRACTION * 2:
        return None
    luma = _luma(frame)
    value = 0
    for col in range(INDEX_BITS):
        bits = []
        for row in (0, 1):
            y0, y1, x0, x1 = _block(frame.width, frame.height, row, col)
            dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
            mean = float(luma[y0 + dy : y1 - dy, x0 + dx : x1 - dx].mean())
            if abs(mean - THRESHOLD) < MARGIN:
                return None
            bits.append(mean > THRESHOLD)
        if bits[0] == bits[1]:
            return None
        value = (value << 1) | int(bits[0])
    return value


class VideoRecording:
    """Received video, bounded: counts, recent arrival times and frame indexes, the last frame only.

    ``indexes`` are what :func:`read_frame_index` read from the most recent frames (unreadable
    ones are counted in ``unreadable``, not listed); ``arrivals`` are ``time.monotonic()`` times.
    """

    MAX_FPS = 60  # bounds the kept entries to max_seconds of video at this rate

    def __init__(self, max_seconds: float = 120.0, *, read_indexes: bool = True) -> None:
        size = max(1, int(max_seconds * self.MAX_FPS))
        self.read_indexes = read_indexes
        self.frames = 0
        self.unreadable = 0
        self.first_frame_at: float | None = None
        self.last_size: tuple[int, int] | None = None
        self.last_frame: av.VideoFrame | None = None
        self._arrivals: deque[float] = deque(maxlen=size)
        self._indexes: deque[int] = deque(maxlen=size)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def append(self, frame: Any, arrival: float | None = None) -> None:
        """Add one decoded ``av.VideoFrame`` that arrived at ``arrival`` (default: now)."""
        now = time.monotonic() if arrival is None else arrival
        self.frames += 1
        if self.first_frame_at is None:
            self.first_frame_at = now
        self._arrivals.append(now)
        self.last_size = (frame.width, frame.height)
        self.last_frame = frame
        if self.read_indexes:
            index = read_frame_index(frame)
            if index is None:
                self.unreadable += 1
            else:
                self._indexes.append(index)
        if self._waiters:
            still = []
            for target, fut in self._waiters:
                if fut.done():
                    continue
                if self.frames >= target:
                    fut.set_result(None)
                else:
                    still.append((target, fut))
            self._waiters = still

    @property
    def arrivals(self) -> list[float]:
        return list(self._arrivals)

    @property
    def indexes(self) -> list[int]:
        return list(self._indexes)

    async def wait_for_frames(self, n: int, timeout: float = 10.0) -> None:
        """Wait until ``n`` frames have been received in total; TimeoutError otherwise."""
        if self.frames >= n:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, fut))
        await asyncio.wait_for(fut, timeout)
