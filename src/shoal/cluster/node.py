"""This process as one node of a cluster: its heartbeat, and the directory calls of REST and sockets.

The heartbeat (every ``HEARTBEAT_S``) rewrites the node's registry entry with its load and
an expiry of ``NODE_TTL_S``. After any failed heartbeat — Redis was down, or this node
started before it — the next successful one also re-publishes every room and token the node
owns and removes the directory entries of rooms it no longer has, so the node recovers by
itself. Directory writes that follow domain events (a room or peer deleted) are sent in the
background; one lost while Redis is down is repaired by that resync.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio
from redis.exceptions import RedisError

from shoal.cluster.notifications import ClusterNotifications
from shoal.cluster.placement import NodeInfo, choose_node
from shoal.cluster.store import ClusterStore, TokenRoute
from shoal.domain import events as ev
from shoal.domain.manager import RoomManager
from shoal.errors import Unavailable
from shoal.protocol.notifications import room_crashed, to_server_message

log = logging.getLogger(__name__)

T = TypeVar("T")

HEARTBEAT_S = 1.0
NODE_TTL_S = 5.0
"""A node whose heartbeat stops leaves the registry after this long."""
REDIS_TIMEOUT_S = 1.0


class ClusterUnavailable(Unavailable):
    """Redis could not be reached for a call that needs the cluster's directory (503)."""


def redis_down(exc: BaseException) -> ClusterUnavailable:
    return ClusterUnavailable(f"the cluster directory (Redis) is unavailable: {exc or type(exc).__name__}; retry later")


