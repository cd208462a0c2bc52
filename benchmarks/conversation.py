"""Voice-conversation benchmark: N rooms of one participant talking with one agent, both ways at once.

For each N (default 10, 50, 100) it starts a fresh server and N rooms. Each room holds one
WebRTC participant (``shoal.testing.WebRTCPeer``) publishing pre-encoded Opus (48 kHz mono,
20 ms, looped ``OpusPacketSource``) and one agent that takes the participant's audio as
16 kHz pcm16 and answers on its own track: ``AddTrack`` pcm16 24 kHz mono, then one 20 ms
``TrackData`` chunk every 20 ms (a TTS engine streaming in real time). The server decodes
the participant's Opus, resamples it to 16 kHz for the agent, paces the agent's chunks,
resamples them to 48 kHz and encodes them to Opus for the participant, whose aiortc
receiver decodes them. After a warm-up it measures a window of SECONDS and prints, per N:

* server CPU per conversation (% of one core: utime+stime of the server process from /proc
  over the window, divided by the rooms) and the conversations one core could carry;
* per direction, frames delivered versus sent in the window. up (participant → agent):
  Opus packets handed to aiortc by the participants against ``TrackData`` messages the
  agents received; down (agent → participant): chunks the agents sent against frames the
  participants' aiortc decoded (same window at both edges, so frames in flight cancel);
* per direction, latency percentiles p50/p90/p99/max. up: from the participant handing the
  packet to aiortc (``on_frame``; on loopback that is its arrival at the server) to the agent
  process receiving the frame that holds it; down: from the agent sending the ``TrackData``
  chunk to the participant's aiortc handing out the decoded frame that holds it. Frames are
  matched by content, as in ``webrtc_ingest.py``: a quiet 220 Hz hum with a loud 40 ms tone
  burst every 25th frame whose frequency (one of 26) names it. Every process reads
  ``time.monotonic()``, the machine's CLOCK_MONOTONIC, so times compare across processes.
  The participant's aiortc receiver keeps its default jitter buffer (four complete frames
  held back, ~80 ms) in both servers' rows: that is what a participant on aiortc hears;
* CPU of the client processes (participants, agents) and of the whole machine, in cores:
  all share the machine's cores with the server; "other" is the busy time not spent in
  this benchmark's processes (other work on the host; ±0.1 from /proc accounting).

The baseline (also run by default, then a ratio table follows) is a plain-aiortc server
defined in this script doing the same media work in one process: it speaks the signaling
subset ``WebRTCPeer`` needs and announces one track of its own in ``connected``; it
receives each participant's Opus, decodes it (aiortc's receiver, default jitter buffer),
resamples it to 16 kHz mono (PyAV) and runs the burst detector on it as an agent would; and
it answers on a sending track whose ``recv()`` hands aiortc a 24 kHz mono frame of the same
marker audio every 20 ms, which aiortc resamples to 48 kHz and encodes to Opus. Its down
latency starts when that frame is handed to aiortc, so the baseline has no agent socket in
either direction: the ratio compares shoal's CPU per conversation (server process only,
agent sockets included) with plain aiortc's. The baseline runs on uvloop when installed,
as uvicorn runs shoal.

The server's asyncio loop runs on one core, so once it needs more than one core it falls
behind: latency grows, deliveries drop. On a small machine the client processes (which
decode the down direction) compete for the same cores. Such rows say so in their notes.

Reused from ``webrtc_ingest.py`` (imported; this script's directory is on ``sys.path`` when
it runs): the marker audio and burst detector, /proc accounting, the child-process plumbing
and the burst matching.

Run: ``.venv/bin/python benchmarks/conversation.py [--rooms 10,50,100] [--seconds 10]
[--warmup 3] [--only shoal|baseline] [--keep-logs]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import math
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import webrtc_ingest as ingest
from webrtc_ingest import (
    AGENT_RATE,
    BURST_AT,
    BURST_EVERY,
    FRAME_S,
    PERIOD,
    SAMPLE_RATE,
    LogCounter,
    OnsetDetector,
    ReceivedTrack,
    Samples,
    SentTrack,
    Window,
    child_logging,
    emit,
    fmt_cores,
    machine,
    marker_packets,
    marker_signal,
    match_bursts,
    serve_commands,
    snapshot,
    stdin_reader,
    uvloop_factory,
)

from shoal.testing import OpusPacketSource, Recording, WebRTCPeer

ANSWER_RATE = 24000  # the agent's track: pcm16 mono, as TTS engines produce
ANSWER_CHUNK = ANSWER_RATE * 20 // 1000  # samples per 20 ms chunk
ROOMS_PER_PROCESS = 50  # participants per generator process, agents per agent process
JOIN_CONCURRENCY = 8
DRAIN_S = 2.0  # after the window, so that the bursts sent at its end can arrive
LAGGING_P50_MS = 250  # two jitter buffers' worth: a p50 beyond this means a growing backlog
SCRIPT = str(Path(__file__).resolve())


def answer_chunks() -> list[Samples]:
    """The marker audio at 24 kHz, one 20 ms chunk per entry (PERIOD of them, looped)."""
    signal = marker_signal(ANSWER_RATE)
    return [signal[i * ANSWER_CHUNK : (i + 1) * ANSWER_CHUNK] for i in range(PERIOD)]


def record_sent(record: SentTrack, position: int, at: float, window: Window) -> None:
    """Note one 20 ms frame handed on at ``at``; ``position`` is its place in the marker loop."""
    if position % BURST_EVERY == BURST_AT:
        record.bursts.append((at, position // BURST_EVERY))
    if window.holds(at):
        record.sent += 1
        if record.last is not None:
            record.max_gap = max(record.max_gap, at - record.last)
        record.last = at


def sent_report(tracks: Mapping[str, SentTrack]) -> dict[str, Any]:
    return {
        "sent": {track_id: t.sent for track_id, t in tracks.items()},
        "bursts": {track_id: t.bursts for track_id, t in tracks.items()},
        "max_gap": max((t.max_gap for t in tracks.values()), default=0.0),
    }


def received_report(tracks: Mapping[str, ReceivedTrack]) -> dict[str, Any]:
    return {
        "frames": {track_id: t.frames for track_id, t in tracks.items()},
        "onsets": {track_id: t.onsets for track_id, t in tracks.items()},
    }


# --------------------------------------------------------------------------------------------
# Role: agents (shoal) — create rooms, agents and participant tokens; listen at 16 kHz, answer at 24 kHz


async def agents_role(url: str, token: str, n: int) -> None:
    from fishjam import AgentOptions, FishjamClient
    from fishjam.agent.agent import OutgoingAudioTrackOptions, OutgoingTrack
    from fishjam.api._options import AgentOutputOptions
    from fishjam.events import TrackEncoding

    client = FishjamClient(url, token)
    agents = []
    peer_tokens: list[str] = []
    for _ in range(n):
        room = await asyncio.to_thread(client.create_room)
        options = AgentOptions(output=AgentOutputOptions(audio_sample_rate=AGENT_RATE))
        agents.append(await asyncio.to_thread(client.create_agent, room.id, options))
        _, peer_token = await asyncio.to_thread(client.create_peer, room.id)
        peer_tokens.append(peer_token)

    chunks = [chunk.astype("<i2").tobytes() for chunk in answer_chunks()]
    window = Window()
    go = asyncio.Event()
    heard: dict[str, ReceivedTrack] = {}
    said: dict[str, SentTrack] = {}
    sessions: list[Any] = []
    connected = asyncio.Semaphore(0)

    async def speak(track: OutgoingTrack) -> None:
        """Send 20 ms chunks on a fixed 20 ms schedule (late ones at once, so the audio stays real time)."""
        record = said[track.id] = SentTrack()
        offset = random.randrange(PERIOD)  # the rooms' bursts are spread in time, not simultaneous
        await go.wait()
        await asyncio.sleep(random.uniform(0, FRAME_S))
        start = time.monotonic()
        for k in range(1 << 62):
            delay = start + k * FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            position = (k + offset) % PERIOD
            record_sent(record, position, time.monotonic(), window)
            await track.send_chunk(chunks[position])

    async def converse(agent: Any) -> None:
        async with agent.connect() as session:
            sessions.append(session)
            answer = await session.add_track(
                OutgoingAudioTrackOptions(encoding=TrackEncoding.TRACK_ENCODING_PCM16, sample_rate=ANSWER_RATE)
            )
            speaker = asyncio.create_task(speak(answer))
            connected.release()
            try:
                async for message in session.receive():
                    at = time.monotonic()
                    if not hasattr(message, "peer_id"):
                        continue  # an image; none are requested
                    track = heard.get(message.track.id)
                    if track is None:
                        track = heard[message.track.id] = ReceivedTrack(OnsetDetector(AGENT_RATE))
                    track.add(np.frombuffer(message.data, dtype="<i2"), at, window)
            finally:
                speaker.cancel()

    listeners = [asyncio.create_task(converse(agent)) for agent in agents]
    for _ in agents:
        await asyncio.wait_for(connected.acquire(), 30)
    emit("ready", tokens=peer_tokens)
    reader = await stdin_reader()
    await serve_commands(reader, window, lambda: {"tracks": sum(1 for t in heard.values() if t.total)}, go)
    emit("result", **received_report(heard), **sent_report(said))
    for session in sessions:
        with contextlib.suppress(Exception):
            await session.disconnect()
    await asyncio.wait(listeners, timeout=10)


# --------------------------------------------------------------------------------------------
# Role: participants — WebRTCPeers publishing looped pre-encoded Opus, decoding what they receive


class TapRecording(Recording):
    """A remote track's recording that feeds every decoded frame to the burst detector (and keeps none)."""

    def __init__(self, record: ReceivedTrack, window: Window) -> None:
        super().__init__(max_seconds=0)
        self.record = record
        self.window = window

    def append(self, samples: np.ndarray, arrival: float) -> None:
        super().append(samples, arrival)
        self.record.add(samples, arrival, self.window)


