"""Still images of a forwarded video track, for agents' ``CaptureImage``.

Forwarding never decodes video. A capture switches decoding on for the track (the RTP tap
then feeds aiortc's jitter buffer and decoder), asks the publisher for a keyframe so the
decoder can start, and turns the next decoded frame into a JPEG. Decoding stays on for
``KEEP_DECODING_S`` after the last capture, so an agent that captures every few seconds
costs one keyframe, not one per capture. Captures of a track happen at most once per
``MIN_INTERVAL_S`` (the documented one image per second per track); requests that come
sooner wait for the next capture and share it.

JPEGs keep the track's resolution, scaled down (aspect kept) to fit ``MAX_WIDTH`` ×
``MAX_HEIGHT``; quality is lowered if an image would exceed ``MAX_BYTES`` (agents' SDKs
accept messages up to 1 MiB).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

KEEP_DECODING_S = 10.0
MIN_INTERVAL_S = 1.0
MAX_WIDTH = 1280
MAX_HEIGHT = 720
MAX_BYTES = 900_000
JPEG_QUALITIES = (3, 8, 16, 31)
"""libavcodec's mjpeg quantizer (2 best … 31 worst), tried in order until the image fits."""


def fit_within(width: int, height: int, max_width: int = MAX_WIDTH, max_height: int = MAX_HEIGHT) -> tuple[int, int]:
    """The largest even size ≤ the bounds with the frame's aspect ratio (never upscaled)."""
    scale = min(1.0, max_width / width, max_height / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def encode_jpeg(frame: av.VideoFrame) -> bytes:
    """A baseline JPEG of ``frame`` (runs in a worker thread: tens of milliseconds)."""
    width, height = fit_within(frame.width, frame.height)
    image = frame.reformat(width=width, height=height, format="yuvj420p")
    data = b""
    for quality in JPEG_QUALITIES:
        ctx: Any = av.CodecContext.create("mjpeg", "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuvj420p"
        ctx.time_base = fractions.Fraction(1, 1)
        ctx.options = {"qmin": str(quality), "qmax": str(quality)}
        data = b"".join(bytes(packet) for packet in [*ctx.encode(image), *ctx.encode(None)])
        if len(data) <= MAX_BYTES:
            break
    return data


class VideoSnapshots:
    """Decoded frames of one video track, only while someone asks for images."""

    def __init__(self, name: str, request_keyframe: Callable[[], None]) -> None:
        self.name = name
        self._request_keyframe = request_keyframe
        self._loop = asyncio.get_running_loop()
        self._decode_until = 0.0
        self._frame_waiters: list[asyncio.Future[av.VideoFrame]] = []
        self._lock = asyncio.Lock()
        self._started = 0
        """Captures started so far; a request may share only a capture started after it came."""
        self._last_jpeg: bytes | None = None
        self._last_number = 0
        self._last_at = float("-inf")
        self.decoded_frames = 0
        self.captures = 0

    def decode_wanted(self) -> bool:
        return self._loop.time() < self._decode_until

    async def read(self, track: MediaStreamTrack) -> int:
        """Drain the decoded track (frames come only while decoding is wanted)."""
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.VideoFrame):
                    continue
                self.decoded_frames += 1
                waiters, self._frame_waiters = self._frame_waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(frame)
        except MediaStreamError:
            pass
        return self.decoded_frames

    async def jpeg(self, timeout: float = 5.0) -> bytes | None:
        """A JPEG of a frame decoded after this call, or None if none came within ``timeout``."""
        started_before = self._started
        async with self._lock:
            if self._last_jpeg is not None and self._last_number > started_before:
                return self._last_jpeg  # a capture started after this request: share it
            # time.monotonic(), not loop.time(): uvloop's clock is cached per loop iteration.
            wait = self._last_at + MIN_INTERVAL_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._started += 1
            number = self._started
            frame = await self._next_frame(timeout)
            if frame is None:
                log.info("%s: no decodable frame within %.1f s for an image capture", self.name, timeout)
                return None
            data = await self._loop.run_in_executor(None, encode_jpeg, frame)
            self._last_jpeg, self._last_number, self._last_at = data, number, time.monotonic()
            self.captures += 1
            log.info("%s: captured a %dx%d frame as a %d-byte JPEG", self.name, frame.width, frame.height, len(data))
            return data

    async def _next_frame(self, timeout: float) -> av.VideoFrame | None:
        if not self.decode_wanted():
            self._request_keyframe()  # the decoder starts now: it needs a keyframe
        self._decode_until = self._loop.time() + KEEP_DECODING_S
        waiter: asyncio.Future[av.VideoFrame] = self._loop.create_future()
        self._frame_waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
