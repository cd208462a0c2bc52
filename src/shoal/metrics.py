"""Metrics: ``GET /metrics`` in the Prometheus text format, read from the server at scrape time.

Nothing here runs per packet: the hot paths keep plain integers (``shoal.tally.Tally`` and
the counters of long-lived objects such as the webhook dispatcher), and ``ShoalCollector``
turns them into metric families only when Prometheus scrapes. Each server has its own
``CollectorRegistry`` — no module-level state, so two servers in one process (tests) each
report their own figures. The one push-style metric is the event-loop lag histogram, fed
by a task that wakes ten times a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from shoal.domain.model import PeerStatus, PeerType, TrackKind

if TYPE_CHECKING:
    from shoal.server import Shoal

log = logging.getLogger(__name__)

__all__ = ["CONTENT_TYPE_LATEST", "LoopLagMonitor", "ServerMetrics", "ShoalCollector"]

LAG_INTERVAL_S = 0.1
BEHIND_S = 0.03
"""A wake-up later than this means the loop is behind: sockets then write frames directly (``ws_direct``).
It holds until the next wake-up (0.1 s): holding it 2 s measured worse at 100 participants (p50 2 -> 32 ms)."""
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, float("inf"))


class ShoalCollector(Collector):
    """Reads rooms, counters and queues of one server each time the registry is collected."""

    def __init__(self, shoal: Shoal) -> None:
        self._shoal = shoal

    def collect(self) -> Iterable[Metric]:
        yield from self._rooms()
        yield from self._media()
        yield from self._drops()
        shoal = self._shoal
        refusals = CounterMetricFamily(
            "shoal_refusals", "Requests refused for going over a limit, by cause (GET /limits/stats).", labels=["cause"]
        )
        for cause, count in shoal.refusals.counts().items():
            refusals.add_metric([cause], count)
        yield refusals
        webhooks = shoal.webhooks
        yield CounterMetricFamily("shoal_webhook_deliveries", "Webhook POSTs answered with 2xx.", webhooks.delivered)
        yield CounterMetricFamily(
            "shoal_webhook_failures", "Webhook POSTs given up on after retries (or refused with 4xx).", webhooks.failed
        )

    def _rooms(self) -> Iterable[Metric]:
        rooms = self._shoal.manager.rooms()
        peers = {(t, s): 0 for t in PeerType for s in PeerStatus}
        tracks = dict.fromkeys(TrackKind, 0)
        for room in rooms:
            for peer in room.peers.values():
                peers[peer.type, peer.status] += 1
                for track in peer.tracks.values():
                    tracks[track.kind] += 1
        yield GaugeMetricFamily("shoal_rooms", "Rooms that exist.", len(rooms))
        family = GaugeMetricFamily("shoal_peers", "Peers, by type and status.", labels=["type", "status"])
        for (kind, status), count in peers.items():
            family.add_metric([kind.value, status.value], count)
        yield family
        family = GaugeMetricFamily("shoal_tracks", "Published tracks, by kind.", labels=["kind"])
        for track_kind, count in tracks.items():
            family.add_metric([track_kind.value], count)
        yield family

    def _media(self) -> Iterable[Metric]:
        tally = self._shoal.tally
        yield CounterMetricFamily(
            "shoal_rtp_packets_received", "RTP packets taken from WebRTC publishers.", tally.rtp_received
        )
        yield CounterMetricFamily(
            "shoal_rtp_packets_fast_path",
            "RTP packets of participants' audio for agents handled in the datagram callback (no aiortc queue or task).",
            tally.rtp_fast_path,
        )
        yield CounterMetricFamily(
            "shoal_rtp_packets_forwarded", "RTP packets forwarded to WebRTC receivers.", tally.rtp_forwarded
        )
        yield CounterMetricFamily(
            "shoal_rtp_retransmissions", "RTP packets resent on a receiver's NACK.", tally.rtp_retransmitted
        )
        keyframes = CounterMetricFamily(
            "shoal_keyframe_requests",
            "Keyframe requests: PLI/FIR from receivers, and PLI sent to publishers (rate-limited).",
            labels=["direction"],
        )
        keyframes.add_metric(["from_receivers"], tally.keyframe_requests_received)
        keyframes.add_metric(["to_publishers"], tally.keyframe_requests_sent)
        yield keyframes
        yield CounterMetricFamily(
            "shoal_participant_audio_frames_decoded",
            "Opus frames of participants decoded (once per track, whatever the number of agents).",
            tally.participant_audio_frames,
        )
        yield CounterMetricFamily(
            "shoal_agent_frames_delivered", "20 ms audio frames (TrackData) queued to agents.", tally.agent_frames_delivered
        )
        yield CounterMetricFamily(
            "shoal_agent_playout_events",
            "PlayoutEvent messages (shoal's extension) queued to agents that asked for them.",
            tally.agent_playout_events,
        )
        yield CounterMetricFamily(
            "shoal_vad_events",
            "Voice-activity changes sent (vad_notification to participants, VoiceActivity to agents that asked).",
            tally.vad_events_sent,
        )
        yield CounterMetricFamily(
            "shoal_agent_frames_written_directly",
            "Frames written to agents' sockets at once, in the call that made them (the rest wait for the socket's writer).",
            tally.agent_frames_written_directly,
        )
        yield CounterMetricFamily(
            "shoal_agent_frames_played", "20 ms frames of agents' outgoing tracks played out.", tally.playout_frames_played
        )
        yield GaugeMetricFamily(
            "shoal_agent_playout_queue_seconds",
            "Agent audio queued for playout, summed over tracks.",
            self._shoal.clock.queued_seconds(),
        )

    def _drops(self) -> Iterable[Metric]:
        tally = self._shoal.tally
        family = CounterMetricFamily(
            "shoal_dropped",
            "Media and messages dropped, by where and why (units: packets for rtp_*, frames for agent_outbox, "
            "chunks for agent_playout except paused: 20 ms frames not encoded for paused listeners; notifications for "
            "webhook_queue).",
            labels=["where", "reason"],
        )
        family.add_metric(["rtp_send_queue", "overload"], tally.rtp_dropped_overload)
        family.add_metric(["rtp_receive", "late"], tally.rtp_dropped_late)
        family.add_metric(["rtp_receive", "srtp_refused"], tally.srtp_refused)
        family.add_metric(["rtp_receive", "malformed"], tally.rtp_malformed)
        family.add_metric(["participant_audio", "late"], tally.participant_audio_late)
        family.add_metric(["participant_audio", "lost"], tally.participant_audio_lost)
        family.add_metric(["participant_audio", "malformed"], tally.participant_audio_malformed)
        family.add_metric(["participant_audio", "stale"], tally.participant_audio_stale)
        family.add_metric(["agent_outbox", "queue_full"], tally.agent_outbox_dropped)
        family.add_metric(["agent_playout", "queue_full"], tally.playout_dropped_chunks)
        family.add_metric(["agent_playout", "malformed"], tally.playout_malformed)
        family.add_metric(["agent_playout", "paused"], tally.playout_frames_withheld)
        family.add_metric(["webhook_queue", "queue_full"], self._shoal.webhooks.dropped)
        family.add_metric(["ice_receive", "overload"], self._shoal.rtc.plan.stats.overload_dropped)
        family.add_metric(["ice_receive", "shed"], self._shoal.rtc.plan.admission.shed_dropped)
        yield family
        yield GaugeMetricFamily(
            "shoal_webrtc_peers_paused",
            "WebRTC peers whose inbound media is paused under sustained overload (the newest senders).",
            self._shoal.rtc.plan.admission.paused,
        )


class LoopLagMonitor:
    """Sleeps ``interval`` seconds over and over; how much later than asked it wakes is the loop's lag."""

    def __init__(self, histogram: Histogram, interval: float = LAG_INTERVAL_S) -> None:
        self._histogram = histogram
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._last = 0.0
        self.listeners: list[Callable[[float], None]] = []
        """Called with each sample (seconds late), e.g. the overload admission."""

    def is_behind(self) -> bool:
        """The last wake-up was over ``BEHIND_S`` late: loop iterations are long (overload, a stall)."""
        return self._last > BEHIND_S

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def _run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self._interval)
            self._last = max(0.0, time.monotonic() - asked - self._interval)
            self._histogram.observe(self._last)
            for listener in self.listeners:
                try:
                    listener(self._last)
                except Exception:
                    log.exception("a loop-lag listener failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class ServerMetrics:
    """One server's registry: its collector, the loop-lag histogram and the process's CPU and memory."""

    def __init__(self, shoal: Shoal) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ShoalCollector(shoal))
        ProcessCollector(registry=self.registry)
        self.loop_lag = LoopLagMonitor(
            Histogram(
                "shoal_event_loop_lag_seconds",
                f"How much later than asked a {LAG_INTERVAL_S:g} s sleep on the event loop wakes up.",
                buckets=LAG_BUCKETS,
                registry=self.registry,
            )
        )

    def exposition(self) -> bytes:
        """The Prometheus text of every metric, as of now."""
        return generate_latest(self.registry)
