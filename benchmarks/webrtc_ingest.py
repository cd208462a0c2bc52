"""WebRTC ingest benchmark: N participants → agents, CPU per inbound stream, delivery and latency.

For each N (default 1, 10, 50, 100) it starts a fresh server and N WebRTC participants
(``shoal.testing.WebRTCPeer``), each alone in its own room with one agent taking 16 kHz
PCM. Every participant publishes pre-encoded Opus (``OpusPacketSource``, looped), so the
load generator never encodes. After a warm-up it measures a window of SECONDS and prints,
per N:

* server CPU per inbound stream (% of one core, utime+stime of the server process from
  /proc) and the streams one core could carry;
* frames delivered versus sent in the window: 20 ms packets handed to aiortc by the
  generators, against ``TrackData`` messages the agents received (same window, so the
  frames in flight at both edges roughly cancel);
* latency percentiles from the packet's send to the agent receiving the frame that holds
  it. The generator records ``time.monotonic()`` when it hands a packet to aiortc (the
  ``on_frame`` hook); on loopback the wire adds ~0, so that stands in for the packet's
  arrival at the server. Packets are matched to frames by content, not by counting: the
  audio is a quiet 220 Hz hum with a loud 40 ms tone burst every 25th packet (2 per
  second), and the burst's frequency (one of 26) names it, so a frame is only ever matched
  to the burst it carries, even if frames are lost or late by up to 13 s. A latency sample
  is the arrival of the frame in which the burst starts minus the send time of the burst's
  first packet (Opus' 6.5 ms look-ahead puts the onset inside that same packet's frame);
* CPU of the client processes (generators, agents) and of the whole machine: all share
  the machine's cores with the server. "other" is the machine's busy time not spent in
  this benchmark's processes (other work on the host; /proc accounting makes it ±0.1).

``--baseline`` runs the same load against a minimal plain-aiortc server defined in this
script (the peer-signaling subset ``WebRTCPeer`` needs; each received audio track is only
read and decoded, and the burst detector runs on the decoded 48 kHz audio, timed when
aiortc hands out the frame; the detector costs ~5 µs per frame, ~2% of the baseline's
per-frame CPU). It runs on uvloop when installed, as uvicorn runs shoal. By default both
run and a ratio table follows. The baseline keeps aiortc's default audio jitter buffer
(four complete frames held back, ~80 ms); shoal holds none: it decodes each packet as it
arrives, on the event loop (``shoal.media.opus_in``).

The server's asyncio loop runs on one core (aiortc decodes in a thread per track, but
those threads mostly contend for the GIL), so once a server needs more than one core it
falls behind: latency grows by seconds, delivery drops, and after ~30 s of lag the peers'
ICE consent checks expire and they hang up. Such rows say so in their notes.

``--pin-server`` puts the server (shoal, or the baseline's receiver) alone on the first CPU and
every client on the others, for machines with cores to spare: on 2 cores the clients then
saturate their one core (the ``/health`` probe runs there too) and the figures get worse, not
better.

Run: ``.venv/bin/python benchmarks/webrtc_ingest.py [--peers 1,10,50,100] [--seconds 10]
[--warmup 3] [--only shoal|baseline | --baseline] [--pin-server] [--keep-logs] [--server-args "..."]``
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import logging
import math
import os
import platform
import random
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt

from shoal.media.opus import encode_opus

# --------------------------------------------------------------------------------------------
# Marker audio: a quiet hum with a loud, frequency-coded burst every BURST_EVERY packets

SAMPLE_RATE = 48000
FRAME = 960  # 20 ms at 48 kHz: one Opus packet
FRAME_S = 0.02
BURST_EVERY = 25  # packets between bursts: 2 bursts per second
BURST_AT = 5  # position of the burst in its 25-packet block (away from the loop seam)
BURST_PACKETS = 2
BURST_IDS = 26  # distinct burst frequencies, 600 Hz to 6850 Hz; the packet list loops after BURST_IDS blocks
BURST_HZ_STEP = 250.0
PERIOD = BURST_EVERY * BURST_IDS  # 650 packets = 13 s
BURST_AMPLITUDE = 10000
HUM_AMPLITUDE = 150
HUM_HZ = 220.0
ONSET_PEAK = 3000  # a frame whose peak exceeds this after quiet ones starts a burst
QUIET_PEAK = 1000  # the burst has ended once a frame peaks below this
AGENT_RATE: Final = 16000
MATCH_WINDOW_S = PERIOD * FRAME_S  # a burst id repeats every 13 s

CLK_TCK = os.sysconf("SC_CLK_TCK")
PEERS_PER_GENERATOR = 50
SCRIPT = str(Path(__file__).resolve())
JOIN_CONCURRENCY = 8

Samples = npt.NDArray[np.int16]


def burst_hz(burst_id: int) -> float:
    return 600.0 + BURST_HZ_STEP * burst_id


def marker_packets(bitrate: int = 32000) -> list[bytes]:
    """PERIOD Opus packets (48 kHz mono, 20 ms) of the marker signal, ready to loop.

    Two periods are encoded and the second kept, so the encoder state at the loop seam is
    the steady one (the seam falls in the hum, far from any burst).
    """
    packets = encode_opus(marker_signal(SAMPLE_RATE, 2), bitrate)
    return packets[PERIOD : 2 * PERIOD]


def marker_signal(rate: int, periods: int = 1) -> Samples:
    """``periods`` loops of the marker signal at ``rate`` (mono int16): 20 ms packets, a burst every 25th."""
    frame = rate * FRAME // SAMPLE_RATE
    t = np.arange(periods * PERIOD * frame) / rate
    signal = HUM_AMPLITUDE * np.sin(2 * np.pi * HUM_HZ * t)
    for block in range(periods * BURST_IDS):
        start = (block * BURST_EVERY + BURST_AT) * frame
        span = slice(start, start + BURST_PACKETS * frame)
        signal[span] = BURST_AMPLITUDE * np.sin(2 * np.pi * burst_hz(block % BURST_IDS) * t[span])
    return np.round(signal).astype(np.int16)


class OnsetDetector:
    """Finds burst onsets in a stream of mono int16 frames and names the burst by its frequency."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.loud = False

    def feed(self, samples: Samples) -> int | None:
        """The burst id if a burst starts in this frame (-1 if its frequency is not recognised)."""
        if not len(samples):
            return None
        peak = max(int(samples.max()), -int(samples.min()))
        if self.loud:
            if peak < QUIET_PEAK:
                self.loud = False
            return None
        if peak < ONSET_PEAK:
            return None
        self.loud = True
        spectrum = np.abs(np.fft.rfft(samples.astype(np.float32)))
        hz = float(np.argmax(spectrum[1:]) + 1) * self.rate / len(samples)
        burst_id = round((hz - burst_hz(0)) / BURST_HZ_STEP)
        if 0 <= burst_id < BURST_IDS and abs(hz - burst_hz(burst_id)) < BURST_HZ_STEP / 2:
            return burst_id
        return -1