class ListeningPeer(WebRTCPeer):
    """A WebRTCPeer whose remote tracks are tapped as soon as they are announced."""

    heard: dict[str, ReceivedTrack]
    window: Window

    def _add_tracks(self, endpoint_id: str, tracks: Mapping[str, Any]) -> None:
        super()._add_tracks(endpoint_id, tracks)
        for track_id in tracks:
            remote = self.remote_tracks[track_id]
            if not isinstance(remote.recording, TapRecording):
                record = self.heard.setdefault(track_id, ReceivedTrack(OnsetDetector(SAMPLE_RATE)))
                remote.recording = TapRecording(record, self.window)


async def participants_role() -> None:
    reader = await stdin_reader()
    config = json.loads(await reader.readline())
    consent = LogCounter("aioice.ice", "Consent to send expired")
    packets = marker_packets()
    window = Window()
    go = asyncio.Event()
    said: dict[str, SentTrack] = {}
    heard: dict[str, ReceivedTrack] = {}
    peers: list[WebRTCPeer] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(JOIN_CONCURRENCY)
    ListeningPeer.heard = heard
    ListeningPeer.window = window

    class GatedSource(OpusPacketSource):
        """Sends nothing until ``go``, then starts at a random phase: every peer joins an idle server."""

        def __init__(self, offset: int, on_frame: Callable[[int, float], None]) -> None:
            super().__init__(packets[offset:] + packets[:offset], loop=True, on_frame=on_frame)
            self._started = False

        async def recv(self) -> Any:
            if not self._started:
                await go.wait()
                await asyncio.sleep(random.uniform(0, FRAME_S))
                self._started = True
            return await super().recv()

    def hook_for(record: SentTrack, offset: int) -> Callable[[int, float], None]:
        return lambda index, at: record_sent(record, (index + offset) % PERIOD, at, window)

    async def start_peer(index: int, token: str) -> None:
        async with gate:
            try:
                peer = await ListeningPeer.join(
                    config["ws_url"], token, metadata={"name": f"talker-{index}"}, send_stats=False,
                    max_recording_s=0, timeout=60,
                )
            except Exception as exc:
                errors.append(f"join: {type(exc).__name__}: {exc}")
                return
            peers.append(peer)
            record = SentTrack()
            offset = random.randrange(PERIOD)
            try:
                track_id = await peer.publish_audio(GatedSource(offset, hook_for(record, offset)), timeout=60)
            except Exception as exc:
                errors.append(f"publish: {type(exc).__name__}: {exc}")
                return
            said[track_id] = record

    await asyncio.gather(*(start_peer(i, token) for i, token in enumerate(config["tokens"])))
    emit("ready", tracks=len(said), errors=errors[:5], failed=len(errors))
    await serve_commands(reader, window, lambda: {"receiving": sum(1 for t in heard.values() if t.total)}, go)
    emit(
        "result",
        **sent_report(said),
        **received_report(heard),
        consent_expired=consent.count,
        states=[
            p.pc.connectionState if p.pc is not None else f"{p.state} (socket {p.close_code} {p.close_reason!r})"
            for p in peers
        ],
    )
    closing = [asyncio.create_task(p.close()) for p in peers]
    if closing:
        await asyncio.wait(closing, timeout=20)


