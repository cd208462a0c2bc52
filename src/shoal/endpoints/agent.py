"""AgentEndpoint: one connected agent — what it hears and what it publishes.

As a receiver it gets wire-ready ``TrackData`` frames from the fan-outs the router
attached it to, and queues them in its bounded outbox. As a publisher it owns one
``OutgoingAudio`` per track it added: chunks are queued, paced in real time and fanned out
to every subscribed agent in that agent's own format.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from shoal.domain.manager import RoomManager
from shoal.domain.model import Peer, Track, TrackKind
from shoal.endpoints.routing import MediaRouter
from shoal.errors import ShoalError
from shoal.logs import ids
from shoal.logtext import clip
from shoal.media.budget import AgentBudget
from shoal.media.clock import PlayoutClock
from shoal.media.fanout import PcmOut, TrackFanout
from shoal.media.outgoing import OutgoingAudio, PlayoutReport
from shoal.media.pcm import PcmFormat
from shoal.media.playout import OpusPlayout, PcmPlayout, Playout
from shoal.media.snapshot import VideoSnapshots
from shoal.media.trace import PlayoutTrace
from shoal.net.demux import OnceLog
from shoal.protocol import agent as proto
from shoal.protocol.base import CLOSE_POLICY
from shoal.protocol.limits import loads_json
from shoal.signaling.outbox import Outbox

log = logging.getLogger(__name__)


class SessionError(Exception):
    """The client broke the protocol; its socket is closed with ``code`` and ``reason``."""

    def __init__(self, reason: str, code: int = CLOSE_POLICY) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def parse_metadata(text: str) -> Any:
    """Track metadata is JSON text; anything that is not plain JSON is kept as the raw string."""
    if not text:
        return None
    try:
        return loads_json(text)
    except ValueError:
        return text


class AgentEndpoint:
    def __init__(
        self,
        peer: Peer,
        connection: int,
        manager: RoomManager,
        router: MediaRouter,
        clock: PlayoutClock,
        outbox: Outbox,
        budget: AgentBudget,
        trace: PlayoutTrace | None = None,
        playout_events: bool = False,
        vad_events: bool = False,
    ) -> None:
        self.peer_id = peer.id
        self.room_id = peer.room_id
        self.sample_rate = peer.output_sample_rate
        self.connection = connection
        self._manager = manager
        self._router = router
        self._tally = router.tally
        self._clock = clock
        self._outbox = outbox
        self._budget = budget
        """Bounds what this agent's tracks may queue (bytes, seconds, how many tracks)."""
        self._tracks: dict[str, OutgoingAudio] = {}
        self._trace = trace
        self._playout_events = playout_events
        """The agent opened its socket with ``?playout_events=true``: it hears ``PlayoutEvent``s."""
        self._vad_events = vad_events
        """``?vad_events=true``: it hears ``VoiceActivity`` of the tracks it receives."""
        self._captures: dict[str, asyncio.Task[None]] = {}
        self.chunks_received = 0
        self.tracks_added = 0
        self._formats: dict[str, str] = {}
        self._ignored = OnceLog(log.warning, time.monotonic)
        """Requests ignored (unknown track, …): one line per cause, ids clipped, so a flood stays small."""

    # receiving -------------------------------------------------------------------------

    def deliver(self, frame: bytes) -> None:
        self._tally.agent_frames_delivered += 1
        self._outbox.put(frame)

    def subscribe(self, track: Track, fanout: TrackFanout) -> None:
        if track.kind is not TrackKind.AUDIO:
            return  # agents hear audio; video reaches them only as captured images
        fanout.attach(self.peer_id, PcmOut(self.sample_rate), self.deliver)

    def unsubscribe(self, track_id: str, fanout: TrackFanout) -> None:
        fanout.detach(self.peer_id)

    def voice_activity(self, owner_id: str, track_id: str, speech: bool) -> None:
        if self._vad_events:
            self._tally.vad_events_sent += 1
            self._outbox.put(proto.voice_activity(owner_id, track_id, speech))

    # publishing ------------------------------------------------------------------------

    def handle(self, event: proto.AgentEvent) -> None:
        match event:
            case proto.AddTrack():
                self._add_track(event)
            case proto.TrackData(track_id, data):
                self._push(track_id, data)
            case proto.InterruptTrack(track_id):
                track = self._tracks.get(track_id)
                if track is None:
                    self._ignored.note("interrupt", lambda: f"agent {self.peer_id}: InterruptTrack for unknown track "
                                       f"{clip(track_id)} ignored")
                else:
                    track.interrupt()
            case proto.RemoveTrack(track_id):
                track = self._tracks.get(track_id)
                if track is None:
                    self._ignored.note("remove", lambda: f"agent {self.peer_id}: RemoveTrack for unknown track "
                                       f"{clip(track_id)} ignored")
                else:
                    track.finish()
            case proto.CaptureImage(track_id):
                self._capture(track_id)
            case proto.AuthRequested():
                raise SessionError("already authenticated")

    def _capture(self, track_id: str) -> None:
        """Answer with one JPEG ``TrackImage`` of a participant's video track, when there is one.

        The protocol has no error reply: a request for an unknown or audio track, or a second
        request while one for the same track is pending, is logged and left unanswered
        (the SDKs time out).
        """
        fanout = self._router.fanout(self.room_id, track_id)
        snapshots = fanout.snapshots if fanout is not None else None
        if snapshots is None:
            self._ignored.note("capture", lambda: f"agent {self.peer_id}: CaptureImage for {clip(track_id)} ignored: "
                               "not a participant's video track in this room")
            return
        if track_id in self._captures:
            self._ignored.note("capture-pending", lambda: f"agent {self.peer_id}: CaptureImage for {clip(track_id)} "
                               "ignored: a capture is already pending")
            return
        log.info("agent %s: CaptureImage for %s", self.peer_id, track_id)
        task = asyncio.get_running_loop().create_task(self._send_image(track_id, snapshots), name=f"capture {track_id}")
        self._captures[track_id] = task
        task.add_done_callback(lambda _: self._captures.pop(track_id, None))

    async def _send_image(self, track_id: str, snapshots: VideoSnapshots) -> None:
        data = await snapshots.jpeg()
        if data is not None:
            self._outbox.put(proto.track_image(track_id, "image/jpeg", data))
            log.info("agent %s: sent a %d-byte image of %s", self.peer_id, len(data), track_id)

    def _track(self, track_id: str, what: str) -> OutgoingAudio:
        track = self._tracks.get(track_id)
        if track is None:
            raise SessionError(f"{what} for unknown track {clip(track_id, 40)}; send AddTrack first")
        return track

    def _push(self, track_id: str, data: bytes) -> None:
        track = self._track(track_id, "TrackData")
        self.chunks_received += 1
        try:
            track.push(data)
        except ValueError as exc:
            raise SessionError(f"TrackData on track {clip(track_id, 40)}: {exc}") from exc

    def _withheld(self) -> None:
        self._tally.playout_frames_withheld += 1

    def _add_track(self, event: proto.AddTrack) -> None:
        if event.track_id in self._tracks:
            raise SessionError(f"AddTrack: track {clip(event.track_id, 40)} already exists")
        refusal = self._budget.refuse_track(len(self._tracks), event.track_id)
        if refusal is not None:
            raise SessionError(f"AddTrack: {refusal}")
        playout: Playout
        name = f"{self.peer_id}/{event.track_id}"
        budget = self._budget.track(event.track_id)
        if event.encoding == "pcm16":
            playout = PcmPlayout(PcmFormat(event.sample_rate, event.channels), name=name, budget=budget, tally=self._tally)
        else:
            playout = OpusPlayout(name=name, budget=budget, tally=self._tally)
        track = Track(event.track_id, self.peer_id, TrackKind.AUDIO, parse_metadata(event.metadata_json))
        wrap = proto.TrackDataWrap(self.peer_id, track.id, TrackKind.AUDIO, track.metadata_json)
        fanout = TrackFanout(playout.source_rate, wrap, on_withheld=self._withheld)
        outgoing = OutgoingAudio(
            track.id, playout, fanout, self._clock, lambda: self._track_finished(track.id), self._trace,
            self._reporter(track.id) if self._playout_events else None,
        )
        if not self._router.publish(self.room_id, self.peer_id, track.id, fanout):
            raise SessionError(f"AddTrack: track id {clip(track.id, 40)} is already in use in this room")
        try:
            self._manager.add_track(self.room_id, self.peer_id, track)
        except ShoalError as exc:
            self._router.unpublish(self.room_id, self.peer_id, track.id)  # only the one just made
            raise SessionError(f"AddTrack: {exc.message}") from exc
        self._tracks[track.id] = outgoing
        self._formats[track.id] = f"{event.encoding} {event.sample_rate} Hz"
        self.tracks_added += 1
        log.info(
            "agent %s added %s track %s (%s Hz, %s ch)",
            self.peer_id, event.encoding, track.id, event.sample_rate, event.channels, extra=ids(track_id=track.id),
        )

    def _reporter(self, track_id: str) -> Callable[[PlayoutReport], None]:
        def report(r: PlayoutReport) -> None:
            self._tally.agent_playout_events += 1
            self._outbox.put(
                proto.playout_event(track_id, r.kind.value, r.queued_s, r.played_s, r.dropped_s, r.chunks)
            )

        return report

    def _track_finished(self, track_id: str) -> None:
        outgoing = self._tracks.pop(track_id, None)
        self._formats.pop(track_id, None)
        if outgoing is not None:
            stats = outgoing.playout.stats
            log.info(
                "track %s ended: %.2f s received, %d frames played, %.2f s dropped (overflow), %.2f s interrupted, "
                "%d late frames dropped, %d undecodable packets skipped",
                track_id, stats.received_seconds, stats.played_frames, stats.overflow_dropped_seconds,
                stats.interrupted_seconds, stats.late_dropped_frames, stats.malformed_chunks,
                extra=ids(track_id=track_id),
            )
        self._manager.remove_track(self.room_id, self.peer_id, track_id)

    def track_views(self) -> list[dict[str, Any]]:
        """The tracks this agent publishes, as the dashboard shows them."""
        return [
            {"track_id": track_id, "kind": "audio", "codec": self._formats.get(track_id, ""),
             "queued_s": round(outgoing.queued_seconds, 3)}
            for track_id, outgoing in self._tracks.items()
        ]

    @property
    def chunks_dropped(self) -> int:
        """Chunks of its audio refused because its playout queues were full."""
        return self._budget.dropped_chunks

    def close(self) -> None:
        """The socket ended: stop publishing (queued audio is dropped) and stop receiving."""
        for outgoing in list(self._tracks.values()):
            outgoing.stop()
        if self._budget.dropped_chunks:
            log.info("agent %s: %d chunks (%d bytes) of its audio were dropped: its playout queues were full",
                     self.peer_id, self._budget.dropped_chunks, self._budget.dropped_bytes)
        for capture in list(self._captures.values()):
            capture.cancel()
        self._router.remove_receiver(self)