class ClusterNode:
    def __init__(
        self,
        node_id: str,
        public_url: str,
        internal_url: str,
        redis_url: str,
        manager: RoomManager,
        streams: Callable[[], int],
        deliver: Callable[[bytes], None],
        send_webhook: Callable[[str, bool, bytes], None],
    ) -> None:
        self.id = node_id
        self.public_url = public_url
        self.internal_url = internal_url
        self._manager = manager
        self._streams = streams
        self.store = ClusterStore(
            redis.asyncio.from_url(
                redis_url,
                decode_responses=True,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
        )
        self.notifications = ClusterNotifications(node_id, redis_url, deliver, REDIS_TIMEOUT_S)
        self._deliver = deliver
        self._send_webhook = send_webhook
        self.reaped_nodes = 0
        self.draining = False
        self.available = False
        """Whether the last heartbeat reached Redis."""
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._cpu_mark = (time.monotonic(), _process_cpu())
        self._cpu = 0.0

    # lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.notifications.start()
        await self._beat()  # registered before the first request, when Redis is up
        self._task = asyncio.get_running_loop().create_task(self._heartbeats(), name="cluster-heartbeat")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._background, return_exceptions=True)
        left = self._manager.rooms()
        if left:
            log.warning("cluster: node %s stops with %d rooms open; reporting them as crashed", self.id, len(left))
        for room in left:
            frame = room_crashed(room.id)
            self._deliver(frame)
            self.notifications.publish(frame)
            if room.config.webhook_url:
                self._send_webhook(room.config.webhook_url, room.config.batch_webhook_notifications, frame)
        await self.notifications.flush(2.0)
        try:
            await self.store.forget_node(self.id)
        except (RedisError, OSError) as exc:
            log.warning("cluster: could not deregister node %s (%s); it expires in %.0f s", self.id, exc, NODE_TTL_S)
        await self.notifications.close()
        await self.store.close()

    async def drain(self) -> None:
        """Take no new rooms: the registry says so at once, not at the next heartbeat."""
        self.draining = True
        await self._beat()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await self._beat()

    async def _beat(self) -> None:
        try:
            await self.store.heartbeat(self.info(), NODE_TTL_S)
            if not self.available:
                await self._resync()
            _, dead = await self.store.nodes()
            for dead_id in dead:
                if dead_id != self.id and await self.store.claim_reap(dead_id, self.id):
                    await self._report_dead(dead_id)
        except (RedisError, OSError) as exc:
            if self.available:
                log.error("cluster: Redis unavailable (%s); media keeps flowing, new rooms get 503", exc)
            self.available = False
            return
        if not self.available:
            log.info("cluster: node %s registered (%s, internal %s)", self.id, self.public_url, self.internal_url)
        self.available = True

    async def _resync(self) -> None:
        """Publish every room and token this node owns; drop directory entries of rooms it lost."""
        rooms = [room.id for room in self._manager.rooms()]
        stale = set(await self.store.rooms_of(self.id)) - set(rooms)
        for room_id in stale:
            await self.store.delete_room(self.id, room_id)
        await self.store.set_rooms(self.id, rooms)
        await self.store.set_tokens(self.id, self._manager.grants())

    async def _report_dead(self, dead_id: str) -> None:
        """A node's heartbeat expired: its rooms leave the directory and ``RoomCrashed`` goes out for each."""
        rooms = await self.store.forget_node(dead_id)
        self.reaped_nodes += 1
        log.error(
            "cluster: node %s stopped its heartbeat (over %.0f s); reporting its %d rooms as crashed",
            dead_id, NODE_TTL_S, len(rooms),
        )
        for room_id in rooms:
            frame = room_crashed(room_id)
            self._deliver(frame)
            self.notifications.publish(frame)
            hook = rooms[room_id]
            if hook is not None:
                self._send_webhook(hook[0], hook[1], frame)

    def stats(self) -> dict[str, object]:
        """This node's view of the cluster (``GET /limits/stats`` ``cluster``)."""
        return {
            "node_id": self.id,
            "redis_available": self.available,
            "draining": self.draining,
            "reaped_nodes": self.reaped_nodes,
            "notifications": {
                "published": self.notifications.published,
                "received": self.notifications.received,
                "dropped": self.notifications.dropped,
            },
        }

    def info(self) -> NodeInfo:
        now, cpu = time.monotonic(), _process_cpu()
        then, cpu_then = self._cpu_mark
        if now - then >= HEARTBEAT_S / 2:
            self._cpu = (cpu - cpu_then) / (now - then)
            self._cpu_mark = (now, cpu)
        return NodeInfo(
            id=self.id,
            public_url=self.public_url,
            internal_url=self.internal_url,
            rooms=len(self._manager.rooms()),
            streams=self._streams(),
            cpu=self._cpu,
            draining=self.draining,
        )

    # directory calls (raise ClusterUnavailable when Redis is down) ---------------------------

    async def place(self) -> NodeInfo:
        """The live node a new room goes to."""
        nodes = await self.live_nodes()
        chosen = choose_node(nodes)
        if chosen is None:
            raise Unavailable("no cluster node takes new rooms (all are draining or down); retry later")
        return chosen

    async def live_nodes(self) -> list[NodeInfo]:
        live, _ = await self._call(self.store.nodes())
        return live

    async def node(self, node_id: str) -> NodeInfo | None:
        return await self._call(self.store.node(node_id))

    async def room_owner(self, room_id: str) -> str | None:
        return await self._call(self.store.room_owner(room_id))

    async def token_route(self, token: str) -> TokenRoute | None:
        return await self._call(self.store.token_route(token))

    async def room_created(self, room_id: str, webhook_url: str | None, batched: bool) -> None:
        """Put a room this node just created in the directory (before the caller hears of it)."""
        if webhook_url:
            await self._call(self.store.set_room_webhook(room_id, webhook_url, batched))
        await self._call(self.store.set_rooms(self.id, [room_id]))
        await self._call(self.store.count_room(self.id))

    async def token_issued(self, token: str, room_id: str, peer_id: str) -> None:
        """Route a token this node just issued to it (before the caller hears of it)."""
        await self._call(self.store.set_tokens(self.id, [(token, room_id, peer_id)]))

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except (RedisError, OSError) as exc:
            raise redis_down(exc) from exc

    # domain events ----------------------------------------------------------------------------

    def on_event(self, event: ev.DomainEvent) -> None:
        message = to_server_message(event)
        if message is not None:
            self.notifications.publish(message.SerializeToString())
        if isinstance(event, ev.RoomDeleted):
            self._spawn(self.store.delete_room(self.id, event.room_id), f"room {event.room_id} deleted")
        elif isinstance(event, ev.PeerDeleted):
            self._spawn(self.store.revoke_peer(event.peer_id), f"peer {event.peer_id} deleted")

    def _spawn(self, write: Awaitable[None], what: str) -> None:
        async def run() -> None:
            try:
                await write
            except (RedisError, OSError) as exc:
                self.available = False  # the next heartbeat resyncs
                log.warning("cluster: directory not updated for %s (%s); repaired when Redis answers", what, exc)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _process_cpu() -> float:
    times = os.times()
    return times.user + times.system
