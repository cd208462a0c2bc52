"""Shoal: the composition root that builds and owns every long-lived server object.

There is no module-level state: two servers can run in one process (tests do), each
with its own rooms, clock and notifier subscribers.
"""

from __future__ import annotations

import logging

from shoal.bus import EventBus
from shoal.config import ShoalConfig
from shoal.domain.manager import RoomManager
from shoal.endpoints.directory import EndpointDirectory
from shoal.endpoints.routing import MediaRouter
from shoal.media import aiortc_seam
from shoal.media.clock import PlayoutClock
from shoal.media.trace import PlayoutTrace
from shoal.net.network import RtcNetwork
from shoal.notify.hub import NotifierHub
from shoal.notify.webhooks import WebhookDispatcher
from shoal.refusals import Refusals
from shoal.signaling.preauth import PreAuthGate
from shoal.signaling.registry import SessionRegistry
from shoal.signaling.session import UnexpectedErrors

log = logging.getLogger(__name__)


class Shoal:
    def __init__(self, config: ShoalConfig) -> None:
        aiortc_seam.check_internals()  # fail now, naming what changed, not mid-call
        self.config = config
        self.refusals = Refusals()
        """Every request refused for going over a limit (``GET /limits/stats``)."""
        self.bus = EventBus()
        self.manager = RoomManager(self.bus.publish)
        self.router = MediaRouter(self.manager)
        self.directory = EndpointDirectory(self.manager)
        self.clock = PlayoutClock()
        self.trace = PlayoutTrace(config.trace_playout) if config.trace_playout else None
        self.rtc = RtcNetwork(
            public_ip=config.rtc_public_ip,
            udp_port=config.rtc_udp_port,
            port_range=config.port_range,
            interfaces=config.rtc_interfaces,
            ice=config.ice_policy,
        )
        self.sessions = SessionRegistry()
        self.preauth = PreAuthGate(config.max_unauthenticated_per_ip)
        self.unexpected_errors = UnexpectedErrors()
        self.notifiers = NotifierHub()
        self.webhooks = WebhookDispatcher(
            self.manager, config.webhook_secret, config.webhook_queue_messages, config.webhook_batch_window_s
        )
        # Order matters only for readability of logs: media first, then the outside world.
        self.bus.subscribe(self.router.on_event)
        self.bus.subscribe(self.directory.on_event)
        self.bus.subscribe(self.sessions.on_event)
        self.bus.subscribe(self.notifiers.on_event)
        self.bus.subscribe(self.webhooks.on_event)

    async def close(self) -> None:
        await self.rtc.close()
        await self.clock.close()
        await self.webhooks.close()
        if self.trace is not None:
            self.trace.dump()
            log.info("playout trace written to %s", self.trace.path)