# --------------------------------------------------------------------------------------------
# Role: baseline server — plain aiortc: receive, decode, resample to 16 kHz; answer 24 kHz encoded to Opus


async def baseline_role(port: int) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
    from aiortc.sdp import candidate_from_sdp
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    from fishjam._proto import peer_notifications_pb2 as peer_msg
    from fishjam._proto.media_events import shared_pb2
    from fishjam._proto.media_events.server import server_pb2

    PM = peer_msg.PeerMessage
    SE = server_pb2.MediaEvent
    window = Window()
    go = asyncio.Event()
    heard: dict[str, ReceivedTrack] = {}
    said: dict[str, SentTrack] = {}
    connections: set[RTCPeerConnection] = set()
    chunks = answer_chunks()
    time_base = fractions.Fraction(1, ANSWER_RATE)

    class AnswerTrack(MediaStreamTrack):
        """The agent's answer: a 24 kHz mono frame of the marker audio every 20 ms, from ``go`` on."""

        kind = "audio"

        def __init__(self, record: SentTrack) -> None:
            super().__init__()
            self.record = record
            self.offset = random.randrange(PERIOD)
            self.start: float | None = None
            self.k = 0

        async def recv(self) -> av.AudioFrame:
            if self.start is None:
                await go.wait()
                await asyncio.sleep(random.uniform(0, FRAME_S))
                self.start = time.monotonic()
            delay = self.start + self.k * FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            position = (self.k + self.offset) % PERIOD
            frame = av.AudioFrame.from_ndarray(chunks[position].reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = ANSWER_RATE
            frame.pts = self.k * ANSWER_CHUNK
            frame.time_base = time_base
            self.k += 1
            record_sent(self.record, position, time.monotonic(), window)
            return frame

    async def read(track: MediaStreamTrack, track_id: str) -> None:
        record = heard.setdefault(track_id, ReceivedTrack(OnsetDetector(AGENT_RATE)))
        resampler = av.AudioResampler(format="s16", layout="mono", rate=AGENT_RATE)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                resampled = resampler.resample(frame)
                at = time.monotonic()
                if resampled:
                    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in resampled])
                    record.add(samples.astype(np.int16, copy=False), at, window)

    async def add_candidate(pc: RTCPeerConnection, body: shared_pb2.Candidate) -> None:
        with contextlib.suppress(Exception):
            candidate = candidate_from_sdp(body.candidate.removeprefix("a=").removeprefix("candidate:"))
            candidate.sdpMid = body.sdp_mid or None
            candidate.sdpMLineIndex = body.sdp_m_line_index
            await pc.addIceCandidate(candidate)

    async def session(ws: ServerConnection) -> None:
        endpoint_id = uuid.uuid4().hex
        agent_id = f"agent-{uuid.uuid4().hex}"
        answer_id = uuid.uuid4().hex
        answer = AnswerTrack(said.setdefault(answer_id, SentTrack()))
        pc: RTCPeerConnection | None = None
        pending: list[shared_pb2.Candidate] = []
        readers: dict[str, asyncio.Task[None]] = {}

        async def send(event: server_pb2.MediaEvent) -> None:
            await ws.send(PM(server_media_event=event).SerializeToString())

        try:
            async for data in ws:
                message = PM()
                message.ParseFromString(data if isinstance(data, bytes) else data.encode())
                which = message.WhichOneof("content")
                if which == "auth_request":
                    authenticated = PM.Authenticated(room_type=PM.ROOM_TYPE_CONFERENCE)
                    await ws.send(PM(authenticated=authenticated).SerializeToString())
                    continue
                if which != "peer_media_event":
                    continue  # stats reports
                event = message.peer_media_event
                kind = event.WhichOneof("content")
                if kind == "connect":
                    metadata = json.loads(event.connect.metadata_json or "{}")
                    connected = SE.Connected(endpoint_id=endpoint_id)
                    connected.endpoint_id_to_endpoint[endpoint_id].CopyFrom(
                        SE.Endpoint(endpoint_type="exwebrtc", metadata_json=json.dumps({"peer": metadata, "server": {}}))
                    )
                    agent = SE.Endpoint(endpoint_type="agent", metadata_json=json.dumps({"peer": {}, "server": {}}))
                    agent.track_id_to_track[answer_id].CopyFrom(SE.Track(metadata_json="null"))
                    connected.endpoint_id_to_endpoint[agent_id].CopyFrom(agent)
                    await send(SE(connected=connected))
                elif kind == "renegotiate_tracks":
                    await send(SE(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=1, video=0))))
                elif kind == "sdp_offer":
                    offer = event.sdp_offer
                    if pc is None:
                        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                        connections.add(pc)
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
                    for candidate in pending:
                        await add_candidate(pc, candidate)
                    pending.clear()
                    mids = dict(offer.mid_to_track_id)
                    for transceiver in pc.getTransceivers():
                        mid = transceiver.mid
                        if mid is None or transceiver.kind != "audio" or mid in offer.mid_to_track_id:
                            continue
                        if transceiver.sender.track is None and answer_id not in mids.values():
                            transceiver.sender.replaceTrack(answer)  # the participant's receive slot
                            transceiver.direction = "sendonly"
                        if transceiver.sender.track is answer:
                            mids[mid] = answer_id
                    await pc.setLocalDescription(await pc.createAnswer())
                    await send(SE(sdp_answer=SE.SdpAnswer(sdp=pc.localDescription.sdp, mid_to_track_id=mids)))
                    for transceiver in pc.getTransceivers():
                        mid = transceiver.mid
                        if mid is None or mid in readers or transceiver.kind != "audio" or mid not in offer.mid_to_track_id:
                            continue
                        readers[mid] = asyncio.create_task(read(transceiver.receiver.track, offer.mid_to_track_id[mid]))
                elif kind == "candidate":
                    if pc is not None and pc.remoteDescription is not None:
                        await add_candidate(pc, event.candidate)
                    else:
                        pending.append(event.candidate)
                elif kind == "disconnect":
                    break
        except ConnectionClosed:
            pass
        finally:
            for task in readers.values():
                task.cancel()
            if pc is not None:
                connections.discard(pc)
                await pc.close()

    async with serve(session, "127.0.0.1", port, max_size=16 * 1024 * 1024, ping_interval=None):
        emit("ready")
        reader = await stdin_reader()
        await serve_commands(reader, window, lambda: {"tracks": sum(1 for t in heard.values() if t.total)}, go)
        emit("result", **received_report(heard), **sent_report(said))
        closing = [asyncio.create_task(pc.close()) for pc in list(connections)]
        if closing:
            await asyncio.wait(closing, timeout=10)