# --------------------------------------------------------------------------------------------
# Machine and process accounting


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by all cores (everything but idle and iowait) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(values[:8]) - values[3] - values[4]
    return busy / CLK_TCK


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line),
        platform.processor() or "unknown CPU",
    )
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


# --------------------------------------------------------------------------------------------
# Child-process plumbing: JSON lines, commands on stdin, events on stdout


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


@dataclass
class Window:
    t0: float = math.inf
    t1: float = math.inf

    def holds(self, at: float) -> bool:
        return self.t0 <= at < self.t1


async def serve_commands(
    reader: asyncio.StreamReader,
    window: Window,
    status: Callable[[], dict[str, Any]],
    go: asyncio.Event | None = None,
) -> None:
    """Handle ``go``, ``window`` and ``status`` until ``stop`` (or the parent goes away)."""
    while True:
        line = await reader.readline()
        if not line:
            return
        command = json.loads(line)
        if command["cmd"] == "go" and go is not None:
            go.set()
        elif command["cmd"] == "window":
            window.t0, window.t1 = command["t0"], command["t1"]
        elif command["cmd"] == "status":
            emit("status", **status())
        elif command["cmd"] == "stop":
            return


def child_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


class LogCounter(logging.Handler):
    """Counts the records of a logger whose message contains ``text`` (aioice says some things at INFO only)."""

    def __init__(self, logger: str, text: str) -> None:
        super().__init__(logging.INFO)
        self.text = text
        self.count = 0
        logging.getLogger(logger).setLevel(logging.INFO)
        logging.getLogger(logger).addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.count += 1


@dataclass
class ReceivedTrack:
    """What one receiving side saw of one track: frames in the window, burst onsets (all)."""

    detector: OnsetDetector
    frames: int = 0
    total: int = 0  # frames received at any time
    onsets: list[tuple[float, int]] = field(default_factory=list)

    def add(self, samples: Samples, at: float, window: Window) -> None:
        self.total += 1
        if window.holds(at):
            self.frames += 1
        burst_id = self.detector.feed(samples)
        if burst_id is not None:
            self.onsets.append((at, burst_id))


def received_report(tracks: dict[str, ReceivedTrack]) -> dict[str, Any]:
    return {
        "frames": {track_id: t.frames for track_id, t in tracks.items()},
        "onsets": {track_id: t.onsets for track_id, t in tracks.items()},
    }


# --------------------------------------------------------------------------------------------
# Role: agents (shoal mode) — creates the rooms, agents and participant tokens, then listens


