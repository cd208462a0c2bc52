"""Shoal: the composition root that builds and owns every long-lived server object.

There is no module-level state: two servers can run in one process (tests do), each
with its own rooms, clock and notifier subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from shoal import seam
from shoal.bus import EventBus
from shoal.cluster.node import ClusterNode
from shoal.config import ShoalConfig
from shoal.domain.manager import RoomLimits, RoomManager
from shoal.endpoints.directory import EndpointDirectory
from shoal.endpoints.routing import MediaRouter
from shoal.media import libopus
from shoal.media.budget import PlayoutBudget
from shoal.media.clock import PlayoutClock
from shoal.media.trace import PlayoutTrace
from shoal.metrics import ServerMetrics
from shoal.net.admission import StreamAdmission
from shoal.net.network import RtcNetwork
from shoal.notify.hub import NotifierHub
from shoal.notify.webhooks import WebhookDispatcher
from shoal.protocol.base import CLOSE_GOING_AWAY
from shoal.refusals import Refusals
from shoal.signaling.preauth import PreAuthGate
from shoal.signaling.registry import SessionRegistry
from shoal.signaling.session import UnexpectedErrors
from shoal.tally import Tally

log = logging.getLogger(__name__)

DRAIN_REASON = "going away: this shoal node is shutting down"


class Shoal:
    def __init__(self, config: ShoalConfig) -> None:
        seam.check_internals()  # fail now, naming what changed, not mid-call
        libopus.check()  # participants' audio is decoded through it
        self.config = config
        self.refusals = Refusals()
        """Every request refused for going over a limit (``GET /limits/stats``)."""
        self.bus = EventBus()
        self.manager = RoomManager(
            self.bus.publish,
            RoomLimits(config.max_rooms, config.max_peers_per_room, config.room_peerless_purge_timeout_s),
            self.refusals.note,
        )
        self._housekeeping: asyncio.Task[None] | None = None
        self.draining = False
        """Set on SIGTERM (``drain``): room creation answers 503."""
        self.tally = Tally()
        """Media and socket counters the hot paths bump (read by ``GET /metrics``)."""
        self.router = MediaRouter(self.manager, self.tally)
        self.directory = EndpointDirectory(self.manager)
        self.clock = PlayoutClock(max_lag_s=config.playout_max_lag_s)
        self.playout_budget = PlayoutBudget(config.playout_limits, self.refusals.note)
        """Queued outgoing agent audio, in bytes and seconds, per track, agent and server."""
        self.trace = PlayoutTrace(config.trace_playout) if config.trace_playout else None
        self.rtc = RtcNetwork(
            public_ip=config.rtc_public_ip,
            udp_port=config.rtc_udp_port,
            port_range=config.port_range,
            interfaces=config.rtc_interfaces,
            ice=config.ice_policy,
            admission=StreamAdmission.pausing_after(config.overload_pause_after_s, time.monotonic),
            debug_media_cost_s=config.debug_media_cost_ms / 1000,
            fast_audio=not config.debug_no_fast_audio,
        )
        self.sessions = SessionRegistry()
        self.preauth = PreAuthGate(config.max_unauthenticated_per_ip)
        self.unexpected_errors = UnexpectedErrors()
        self.notifiers = NotifierHub()
        self.webhooks = WebhookDispatcher(
            self.manager,
            config.webhook_secret,
            config.webhook_queue_messages,
            config.webhook_batch_window_s,
            config.webhook_reap_grace_s,
        )
        # Order matters only for readability of logs: media first, then the outside world.
        self.bus.subscribe(self.router.on_event)
        self.bus.subscribe(self.directory.on_event)
        self.bus.subscribe(self.sessions.on_event)
        self.bus.subscribe(self.notifiers.on_event)
        self.bus.subscribe(self.webhooks.on_event)
        self.cluster = (
            ClusterNode(
                config.node_id,
                config.base_url,
                config.node_internal_url,
                config.redis_url,
                self.manager,
                self._streams,
                self.notifiers.deliver,
                self.webhooks.send_once,
            )
            if config.redis_url
            else None
        )
        """This process as a cluster node (``--redis``); None when it runs alone."""
        if self.cluster is not None:
            self.bus.subscribe(self.cluster.on_event)
        self.metrics = ServerMetrics(self)
        self.metrics.loop_lag.listeners.append(self.rtc.plan.admission.observe_lag)
        self.loop_behind: Callable[[], bool] = (
            (lambda: True) if config.debug_direct_writes else self.metrics.loop_lag.is_behind
        )
        """While true, sockets write frames directly (``shoal.api.ws_direct``)."""

    async def drain(self) -> None:
        """SIGTERM: take no new rooms, let rooms finish up to ``drain_s``, then close every socket (1001)."""
        self.draining = True
        timeout = self.config.drain_s
        if self.cluster is not None:
            await self.cluster.drain()
        rooms = len(self.manager.rooms())
        log.warning("draining: no new rooms; waiting up to %.0f s for %d rooms to end", timeout, rooms)
        emptied = asyncio.Event()

        def watch(event: object) -> None:
            if not self.manager.rooms():
                emptied.set()

        unsubscribe = self.bus.subscribe(watch)
        try:
            if rooms:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(emptied.wait(), timeout)
        finally:
            unsubscribe()
        left = len(self.manager.rooms())
        closed = self.sessions.close_all(CLOSE_GOING_AWAY, DRAIN_REASON)
        log.warning("drained: %d of %d rooms still open; %d sockets closed (1001 %s)", left, rooms, closed, DRAIN_REASON)
        await asyncio.sleep(0.2)  # let the close frames go out before the server stops

    def _streams(self) -> int:
        """Media tracks published in this process's rooms (a cluster node's load)."""
        return sum(len(peer.tracks) for room in self.manager.rooms() for peer in room.peers.values())

    async def start(self) -> None:
        await self.rtc.start()
        if self.cluster is not None:
            await self.cluster.start()
        self.metrics.loop_lag.start()
        self._housekeeping = asyncio.get_running_loop().create_task(self._sweep(), name="housekeeping")

    async def _sweep(self) -> None:
        """Periodic upkeep: delete rooms past the peerless purge timeout."""
        timeout = self.config.room_peerless_purge_timeout_s
        if not timeout:
            return
        interval = min(max(timeout / 10, 0.05), 30.0)  # a room outlives its timeout by at most a tenth (≤ 30 s)
        while True:
            await asyncio.sleep(interval)
            try:
                self.manager.purge_peerless()
            except Exception:
                log.exception("peerless room purge failed; retrying at the next sweep")

    async def close(self) -> None:
        if self.cluster is not None:
            await self.cluster.close()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
        await self.metrics.loop_lag.close()
        await self.rtc.close()
        await self.clock.close()
        await self.webhooks.close()
        if self.trace is not None:
            self.trace.dump()
            log.info("playout trace written to %s", self.trace.path)