# --------------------------------------------------------------------------------------------
# The orchestrator


class Child(ingest.Child):
    """A role of this script as a subprocess (``webrtc_ingest.Child`` runs that script's roles)."""

    @classmethod
    async def start(cls, name: str, *args: str) -> Child:
        fd, path = tempfile.mkstemp(prefix=f"shoal-conv-{name}-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, SCRIPT, "--role", *args,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log, limit=1 << 26,
            )
        return cls(name, proc, Path(path))


@dataclass
class Direction:
    """One direction of every conversation: frames sent/delivered in the window, burst latencies."""

    sent: int = 0
    delivered: int = 0
    latencies: list[float] = field(default_factory=list)
    bursts_sent: int = 0
    spurious: int = 0
    unmatched_tracks: int = 0  # sending tracks no receiver reported

    def pct(self, q: float) -> float:
        return 1000 * float(np.percentile(self.latencies, q)) if self.latencies else math.nan

    def max_ms(self) -> float:
        return 1000 * max(self.latencies) if self.latencies else math.nan

    def add(self, sender: dict[str, Any], receiver: dict[str, Any], t0: float, t1: float) -> None:
        """Sum the tracks ``sender`` reported against what ``receiver`` got of them (keyed by track id)."""
        for track_id, sent in sender["sent"].items():
            self.sent += sent
            if track_id not in receiver["frames"]:
                self.unmatched_tracks += 1
            self.delivered += receiver["frames"].get(track_id, 0)
            latencies, expected, spurious = match_bursts(
                [(at, b) for at, b in sender["bursts"][track_id]],
                [(at, b) for at, b in receiver["onsets"].get(track_id, [])],
                t0, t1,
            )
            self.latencies += latencies
            self.bursts_sent += expected
            self.spurious += spurious