async def agents_role(url: str, token: str, n: int) -> None:
    import httpx

    from fishjam import AgentOptions, FishjamClient
    from fishjam.api._options import AgentOutputOptions

    client = FishjamClient(url, token)
    agents = []
    peer_tokens: list[str] = []
    peer_urls: list[str] = []
    async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30) as rest:
        for _ in range(n):
            room = await asyncio.to_thread(client.create_room)
            options = AgentOptions(output=AgentOutputOptions(audio_sample_rate=AGENT_RATE))
            agents.append(await asyncio.to_thread(client.create_agent, room.id, options))
            # The participant joins where peer_websocket_url says (the room's owner in a cluster),
            # as a browser given that URL would; the SDK's agent connects to the same node.
            response = await rest.post(f"/room/{room.id}/peer", json={"type": "webrtc", "options": {}})
            response.raise_for_status()
            data = response.json()["data"]
            peer_tokens.append(data["token"])
            peer_urls.append(data["peer_websocket_url"].removesuffix("/socket/peer/websocket"))

    window = Window()
    tracks: dict[str, ReceivedTrack] = {}
    sessions: list[Any] = []
    connected = asyncio.Semaphore(0)

    async def listen(agent: Any) -> None:
        async with agent.connect() as session:
            sessions.append(session)
            connected.release()
            async for message in session.receive():
                at = time.monotonic()
                if not hasattr(message, "peer_id"):
                    continue  # an image; none are requested
                track = tracks.get(message.track.id)
                if track is None:
                    track = tracks[message.track.id] = ReceivedTrack(OnsetDetector(AGENT_RATE))
                track.add(np.frombuffer(message.data, dtype="<i2"), at, window)

    listeners = [asyncio.create_task(listen(agent)) for agent in agents]
    for _ in agents:
        await asyncio.wait_for(connected.acquire(), 30)
    emit("ready", tokens=peer_tokens, ws_urls=peer_urls)
    reader = await stdin_reader()
    await serve_commands(reader, window, lambda: {"tracks": sum(1 for t in tracks.values() if t.total)})
    emit("result", **received_report(tracks))
    for session in sessions:
        with contextlib.suppress(Exception):
            await session.disconnect()
    await asyncio.wait(listeners, timeout=10)


# --------------------------------------------------------------------------------------------
# Role: load generator — N WebRTCPeers publishing looped pre-encoded Opus


@dataclass
class SentTrack:
    sent: int = 0  # packets handed to aiortc inside the window
    bursts: list[tuple[float, int]] = field(default_factory=list)  # (send time, burst id), all
    last: float | None = None
    max_gap: float = 0.0  # longest pause between two packets inside the window


