"""Outbox: the bounded queue of frames waiting to be written to one socket.

Every socket writes through one, so a slow client can never grow the server's memory:

* ``drop_oldest`` (agent audio): when full, the oldest frame is dropped and counted —
  live audio that is too old to matter gives way to fresh audio.
* ``close`` (notifications): when full the client is too slow to keep a complete, ordered
  event stream, so the socket is closed (1013) rather than silently losing events.

With a direct writer (``write_directly``, ``shoal.api.ws_direct``) a frame put while nothing
is queued or being written goes to the socket at once, in the caller's call; otherwise, and
whenever the writer says it cannot, the frame is queued as above — order is kept either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal

from shoal.tally import Tally

log = logging.getLogger(__name__)


class OutboxOverflow(Exception):
    pass


class Outbox:
    def __init__(
        self, limit: int, policy: Literal["drop_oldest", "close"], name: str, tally: Tally | None = None
    ) -> None:
        """``tally``: where an agent's outbox also counts its drops and direct writes."""
        self._tally = tally
        self._queue: deque[bytes] = deque()
        self._limit = limit
        self._policy = policy
        self._name = name
        self._wakeup = asyncio.Event()
        self._overflowed = False
        self._closed = False
        self._draining = False
        self._direct: Callable[[bytes], bool] | None = None
        self.dropped = 0
        self.sent = 0
        self.sent_directly = 0

    def write_directly(self, write: Callable[[bytes], bool] | None) -> None:
        """Use ``write`` (True: the frame is on the socket) for frames that would not wait anyway."""
        self._direct = write

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, frame: bytes) -> None:
        if self._closed:
            return
        direct = self._direct
        if direct is not None and not self._queue and not self._draining and direct(frame):
            self.sent += 1
            self.sent_directly += 1
            if self._tally is not None:
                self._tally.agent_frames_written_directly += 1
            return
        if len(self._queue) >= self._limit:
            if self._policy == "close":
                self._overflowed = True
                self._wakeup.set()
                return
            self._queue.popleft()
            self.dropped += 1
            if self._tally is not None:
                self._tally.agent_outbox_dropped += 1
            if self.dropped == 1 or self.dropped % 500 == 0:
                log.warning("%s: client is not keeping up; %d old frames dropped so far", self._name, self.dropped)
        self._queue.append(frame)
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def run(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Write frames in order until ``close()``; raises ``OutboxOverflow`` (close policy)."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._overflowed:
                raise OutboxOverflow(f"{self._name}: more than {self._limit} frames undelivered")
            self._draining = True
            try:
                while self._queue:
                    await send(self._queue.popleft())
                    self.sent += 1
            finally:
                self._draining = False
            if self._closed:
                return