@dataclass
class Result:
    mode: str
    n: int
    error: str | None = None
    rooms: int = 0  # conversations whose participant published
    cpu_share: float = math.nan  # server CPU seconds per second per conversation
    up: Direction = field(default_factory=Direction)  # participant -> agent
    down: Direction = field(default_factory=Direction)  # agent -> participant
    participant_cores: float = math.nan
    agent_cores: float = math.nan
    busy_cores: float = math.nan
    other_cores: float = math.nan
    setup_s: float = math.nan
    overloaded: bool = False
    notes: list[str] = field(default_factory=list)


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from several processes' (their track ids are distinct)."""
    merged: dict[str, Any] = {"sent": {}, "bursts": {}, "frames": {}, "onsets": {}, "max_gap": 0.0}
    for report in reports:
        for key in ("sent", "bursts", "frames", "onsets"):
            merged[key].update(report[key])
        merged["max_gap"] = max(merged["max_gap"], report["max_gap"])
    return merged


async def wait_media(children: list[Child], key: str, total: int, timeout: float) -> int:
    """Poll ``status`` until ``total`` tracks' media arrived at the children (or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        for child in children:
            await child.send(cmd="status")
        seen = sum([int((await child.expect("status", 30))[key]) for child in children])
        if seen >= total or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.3)


async def run(mode: str, n: int, seconds: float, warmup: float) -> Result:
    from shoal.testing import ServerProcess, start_server
    from shoal.testing.server import free_port

    result = Result(mode, n)
    started = time.monotonic()
    server: ServerProcess | None = None
    children: list[Child] = []
    counts = [len(range(n)[g::math.ceil(n / ROOMS_PER_PROCESS)]) for g in range(math.ceil(n / ROOMS_PER_PROCESS))]
    try:
        speakers: list[Child] = []  # the agents' side: agent processes, or the baseline server
        if mode == "shoal":
            server = await asyncio.to_thread(start_server, ingest.shoal_args())
            for g, count in enumerate(counts):
                child = await Child.start(f"agents{g}", "agents", "--url", server.url, "--token", server.token, "--n", str(count))
                children.append(child)
                speakers.append(child)
            readies = await asyncio.gather(*(c.expect("ready", 60 + 2 * n) for c in speakers))
            token_groups: list[list[str]] = [r["tokens"] for r in readies]
            server_pid, ws_url = server.process.pid, server.ws_url
        else:
            port = free_port()
            child = await Child.start("baseline", "baseline", "--port", str(port))
            children.append(child)
            speakers.append(child)
            await child.expect("ready", 30)
            token_groups = [[f"baseline-{g}-{i}" for i in range(count)] for g, count in enumerate(counts)]
            server_pid, ws_url = child.pid, f"ws://127.0.0.1:{port}"

        talkers: list[Child] = []
        for g, tokens in enumerate(token_groups):
            child = await Child.start(f"participants{g}", "participants")
            children.append(child)
            talkers.append(child)
            await child.send(cmd="start", ws_url=ws_url, tokens=tokens)
        readies = await asyncio.gather(*(c.expect("ready", 60 + 3 * n) for c in talkers))
        result.rooms = sum(r["tracks"] for r in readies)
        failed = sum(r["failed"] for r in readies)
        if failed:
            errors: list[str] = next((r["errors"] for r in readies if r["errors"]), [])
            result.notes.append(f"{failed} participants failed to join/publish: {errors}")

        for child in children:  # everyone has joined: start the media both ways
            await child.send(cmd="go")
        heard = await wait_media(speakers, "tracks", result.rooms, 30)
        receiving = await wait_media(talkers, "receiving", result.rooms, 30)
        if heard < result.rooms or receiving < result.rooms:
            result.notes.append(
                f"before the window, media reached {heard}/{result.rooms} agents and {receiving}/{result.rooms} participants"
            )
        result.setup_s = time.monotonic() - started

        await asyncio.sleep(warmup)
        t0 = time.monotonic() + 0.5
        t1 = t0 + seconds
        for child in children:
            await child.send(cmd="window", t0=t0, t1=t1)
        pids = {"server": server_pid, "orchestrator": os.getpid(), **{c.name: c.pid for c in talkers}}
        if mode == "shoal":
            pids.update({c.name: c.pid for c in speakers})
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        before = snapshot(pids)
        await asyncio.sleep(max(0.0, t1 - time.monotonic()))
        after = snapshot(pids)
        await asyncio.sleep(DRAIN_S)
        for child in children:
            await child.send(cmd="stop")
        speaker_reports = await asyncio.gather(*(c.expect("result", 60) for c in speakers))
        talker_reports = await asyncio.gather(*(c.expect("result", 60) for c in talkers))
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        for child in children:
            for line in child.warnings()[:3]:
                result.notes.append(f"{child.name} log: {line[:200]}")
        await asyncio.gather(*(child.close() for child in children), return_exceptions=True)
        if server is not None:
            await asyncio.to_thread(server.stop)
            server_log_notes(server.log_path.read_text(errors="replace"), result)
            if ingest.KEEP_LOGS_ON:
                ingest.KEEP_LOGS.append(server.log_path)
            else:
                server.log_path.unlink(missing_ok=True)

    wall = after["wall"] - before["wall"]
    busy = {name: (after[name] - before[name]) / wall for name in pids}
    result.cpu_share = busy["server"] / max(result.rooms, 1)
    result.participant_cores = sum(busy[c.name] for c in talkers)
    if mode == "shoal":
        result.agent_cores = sum(busy[c.name] for c in speakers)
    result.busy_cores = (after["machine"] - before["machine"]) / wall
    result.other_cores = result.busy_cores - sum(busy.values())
    agents_side, participants_side = merge(speaker_reports), merge(talker_reports)
    result.up.add(participants_side, agents_side, t0, t1)
    result.down.add(agents_side, participants_side, t0, t1)
    judge(result, seconds, busy["server"], agents_side, participants_side, talker_reports)
    return result


def server_log_notes(text: str, result: Result) -> None:
    """The server's warnings, playout-clock catch-ups counted apart (queued agent audio was dropped to stay on time)."""
    stalls, warnings = 0, []
    for line in text.splitlines():
        if "playout clock fell" in line:
            stalls += 1
        elif " WARNING " in line or " ERROR " in line or line.startswith("Traceback"):
            warnings.append(line)
    if stalls:
        result.notes.append(
            f"server log: the playout clock fell > --playout-max-lag behind ({stalls} log lines, the first of each "
            "minute); it dropped the late queued agent audio to stay on schedule"
        )
    for line in warnings[:3]:
        result.notes.append(f"server log: {line[:200]}")
    if len(warnings) > 3:
        result.notes.append(f"server log: {len(warnings) - 3} more warnings")