async def generator_role() -> None:
    from shoal.testing import OpusPacketSource, WebRTCPeer

    reader = await stdin_reader()
    config = json.loads(await reader.readline())
    consent = LogCounter("aioice.ice", "Consent to send expired")
    packets = marker_packets()
    window = Window()
    sent: dict[str, SentTrack] = {}
    peers: list[WebRTCPeer] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(JOIN_CONCURRENCY)

    go = asyncio.Event()

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
        def hook(index: int, at: float) -> None:
            position = (index + offset) % PERIOD
            if position % BURST_EVERY == BURST_AT:
                record.bursts.append((at, position // BURST_EVERY))
            if window.holds(at):
                record.sent += 1
                if record.last is not None:
                    record.max_gap = max(record.max_gap, at - record.last)
                record.last = at

        return hook

    async def start_peer(index: int, token: str, ws_url: str) -> None:
        async with gate:
            try:
                peer = await WebRTCPeer.join(
                    ws_url, token, metadata={"name": f"load-{index}"}, send_stats=False,
                    max_recording_s=0, timeout=60,
                )
            except Exception as exc:
                errors.append(f"join: {type(exc).__name__}: {exc}")
                return
            peers.append(peer)
            record = SentTrack()
            offset = random.randrange(PERIOD)  # the peers' bursts are spread in time, not simultaneous
            try:
                track_id = await peer.publish_audio(GatedSource(offset, hook_for(record, offset)), timeout=60)
            except Exception as exc:
                errors.append(f"publish: {type(exc).__name__}: {exc}")
                return
            sent[track_id] = record

    await asyncio.gather(
        *(start_peer(i, token, url) for i, (token, url) in enumerate(zip(config["tokens"], config["ws_urls"], strict=True)))
    )
    emit("ready", tracks=len(sent), errors=errors[:5], failed=len(errors))
    await serve_commands(reader, window, lambda: {}, go)
    emit(
        "result",
        sent={track_id: r.sent for track_id, r in sent.items()},
        bursts={track_id: r.bursts for track_id, r in sent.items()},
        max_gap=max((r.max_gap for r in sent.values()), default=0.0),
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
# Role: baseline server — plain aiortc, the signaling subset WebRTCPeer needs, receive + decode


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
    tracks: dict[str, ReceivedTrack] = {}
    connections: set[RTCPeerConnection] = set()

    async def read(track: MediaStreamTrack, track_id: str) -> None:
        record = tracks.setdefault(track_id, ReceivedTrack(OnsetDetector(SAMPLE_RATE)))
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                at = time.monotonic()
                if isinstance(frame, av.AudioFrame):  # s16 packed stereo; both channels carry the mono source
                    channels = len(frame.layout.channels)
                    record.add(frame.to_ndarray().reshape(-1)[::channels].astype(np.int16, copy=False), at, window)

    async def add_candidate(pc: RTCPeerConnection, body: shared_pb2.Candidate) -> None:
        with contextlib.suppress(Exception):
            candidate = candidate_from_sdp(body.candidate.removeprefix("a=").removeprefix("candidate:"))
            candidate.sdpMid = body.sdp_mid or None
            candidate.sdpMLineIndex = body.sdp_m_line_index
            await pc.addIceCandidate(candidate)

    async def session(ws: ServerConnection) -> None:
        endpoint_id = uuid.uuid4().hex
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
                    await send(SE(connected=connected))
                elif kind == "renegotiate_tracks":
                    await send(SE(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=0, video=0))))
                elif kind == "sdp_offer":
                    offer = event.sdp_offer
                    if pc is None:
                        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                        connections.add(pc)
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
                    for candidate in pending:
                        await add_candidate(pc, candidate)
                    pending.clear()
                    await pc.setLocalDescription(await pc.createAnswer())
                    answer = SE.SdpAnswer(sdp=pc.localDescription.sdp, mid_to_track_id=dict(offer.mid_to_track_id))
                    await send(SE(sdp_answer=answer))
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
        await serve_commands(reader, window, lambda: {"tracks": sum(1 for t in tracks.values() if t.total)})
        emit("result", **received_report(tracks))
        closing = [asyncio.create_task(pc.close()) for pc in list(connections)]
        if closing:
            await asyncio.wait(closing, timeout=10)


# --------------------------------------------------------------------------------------------
# The orchestrator


DRAIN_S = 2.0  # after the window, so that the bursts sent at its end can arrive
LAGGING_P50_MS = 150  # aiortc's default jitter buffer alone accounts for ~80 ms; a p50 beyond this means a growing backlog
KEEP_LOGS_ON = False
SERVER_LOG_LEVEL = "warning"
SERVER_EXTRA: list[str] = []
"""More arguments for ``shoal serve`` (``--server-args``)."""
KEEP_LOGS: list[Path] = []  # with --keep-logs, the log files of every process, printed at the end


PIN: tuple[set[int], set[int]] | None = None
"""With --pin-server: the CPUs of the server (shoal, or the baseline's receiver) and of everything else."""


def pin_server() -> tuple[set[int], set[int]] | None:
    """Server on the first CPU, this process and every client on the others (their children inherit it)."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None
    server, others = {available[0]}, set(available[1:])
    os.sched_setaffinity(0, others)
    return server, others


def pin_process(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` onto ``cpus`` (threads it starts later inherit them)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:  # a thread that just ended
            pass


def shoal_args() -> list[str]:
    """The benchmark's ``shoal serve`` options.

    Every benchmark client connects from 127.0.0.1, which a real deployment's participants do not,
    so the per-address limit on sockets not yet authenticated is lifted: 200 peers and their agents
    join at once.
    """
    return ["--log-level", SERVER_LOG_LEVEL, "--max-unauthenticated-per-ip", "0", *SERVER_EXTRA]


class Child:
    """One role of this script running as a subprocess: JSON commands in, JSON events out."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    @classmethod
    async def start(cls, name: str, *args: str) -> Child:
        fd, path = tempfile.mkstemp(prefix=f"shoal-bench-{name}-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, SCRIPT, "--role", *args,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log, limit=1 << 26,
            )
        return cls(name, proc, Path(path))

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()

    async def expect(self, event: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = await self.proc.stdout.readline()
                    if not line:
                        await self.proc.wait()
                        raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): {self.log_tail()}")
                    with contextlib.suppress(json.JSONDecodeError):
                        message: dict[str, Any] = json.loads(line)
                        if message.get("event") == event:
                            return message
        except TimeoutError:
            raise RuntimeError(f"{self.name}: no {event} within {timeout:g} s: {self.log_tail()}") from None

    def log_tail(self, lines: int = 3) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no log)"

    def warnings(self) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if " WARNING " in line or " ERROR " in line]

    async def close(self) -> None:
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                with contextlib.suppress(Exception):
                    self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if KEEP_LOGS_ON:
            KEEP_LOGS.append(self.log)
        else:
            self.log.unlink(missing_ok=True)


