"""The seam between aiortc and the media plane: tracks in, packets out.

* ``read_audio`` drains a received (aiortc-decoded) audio track into a fan-out as mono
  int16 frames. Reading continuously matters: aiortc queues decoded frames without bound
  until someone reads them.
* ``PacketTrack`` is what an RTP sender reads for one listener: Opus packets that the
  track's fan-out encoded once for all listeners; aiortc packetizes them without
  re-encoding.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from shoal.media.pcm import Resampler, Samples, to_mono

log = logging.getLogger(__name__)

PACKET_QUEUE = 25
"""Packets (20 ms each) a listener may lag behind before the oldest are dropped: 0.5 s."""


def frame_to_mono(frame: av.AudioFrame) -> Samples:
    """An s16 (packed or planar) audio frame as mono int16 samples."""
    if frame.format.name == "s16" and frame.layout.name == "stereo":
        # What aiortc's Opus decoder produces, for every track: the hot path, read in place.
        both = np.frombuffer(memoryview(frame.planes[0]), dtype=np.int16, count=frame.samples * 2)
        halved: Samples = (both[0::2] >> 1) + (both[1::2] >> 1)
        return halved
    data = frame.to_ndarray()
    if frame.format.is_planar:
        data = data.T  # channels × samples → interleaved
    return to_mono(np.ascontiguousarray(data, dtype="<i2").tobytes(), len(frame.layout.channels))


async def wait_ended(track: MediaStreamTrack) -> None:
    """Return once a received track has ended (its media is consumed elsewhere, never queued here)."""
    try:
        while True:
            await track.recv()
    except MediaStreamError:
        pass


async def read_audio(track: MediaStreamTrack, rate: int, deliver: Callable[[Samples], None], name: str) -> int:
    """Feed every frame of ``track`` to ``deliver`` as mono int16 at ``rate``; returns frames read."""
    frames = 0
    resampler: Resampler | None = None
    try:
        while True:
            frame = await track.recv()
            if not isinstance(frame, av.AudioFrame):
                continue
            if frame.format.name != "s16":
                frame = av.AudioResampler(format="s16", layout=frame.layout.name, rate=frame.sample_rate).resample(frame)[0]
            samples = frame_to_mono(frame)
            if frame.sample_rate != rate:
                if resampler is None or resampler.in_rate != frame.sample_rate:
                    resampler = Resampler(frame.sample_rate, rate)
                samples = resampler.process(samples)
            frames += 1
            try:
                deliver(samples)
            except Exception:
                log.exception("%s: delivering a frame failed", name)
    except MediaStreamError:
        pass
    return frames


class PacketTrack(MediaStreamTrack):
    """An outbound audio track fed with pre-encoded Opus packets.

    The queue is bounded by ``PACKET_QUEUE``; when full (the sender stalled) the oldest
    packet is dropped and counted, since late live audio is worth less than fresh audio.
    """

    kind = "audio"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._queue: deque[av.Packet[Any]] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0
        self.sent = 0

    def put(self, packet: av.Packet[Any]) -> None:
        if self.readyState != "live":
            return
        if len(self._queue) >= PACKET_QUEUE:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(packet)
        self._ready.set()

    async def recv(self) -> av.Packet[Any]:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.sent += 1
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()