def judge(
    result: Result, seconds: float, server_cores: float, agents: dict[str, Any], participants: dict[str, Any],
    talker_reports: list[dict[str, Any]],
) -> None:
    """Notes on what makes a row's figures less than a cost measurement (backlogs, losses, stalls)."""
    nominal = round(seconds / FRAME_S) * result.rooms
    for name, direction, sender in (("up", result.up, participants), ("down", result.down, agents)):
        if direction.unmatched_tracks:
            result.notes.append(f"{name}: {direction.unmatched_tracks} sending tracks reached no receiver")
        if direction.sent < 0.98 * nominal:
            result.notes.append(f"{name}: {direction.sent} of {nominal} nominal frames sent (the senders fell behind)")
        if sender["max_gap"] > 0.1:
            result.notes.append(f"{name}: longest sender pause {1000 * sender['max_gap']:.0f} ms")
        short = direction.sent and abs(direction.delivered - direction.sent) > 0.01 * direction.sent
        if short:
            result.overloaded = True
            result.notes.append(
                f"{name}: delivered {100 * direction.delivered / direction.sent:.0f}% of the frames sent in the window "
                f"(server used {server_cores:.2f} cores); bursts still queued {DRAIN_S:g} s after the window are "
                "missing, so latency is understated"
            )
        elif direction.latencies and direction.pct(50) > LAGGING_P50_MS:
            result.overloaded = True
            result.notes.append(
                f"{name}: p50 latency {direction.pct(50):.0f} ms (> {LAGGING_P50_MS} ms): a growing backlog "
                f"(server used {server_cores:.2f} cores)"
            )
        if direction.spurious:
            result.notes.append(f"{name}: {direction.spurious} burst onsets matched no burst")
    cores = os.cpu_count() or 1
    if result.busy_cores > 0.95 * cores:
        result.notes.append(
            f"machine saturated: {result.busy_cores:.2f} of {cores} cores busy ({result.other_cores:.2f} by other work), "
            f"so the server got {server_cores:.2f} cores: a backlog here is starvation, and CPU/conv is capped, not a cost"
        )
    expired = sum(r["consent_expired"] for r in talker_reports)
    if expired:
        result.notes.append(f"{expired} participants closed their connection: ICE consent expired (the server lagged ~30 s)")
    states = [s for r in talker_reports for s in r["states"] if s != "connected"]
    if states:
        result.notes.append(f"peer connections not connected at the end: {sorted(set(states))} x{len(states)}")