@dataclass
class Result:
    mode: str
    n: int
    error: str | None = None
    streams: int = 0  # published tracks
    cpu_share: float = math.nan  # server CPU seconds per second per stream
    sent: int = 0
    delivered: int = 0
    latencies: list[float] = field(default_factory=list)
    bursts_sent: int = 0
    spurious: int = 0
    generator_cores: float = math.nan
    agent_cores: float = math.nan
    busy_cores: float = math.nan
    other_cores: float = math.nan  # busy cores not used by the benchmark's processes
    max_gap_s: float = 0.0
    setup_s: float = math.nan  # server start to every peer joined and its media flowing
    overloaded: bool = False  # the server delivered < 98% of the frames: CPU/stream is capped, not a cost
    shed: int = -1  # media datagrams the server dropped unread because they were late (overload), in the window
    stale: int = -1  # participants' audio packets dropped undecoded, late on their sender's clock, in the window
    health_ms: list[float] = field(default_factory=list)  # GET /health round trips during the window
    paused_dropped: int = -1  # SRTP datagrams dropped on receipt because their sender was paused (overload), in the window
    paused_peers: int = -1  # senders paused at the end of the window
    server_cores: dict[str, float] = field(default_factory=dict)  # CPU of each server-side process, cores
    notes: list[str] = field(default_factory=list)

    def pct(self, q: float) -> float:
        return 1000 * float(np.percentile(self.latencies, q)) if self.latencies else math.nan


def match_bursts(
    bursts: list[tuple[float, int]], onsets: list[tuple[float, int]], t0: float, t1: float
) -> tuple[list[float], int, int]:
    """Latencies of the bursts sent in [t0, t1), how many were sent, and unexplained onsets.

    An onset is matched to the latest burst with the same id sent before it (ids repeat
    every 13 s); each burst is matched at most once.
    """
    by_id: dict[int, list[float]] = {}
    for at, burst_id in bursts:
        by_id.setdefault(burst_id, []).append(at)
    used: set[tuple[int, int]] = set()
    latencies: list[float] = []
    spurious = 0
    for at, burst_id in onsets:
        times = by_id.get(burst_id, [])
        k = bisect.bisect_right(times, at) - 1
        if burst_id < 0 or k < 0 or at - times[k] >= MATCH_WINDOW_S or (burst_id, k) in used:
            if t0 <= at < t1 + DRAIN_S:
                spurious += 1
            continue
        used.add((burst_id, k))
        if t0 <= times[k] < t1:
            latencies.append(at - times[k])
    return latencies, sum(1 for at, _ in bursts if t0 <= at < t1), spurious


@dataclass
class Deployment:
    """The shoal processes a run measures: one server, or the nodes of a cluster and its Redis."""

    servers: list[Any]  # shoal.testing.ServerProcess; the first is where rooms are created
    helpers: dict[str, int] = field(default_factory=dict)  # other server-side processes (Redis), by name
    on_stop: Callable[[], None] | None = None

    @property
    def entry(self) -> Any:
        return self.servers[0]

    def pids(self) -> dict[str, int]:
        """Every server-side process, named ``server…`` (their CPU is the server's CPU)."""
        names = {f"server{i}" if len(self.servers) > 1 else "server": s.process.pid for i, s in enumerate(self.servers)}
        return names | {f"server-{name}": pid for name, pid in self.helpers.items()}

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            if KEEP_LOGS_ON:
                KEEP_LOGS.append(server.log_path)
            else:
                server.log_path.unlink(missing_ok=True)
        if self.on_stop is not None:
            self.on_stop()


def start_single_server() -> Deployment:
    from shoal.testing import start_server

    return Deployment([start_server(shoal_args())])


START_SHOAL: Callable[[], Deployment] = start_single_server
"""How ``run`` starts shoal; ``benchmarks/cluster.py`` replaces it with a cluster of nodes."""


async def deployment_shed(deployment: Deployment) -> tuple[int, int, int, int]:
    """``server_shed`` summed over the deployment's shoal processes."""
    counts = await asyncio.gather(*(server_shed(server) for server in deployment.servers))
    return (
        sum(c[0] for c in counts), sum(c[1] for c in counts), sum(c[2] for c in counts), sum(c[3] for c in counts)
    )


