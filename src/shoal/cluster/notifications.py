"""Notifications across the cluster: every node's notifier sockets get every room's notifications.

Each node publishes the notifications of its own rooms on one Redis pub/sub channel, from
one task over one connection, so they arrive everywhere in the order they happened (all of
a room's notifications come from its owner). Every node delivers what the others publish to
its local notifier sockets; its own it already delivered from its event bus. Webhooks are
not sent from here: only a room's owner posts them, so each is sent once.

The outgoing queue is bounded (``QUEUE_LIMIT``); when Redis is slow or down, the newest
notifications beyond it are dropped for remote notifiers and counted (``dropped``), never
for local ones. Pub/sub keeps nothing for a node that was disconnected: a notifier on a node
that lost Redis misses the other nodes' notifications of that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "shoal:notifications"
QUEUE_LIMIT = 10_000
RETRY_S = 0.5
_SEPARATOR = b"\n"


class ClusterNotifications:
    def __init__(self, node_id: str, redis_url: str, deliver: Callable[[bytes], None], timeout_s: float) -> None:
        self._origin = node_id.encode()
        self._deliver = deliver
        self._redis = redis.asyncio.from_url(redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        self._listen_redis = redis.asyncio.from_url(redis_url, socket_connect_timeout=timeout_s)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.published = 0
        self.received = 0
        self._listening = asyncio.Event()
        self._sending = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._publish_loop(), name="cluster-notify-publish"),
            loop.create_task(self._listen_loop(), name="cluster-notify-listen"),
        ]
        with contextlib.suppress(TimeoutError):  # listening before the first request, when Redis is up
            await asyncio.wait_for(self._listening.wait(), 2.0)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._redis.aclose()
        await self._listen_redis.aclose()

    async def flush(self, timeout_s: float) -> None:
        """Wait until the queued notifications are published (a node stopping), at most ``timeout_s``."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._queue.empty() or self._sending:  # noqa: ASYNC110 - a bounded wait at shutdown only
            if asyncio.get_running_loop().time() > deadline:
                log.warning("cluster: %d notifications not sent to other nodes before stopping", self._queue.qsize())
                return
            await asyncio.sleep(0.02)

    def publish(self, frame: bytes) -> None:
        """Queue one of this node's notifications for the other nodes (never blocks)."""
        try:
            self._queue.put_nowait(self._origin + _SEPARATOR + frame)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("cluster: %d notifications not sent to other nodes (queue full: Redis slow or down)", self.dropped)

    async def _publish_loop(self) -> None:
        while True:
            message = await self._queue.get()
            self._sending = True
            while True:
                try:
                    await self._redis.publish(CHANNEL, message)
                    self.published += 1
                    self._sending = False
                    break
                except (RedisError, OSError) as exc:
                    log.debug("cluster: publishing a notification failed (%s); retrying", exc)
                    await asyncio.sleep(RETRY_S)

    async def _listen_loop(self) -> None:
        while True:
            pubsub = self._listen_redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self._listening.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._received(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("cluster: notification channel lost (%s); resubscribing", exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(RETRY_S)

    def _received(self, data: bytes) -> None:
        origin, _, frame = data.partition(_SEPARATOR)
        if origin == self._origin:
            return  # delivered locally from the event bus already
        self.received += 1
        self._deliver(frame)