def print_header(mode: str) -> None:
    print()
    print(f"{mode}:")
    agents = " agents" if mode == "shoal" else ""
    lat = f"{'p50':>6} {'p90':>6} {'p99':>6} {'max':>6}"
    print(
        f"{'':>5} {'':>9} {'':>9} | {'up: participant -> agent':<43}| {'down: agent -> participant':<43}|",
        flush=True,
    )
    print(
        f"{'rooms':>5} {'CPU/conv':>9} {'conv/core':>9} | {'delivered/sent':>15} {lat} | {'delivered/sent':>15} {lat} | "
        f"{'parts':>5}{agents} {'busy':>5} {'other':>5} {'setup s':>7}",
        flush=True,
    )


def direction_cells(d: Direction) -> str:
    return f"{d.delivered:>7}/{d.sent:<7} {d.pct(50):>6.1f} {d.pct(90):>6.1f} {d.pct(99):>6.1f} {d.max_ms():>6.1f}"


def print_row(r: Result) -> None:
    if r.error is not None:
        lines = r.error.strip().splitlines() or [""]
        print(f"{r.n:>5} failed: {lines[0]}" + (f" ... {lines[-1]}" if len(lines) > 1 else ""), flush=True)
    else:
        per_core = 1 / r.cpu_share if r.cpu_share > 0 else math.inf
        agents = f" {fmt_cores(r.agent_cores):>6}" if r.mode == "shoal" else ""
        print(
            f"{r.n:>5} {100 * r.cpu_share:>8.2f}% {per_core:>9.0f} | {direction_cells(r.up)} | {direction_cells(r.down)} | "
            f"{fmt_cores(r.participant_cores)}{agents} {fmt_cores(r.busy_cores)} {fmt_cores(r.other_cores)} {r.setup_s:>7.1f}",
            flush=True,
        )
    for note in r.notes:
        print(f"      note: {note}", flush=True)