async def server_shed(server: Any) -> tuple[int, int, int, int]:
    """What shoal dropped so far: media datagrams unread because its event loop was behind
    (``/rtc/stats``), participants' audio packets stale on their sender's clock (``/metrics``),
    SRTP dropped on receipt from paused senders, and how many senders are paused now."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {server.token}"}) as client:
        stats = (await client.get(f"{server.url}/rtc/stats")).json()
        shed = int(stats["overload_dropped"])
        admission = stats["admission"]
        text = (await client.get(f"{server.url}/metrics")).text
    stale = sum(
        int(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "shoal_dropped_total" and sample.labels == {"where": "participant_audio", "reason": "stale"}
    )
    return shed, stale, int(admission["shed_dropped"]), int(admission["paused"])


async def probe_health(url: str | None, until: float, out: list[float]) -> None:
    """GET /health five times a second until ``until``; round trips in ms (an overloaded server answers late)."""
    if url is None:
        return
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        while time.monotonic() < until:
            start = time.monotonic()
            await client.get(f"{url}/health")
            out.append(1000 * (time.monotonic() - start))
            await asyncio.sleep(0.2)


def snapshot(pids: dict[str, int]) -> dict[str, float]:
    values = {name: cpu_seconds(pid) for name, pid in pids.items()}
    values["machine"] = machine_busy_seconds()
    values["wall"] = time.monotonic()
    return values


async def run(mode: str, n: int, seconds: float, warmup: float) -> Result:
    from shoal.testing.server import free_port

    result = Result(mode, n)
    started = time.monotonic()
    deployment: Deployment | None = None
    children: list[Child] = []
    try:
        if mode == "shoal":
            deployment = await asyncio.to_thread(START_SHOAL)
            entry = deployment.entry
            receiver = await Child.start("agents", "agents", "--url", entry.url, "--token", entry.token, "--n", str(n))
            children.append(receiver)
            ready = await receiver.expect("ready", 60 + n)
            tokens: list[str] = ready["tokens"]
            ws_urls: list[str] = ready["ws_urls"]
            server_pids = deployment.pids()
        else:
            port = free_port()
            receiver = await Child.start("baseline", "baseline", "--port", str(port))
            children.append(receiver)
            await receiver.expect("ready", 30)
            tokens = [f"baseline-{i}" for i in range(n)]
            ws_urls = [f"ws://127.0.0.1:{port}"] * n
            server_pids = {"server": receiver.pid}
        if PIN is not None:
            for pid in server_pids.values():
                pin_process(pid, PIN[0])

        generators: list[Child] = []
        count = math.ceil(n / PEERS_PER_GENERATOR)
        for g in range(count):
            child = await Child.start(f"peers{g}", "peers")
            children.append(child)
            generators.append(child)
            await child.send(cmd="start", ws_urls=ws_urls[g::count], tokens=tokens[g::count])
        readies = await asyncio.gather(*(g.expect("ready", 60 + 3 * n) for g in generators))
        result.streams = sum(r["tracks"] for r in readies)
        failed = sum(r["failed"] for r in readies)
        if failed:
            result.notes.append(f"{failed} peers failed to join/publish: {readies[0]['errors'] or readies[-1]['errors']}")

        for child in generators:  # everyone has joined: start the media
            await child.send(cmd="go")
        deadline = time.monotonic() + 30  # until media of every published track reaches the receiver
        while True:
            await receiver.send(cmd="status")
            seen = (await receiver.expect("status", 30))["tracks"]
            if seen >= result.streams or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        if seen < result.streams:
            result.notes.append(f"media of only {seen}/{result.streams} tracks reached the receiver before the window")
        result.setup_s = time.monotonic() - started

        await asyncio.sleep(warmup)
        t0 = time.monotonic() + 0.5
        t1 = t0 + seconds
        for child in children:
            await child.send(cmd="window", t0=t0, t1=t1)
        pids = {**server_pids, "orchestrator": os.getpid(), **{g.name: g.pid for g in generators}}
        if mode == "shoal":
            pids["agents"] = receiver.pid
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        shed_before = await deployment_shed(deployment) if deployment is not None else (-1, -1, -1, -1)
        before = snapshot(pids)
        health_url = deployment.entry.url if deployment is not None else None
        probe = asyncio.create_task(probe_health(health_url, t1, result.health_ms))
        await asyncio.sleep(max(0.0, t1 - time.monotonic()))
        after = snapshot(pids)
        await probe
        if deployment is not None:
            shed_after = await deployment_shed(deployment)
            result.shed, result.stale = shed_after[0] - shed_before[0], shed_after[1] - shed_before[1]
            result.paused_dropped, result.paused_peers = shed_after[2] - shed_before[2], shed_after[3]
        await asyncio.sleep(DRAIN_S)
        for child in children:
            await child.send(cmd="stop")
        received = await receiver.expect("result", 60)
        sent_reports = await asyncio.gather(*(g.expect("result", 60) for g in generators))
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        for child in children:
            for line in child.warnings()[:3]:
                result.notes.append(f"{child.name} log: {line[:200]}")
        await asyncio.gather(*(child.close() for child in children), return_exceptions=True)
        if deployment is not None:
            await asyncio.to_thread(deployment.stop)

    wall = after["wall"] - before["wall"]
    busy = {name: (after[name] - before[name]) / wall for name in pids}
    busy["server"] = sum(busy[name] for name in server_pids)  # a cluster's nodes and Redis together
    result.server_cores = {name: busy[name] for name in server_pids}
    result.cpu_share = busy["server"] / max(result.streams, 1)
    result.generator_cores = sum(busy[g.name] for g in generators)
    result.agent_cores = busy.get("agents", math.nan)
    result.busy_cores = (after["machine"] - before["machine"]) / wall
    result.other_cores = result.busy_cores - sum(busy[name] for name in pids)
    for report in sent_reports:
        result.max_gap_s = max(result.max_gap_s, report["max_gap"])
        for track_id, sent in report["sent"].items():
            result.sent += sent
            result.delivered += received["frames"].get(track_id, 0)
            latencies, expected, spurious = match_bursts(
                [(at, b) for at, b in report["bursts"][track_id]],
                [(at, b) for at, b in received["onsets"].get(track_id, [])],
                t0, t1,
            )
            result.latencies += latencies
            result.bursts_sent += expected
            result.spurious += spurious
        states = [s for s in report["states"] if s != "connected"]
        if states:
            result.notes.append(f"peer connections not connected at the end: {sorted(set(states))} x{len(states)}")
        if report["consent_expired"]:
            result.notes.append(
                f"{report['consent_expired']} peers closed their connection: ICE consent expired "
                "(6 consent checks in a row, ~30 s, unanswered within 0.5 s by the lagging server)"
            )
    nominal = round(seconds / FRAME_S) * result.streams
    dropped = sum(report["consent_expired"] for report in sent_reports)
    if result.sent < 0.98 * nominal:
        why = "peers that hung up stopped sending" if dropped else "the generators fell behind"
        result.notes.append(f"generators sent {result.sent} of {nominal} nominal packets ({why})")
    if result.max_gap_s > 0.1:
        result.notes.append(f"longest generator pause {1000 * result.max_gap_s:.0f} ms (> 100 ms re-anchors pacing)")
    short = dropped or (result.sent and abs(result.delivered - result.sent) > 0.01 * result.sent)
    if not short and result.latencies and result.pct(50) > LAGGING_P50_MS:
        result.overloaded = True
        result.notes.append(
            f"server overloaded: everything delivered, but a p50 latency of {result.pct(50):.0f} ms "
            f"(> {LAGGING_P50_MS} ms) means a growing backlog; it used {busy['server']:.2f} cores"
        )
    if short:
        result.overloaded = True
        per_delivered = 100 * busy["server"] / max(result.delivered / (seconds / FRAME_S), 1e-9)
        share = result.delivered / max(result.sent, 1)
        backlog = " (more than sent: a backlog from before the window)" if share > 1 else ""
        result.notes.append(
            f"server overloaded: delivered {100 * share:.0f}% of the frames sent in the window{backlog}; "
            f"it used {busy['server']:.2f} cores, "
            f"{per_delivered:.2f}% per delivered stream; bursts still queued {DRAIN_S:g} s after the window are "
            "missing, so latency is understated"
        )
        if result.paused_peers > 0 and result.n > result.paused_peers:
            read = result.n - result.paused_peers
            whole = result.delivered / max(result.sent * read / result.n, 1)
            result.notes.append(
                f"{result.paused_peers} of {result.n} senders paused at the window's end; the {read} read got "
                f"about {100 * whole:.0f}% of their frames"
            )
    if result.spurious:
        result.notes.append(f"{result.spurious} burst onsets matched no burst")
    return result


def fmt_cores(value: float) -> str:
    return "    -" if math.isnan(value) else f"{value:>5.2f}"


def print_header(mode: str) -> None:
    print()
    print(f"{mode}:")
    agents = "  agents" if mode == "shoal" else ""
    shoal_only = f" {'shed':>6} {'stale':>6} {'paused':>11} {'health max ms':>13}" if mode == "shoal" else ""
    print(
        f"{'peers':>5} {'CPU/stream':>10} {'streams/core':>12} {'delivered/sent':>15} {'bursts':>11} "
        f"{'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7}{shoal_only} {'gens':>5}{agents} {'busy':>5} "
        f"{'other':>5} {'setup s':>7}",
        flush=True,
    )


def print_row(r: Result) -> None:
    if r.error is not None:
        lines = r.error.strip().splitlines() or [""]
        print(f"{r.n:>5} failed: {lines[0]}" + (f" ... {lines[-1]}" if len(lines) > 1 else ""), flush=True)
    else:
        pct = 100 * r.cpu_share
        per_core = 1 / r.cpu_share if r.cpu_share > 0 else math.inf
        lat_max = 1000 * max(r.latencies) if r.latencies else math.nan
        agents = f" {fmt_cores(r.agent_cores):>7}" if r.mode == "shoal" else ""
        health = max(r.health_ms) if r.health_ms else math.nan
        paused = f"{r.paused_peers}p/{r.paused_dropped}"
        shoal_only = f" {r.shed:>6} {r.stale:>6} {paused:>11} {health:>13.1f}" if r.mode == "shoal" else ""
        print(
            f"{r.n:>5} {pct:>9.2f}% {per_core:>12.0f} {r.delivered:>7}/{r.sent:<7} "
            f"{len(r.latencies):>5}/{r.bursts_sent:<5} {r.pct(50):>7.1f} {r.pct(90):>7.1f} {r.pct(99):>7.1f} "
            f"{lat_max:>7.1f}{shoal_only} {fmt_cores(r.generator_cores)}{agents} {fmt_cores(r.busy_cores)} {fmt_cores(r.other_cores)} {r.setup_s:>7.1f}",
            flush=True,
        )
    for note in r.notes:
        print(f"      note: {note}", flush=True)


async def orchestrate(peers: list[int], seconds: float, warmup: float, modes: list[str]) -> None:
    print(f"machine: {machine()}")
    print(
        f"each peer: a WebRTCPeer alone in a room, publishing looped pre-encoded Opus (48 kHz mono, 20 ms, 32 kb/s); "
        f"shoal rooms also hold one agent taking 16 kHz pcm16; {seconds:g} s measured after {warmup:g} s warm-up; "
        f"{PEERS_PER_GENERATOR} peers per generator process"
    )
    print(
        "latency: packet handed to aiortc by the generator (= its arrival at the server, on loopback) -> the frame "
        "holding it reaches the agent process (shoal) / is decoded by aiortc (baseline); bursts matched by frequency"
    )
    print(f"server event loop: {'uvloop' if uvloop_factory() else 'asyncio'} for both (uvicorn picks uvloop when installed)")
    print(
        "CPU/stream: server process CPU / window / streams, % of one core; gens, agents: client processes, "
        "cores; busy: whole machine, cores; other: busy minus this benchmark's processes (about ±0.1)"
    )
    print(
        "shed: media datagrams shoal dropped unread in the window because they were over 100 ms late (overload); "
        "stale: audio packets dropped undecoded, over --participant-audio-max-delay late on the sender's clock; "
        "paused: senders paused at the window's end (p) / their SRTP datagrams dropped on receipt in the window "
        "(sustained overload keeps the oldest streams whole); "
        "health max ms: slowest GET /health of five a second during the window"
    )
    results: dict[str, dict[int, Result]] = {}
    for mode in modes:
        print_header(mode)
        results[mode] = {}
        for n in peers:
            r = await run(mode, n, seconds, warmup)
            results[mode][n] = r
            print_row(r)
    if len(modes) == 2:
        print()
        print("shoal / baseline:")
        print(f"{'peers':>5} {'CPU/stream':>10} {'p50 ms shoal/base (+diff)':>27} {'p99 ms shoal/base (+diff)':>27}")
        for n in peers:
            s, b = results["shoal"][n], results["baseline"][n]
            if s.error or b.error:
                print(f"{n:>5} {'-':>10}")
                continue
            ratio = s.cpu_share / b.cpu_share if b.cpu_share > 0 else math.nan
            cells = [f"{s.pct(q):6.1f} / {b.pct(q):6.1f} ({s.pct(q) - b.pct(q):+6.1f})" for q in (50, 99)]
            saturated = "  (overloaded: " + " and ".join(r.mode for r in (s, b) if r.overloaded) + ")" if s.overloaded or b.overloaded else ""
            print(f"{n:>5} {ratio:>9.2f}x {cells[0]:>27} {cells[1]:>27}{saturated}", flush=True)


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", default="1,10,50,100", help="comma-separated N values")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of streaming before the window")
    parser.add_argument("--only", choices=["shoal", "baseline"], help="run one server only")
    parser.add_argument("--baseline", action="store_true", help="same as --only baseline")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs and print their paths")
    parser.add_argument(
        "--pin-server",
        action="store_true",
        help="run the server (shoal, or the baseline's receiver) alone on the first CPU and every client on the "
        "others, so the load generators do not take the server's CPU",
    )
    parser.add_argument("--server-log-level", default="warning", help="shoal's --log-level (logs kept with --keep-logs)")
    parser.add_argument(
        "--server-args", default="",
        help="more arguments for shoal serve, e.g. \"--debug-media-cost-ms 0.2\" (a forced overload at fewer peers, "
        "so the overload is the server's and not the load generators' starving it)",
    )
    parser.add_argument("--role", choices=["agents", "peers", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    roles: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "agents": lambda: agents_role(args.url, args.token, args.n),
        "peers": generator_role,
        "baseline": lambda: baseline_role(args.port),
    }
    if args.role is not None:
        child_logging()
        # The baseline server runs on the loop uvicorn gives shoal (uvloop when installed), so the
        # comparison is between the servers' own work, not between event loops.
        factory = uvloop_factory() if args.role == "baseline" else None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(roles[args.role]())
        return
    modes = ["baseline"] if args.baseline else [args.only] if args.only else ["shoal", "baseline"]
    peers = [int(p) for p in args.peers.split(",") if p.strip()]
    global KEEP_LOGS_ON, SERVER_LOG_LEVEL, PIN, SERVER_EXTRA
    if args.pin_server:
        PIN = pin_server()
        print(
            f"pinned: server on CPU {sorted(PIN[0])}, clients on CPUs {sorted(PIN[1])}"
            if PIN else "pinned: not possible (one CPU)"
        )
    KEEP_LOGS_ON = args.keep_logs
    SERVER_LOG_LEVEL = args.server_log_level
    SERVER_EXTRA = shlex.split(args.server_args)
    asyncio.run(orchestrate(peers, args.seconds, args.warmup, modes))
    if KEEP_LOGS:
        print("logs: " + " ".join(str(p) for p in KEEP_LOGS))


if __name__ == "__main__":
    main()