async def orchestrate(rooms: list[int], seconds: float, warmup: float, modes: list[str]) -> None:
    print(f"machine: {machine()}")
    print(
        "each room: one WebRTCPeer publishing looped pre-encoded Opus (48 kHz mono, 20 ms, 32 kb/s) and one agent "
        f"taking it as 16 kHz pcm16 and answering with 24 kHz pcm16 in 20 ms chunks every 20 ms; {seconds:g} s measured "
        f"after {warmup:g} s warm-up; {ROOMS_PER_PROCESS} rooms per client process"
    )
    print(
        "baseline: plain aiortc in one process, same media work: decode the participant's Opus, resample to 16 kHz, "
        "send 24 kHz audio that aiortc encodes to Opus (no agent sockets)"
    )
    print(
        "CPU/conv: server process CPU over the window / rooms, % of one core; conv/core: conversations one core carries"
    )
    print(
        "up: packet handed to aiortc by the participant -> the agent process receives the 16 kHz frame holding it "
        "(baseline: its resampled frame is ready)"
    )
    print(
        "down: agent sends the TrackData chunk (baseline: its track hands the 24 kHz frame to aiortc) -> the "
        "participant's aiortc decodes the frame holding it (incl. aiortc's ~80 ms jitter buffer)"
    )
    print(
        "delivered/sent: 20 ms frames in the window; p50..max: ms, bursts matched by frequency; "
        "parts, agents: client processes, cores; busy: whole machine, cores; other: busy minus this benchmark (±0.1)"
    )
    print(f"server event loop: {'uvloop' if uvloop_factory() else 'asyncio'} for both (uvicorn picks uvloop when installed)")
    results: dict[str, dict[int, Result]] = {}
    for mode in modes:
        print_header(mode)
        results[mode] = {}
        for n in rooms:
            r = await run(mode, n, seconds, warmup)
            results[mode][n] = r
            print_row(r)
    if len(modes) == 2:
        print()
        print("shoal / baseline (CPU per conversation; latency p50 shoal / baseline, ms):")
        print(f"{'rooms':>5} {'CPU/conv':>9} {'shoal %':>8} {'base %':>8} {'up p50':>15} {'down p50':>15}")
        for n in rooms:
            s, b = results["shoal"][n], results["baseline"][n]
            if s.error or b.error:
                print(f"{n:>5} {'-':>9}")
                continue
            ratio = s.cpu_share / b.cpu_share if b.cpu_share > 0 else math.nan
            up = f"{s.up.pct(50):.1f} / {b.up.pct(50):.1f}"
            down = f"{s.down.pct(50):.1f} / {b.down.pct(50):.1f}"
            saturated = (
                "  (overloaded: " + " and ".join(r.mode for r in (s, b) if r.overloaded) + ")"
                if s.overloaded or b.overloaded else ""
            )
            print(
                f"{n:>5} {ratio:>8.2f}x {100 * s.cpu_share:>7.2f}% {100 * b.cpu_share:>7.2f}% {up:>15} {down:>15}{saturated}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", default="10,50,100", help="comma-separated N values (conversations)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of conversation before the window")
    parser.add_argument("--only", choices=["shoal", "baseline"], help="run one server only")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs and print their paths")
    parser.add_argument("--server-log-level", default="warning", help="shoal's --log-level (logs kept with --keep-logs)")
    parser.add_argument("--role", choices=["agents", "participants", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    roles: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "agents": lambda: agents_role(args.url, args.token, args.n),
        "participants": participants_role,
        "baseline": lambda: baseline_role(args.port),
    }
    if args.role is not None:
        child_logging()
        # The baseline server runs on the loop uvicorn gives shoal (uvloop when installed).
        factory = uvloop_factory() if args.role == "baseline" else None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(roles[args.role]())
        return
    modes = [args.only] if args.only else ["shoal", "baseline"]
    rooms = [int(p) for p in args.rooms.split(",") if p.strip()]
    ingest.KEEP_LOGS_ON = args.keep_logs
    ingest.SERVER_LOG_LEVEL = args.server_log_level
    asyncio.run(orchestrate(rooms, args.seconds, args.warmup, modes))
    if ingest.KEEP_LOGS:
        print("logs: " + " ".join(str(p) for p in ingest.KEEP_LOGS))


if __name__ == "__main__":
    main()
