"""SFU forwarding benchmark: one publisher, N receivers, CPU per forwarded stream and added latency.

For each N (default 1, 10, 50) it starts a fresh server and one room (``videoCodec: vp8``)
with N+1 WebRTC participants (``shoal.testing.WebRTCPeer``): one publisher of an Opus audio
track and a VP8 video track, and N receivers, which the room subscribes to both tracks. The
server forwards the publisher's RTP to every receiver (``shoal.media.forward``): it decodes
nothing (no agents listen, no image is captured) and encodes nothing. A forwarded stream is
one track to one receiver, so N receivers make 2·N streams. After the receivers all get both
tracks and a warm-up, it measures a window of SECONDS and prints, per N:

* server CPU per forwarded stream (% of one core, utime+stime of the server process from
  /proc over the window, divided by 2·N) and the streams one core could carry. The fixed cost
  of receiving the publisher's two tracks is included, which weighs on N=1 only; the
  "marginal" line divides the CPU difference between the smallest and the largest N by the
  difference in streams, which leaves it out;
* per kind, packets delivered against expected: every RTP packet the publisher sent in the
  window, once per receiver (the receivers never NACK, see below, so a loss stays lost);
* per kind, latency percentiles from the publisher handing an RTP packet to its DTLS
  transport (``_send_rtp``, before SRTP) to a receiver's aiortc handing that packet, SRTP
  decrypted and parsed, to its ``RTCRtpReceiver``. The server rewrites SSRC, sequence
  numbers and timestamps but forwards payloads byte for byte, so packets are matched by a
  64-bit hash of their payload: every payload is unique within the loop of the media (Opus
  noise, 30 s, checked at startup; VP8 payloads start with aiortc's 15-bit picture id,
  which wraps after 18 min). All processes read ``time.monotonic()``, the machine's
  CLOCK_MONOTONIC, so times compare across processes. Packets sent in the window are
  followed for DRAIN s after it; later ones count as lost;
* the same percentiles for a direct path, measured once: the same publisher and one
  receiver as two aiortc ``RTCPeerConnection``\\ s in one process, offer/answer in-process,
  no server. "added p50" is shoal's p50 minus the direct p50: the server's share, as far as
  percentiles subtract;
* CPU of the client processes (publisher, receivers) and of the whole machine, in cores:
  everything shares the machine's cores with the server. "other" is the busy time not
  spent in this benchmark's processes (other work on the host; ±0.1 from /proc accounting).

Load generation costs little: the media is encoded once at startup (Opus 32 kbit/s mono
white noise; VP8 640x360 at 30 fps, ~800 kbit/s, a keyframe every 2 s, with PyAV's libvpx)
and looped as pre-encoded ``av.Packet``\\ s, which aiortc's senders packetize without
encoding (``OpusPacketSource``; a local VP8 packet track here, paced by pts). Receivers do
not decode either: their receivers' ``_handle_rtp_packet`` is replaced by a recorder that
takes the arrival time and the payload hash and returns, so no jitter buffer, decoder,
receiver report or NACK runs. That is fine on loopback, where nothing is lost unless
someone falls behind, and it keeps the receivers' CPU to aiortc's socket, ICE and SRTP
path. A consequence: the server never gets a receiver's NACK or PLI, so it cannot repair
losses; a receiver starts on the next keyframe of the publisher's 2 s cadence (the
server's PLIs to the publisher find no encoder to obey them). Receivers run in child
processes of RECEIVERS_PER_PROCESS each, the publisher in its own; client processes run on
uvloop when installed (as uvicorn runs shoal).

Caveats: latency includes the client processes' own scheduling delays (a receiver's event
loop that is busy with the other receivers' packets), and the direct path's publisher and
receiver share one event loop. The server runs its asyncio loop on one core, so once it
needs more than one core it falls behind: latency grows, send queues overflow (the
forwarders' "dropped" counters) and deliveries fall. Such rows say so in their notes. The
server's per-forwarder counters (forwarded, retransmitted, dropped), logged at INFO when a
receiver leaves, are summed under each row.

Reused from ``webrtc_ingest.py`` (imported; this script's directory is on ``sys.path`` when
it runs): /proc accounting (``cpu_seconds``, ``machine_busy_seconds``, ``machine``), the
child-process plumbing (``Child``, ``emit``, ``stdin_reader``, ``serve_commands``,
``Window``, ``child_logging``, ``LogCounter``) and ``uvloop_factory``. The REST calls are a
few local lines (``tests/support/agent_client.py`` is not importable from here).

Run: ``.venv/bin/python benchmarks/sfu_forward.py [--receivers 1,10,50] [--seconds 10]
[--warmup 3] [--receivers-per-process 25] [--no-direct] [--keep-logs]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import hashlib
import json
import math
import os
import pickle
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import webrtc_ingest as ingest
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket, is_rtcp
from webrtc_ingest import (
    LogCounter,
    Window,
    child_logging,
    cpu_seconds,
    emit,
    machine,
    machine_busy_seconds,
    serve_commands,
    stdin_reader,
    uvloop_factory,
)

from shoal.media.opus import encode_opus
from shoal.testing.rtp import rtp_payload

KINDS = ("audio", "video")
SCRIPT = str(Path(__file__).resolve())

AUDIO_LOOP_S = 30  # Opus packets repeat after this; payloads must be unique within a window + drain
AUDIO_BITRATE = 32000
AUDIO_RATE = 48000
AUDIO_FRAME = 960

VIDEO_WIDTH, VIDEO_HEIGHT, VIDEO_FPS = 640, 360, 30
VIDEO_LOOP_S = 8  # a multiple of the keyframe interval: the loop seam lands on a keyframe
VIDEO_KEYFRAME_S = 2
VIDEO_BITRATE = 800_000
VIDEO_CLOCK = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
LATE_RESET_S = 0.1  # as shoal.testing.sources: a source this late restarts its pacing

DRAIN_S = 1.0  # packets sent in the window may arrive this long after it
JOIN_CONCURRENCY = 8
READY_TIMEOUT_S = 30.0  # receivers joined → every receiver gets both tracks (a keyframe every 2 s)
LAGGING_P50_MS = 50.0  # a forwarded packet's p50 beyond this means a backlog somewhere
FORWARDER_LINE = re.compile(
    r"forwarded (\d+) packets, retransmitted (\d+), dropped (\d+) \(queue full\), "
    r"(\d+) keyframe requests from the receiver, (\d+) packets skipped waiting for a keyframe"
)

TASK_EXCEPTION = re.compile(r"coro=<(?P<coro>[\w.]+)\(\).*exception=(?P<exception>.*)>$")
PAUSE_NOTE_S = 0.06  # a publisher's audio packets are 20 ms apart; a longer pause means a stalled process

SendRecord = list[tuple[str, float]]  # (payload hash, time.monotonic()) in order


def payload_hash(payload: bytes) -> str:
    """A process-independent 64-bit hash of an RTP payload (Python's ``hash`` is salted per process)."""
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


# --------------------------------------------------------------------------------------------
# Media, encoded once by the orchestrator and handed to the children in a pickle file


def encode_audio() -> list[bytes]:
    """AUDIO_LOOP_S of white noise as 20 ms Opus packets, all different."""
    rng = np.random.default_rng(7)
    samples = rng.normal(0, 3000, AUDIO_LOOP_S * AUDIO_RATE).clip(-32000, 32000).astype(np.int16)
    packets = encode_opus(samples, AUDIO_BITRATE)[: AUDIO_LOOP_S * AUDIO_RATE // AUDIO_FRAME]
    if len(set(packets)) != len(packets):
        raise RuntimeError("the Opus packets are not all different: latency matching needs them to be")
    return packets


def encode_video() -> list[bytes]:
    """VIDEO_LOOP_S of VP8 at 640x360@30, ~800 kbit/s, a keyframe every 2 s, starting on a keyframe.

    The picture is a smooth random texture panning diagonally with a little per-frame noise,
    which makes libvpx spend its bitrate as a camera would. One keyframe interval is encoded
    first and dropped, so the loop does not start with the rate control's oversized first frame.
    """
    gop = VIDEO_KEYFRAME_S * VIDEO_FPS
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height = VIDEO_WIDTH, VIDEO_HEIGHT
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, VIDEO_FPS)
    ctx.framerate = fractions.Fraction(VIDEO_FPS)
    ctx.bit_rate = VIDEO_BITRATE
    ctx.gop_size = gop
    ctx.options = {
        "deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
        "kf-min-dist": str(gop), "kf-max-dist": str(gop), "error-resilient": "1",
    }
    rng = np.random.default_rng(11)
    raw = rng.integers(0, 256, size=(2 * VIDEO_HEIGHT, 2 * VIDEO_WIDTH)).astype(np.float32)
    kernel = np.ones(16, dtype=np.float32) / 16
    raw = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="same"), 1, raw)
    raw = np.apply_along_axis(lambda col: np.convolve(col, kernel, mode="same"), 0, raw)
    texture = ((raw - raw.min()) / (raw.max() - raw.min()) * 200 + 20).astype(np.uint8)
    chroma = np.full((VIDEO_HEIGHT // 2, VIDEO_WIDTH), 128, dtype=np.uint8)
    packets: list[tuple[bytes, bool]] = []
    total = (VIDEO_LOOP_S + VIDEO_KEYFRAME_S) * VIDEO_FPS
    for index in range(total):
        x, y = (3 * index) % VIDEO_WIDTH, (2 * index) % VIDEO_HEIGHT
        luma = texture[y : y + VIDEO_HEIGHT, x : x + VIDEO_WIDTH] + rng.integers(0, 6, (VIDEO_HEIGHT, VIDEO_WIDTH), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
        frame.pts = index
        packets += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(frame)]
    packets += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None)]
    kept = packets[gop : total]
    if len(kept) != VIDEO_LOOP_S * VIDEO_FPS or not kept[0][1]:
        raise RuntimeError(f"libvpx gave {len(packets)} packets, the kept ones not starting on a keyframe")
    return [data for data, _ in kept]


@dataclass
class Media:
    audio: list[bytes]
    video: list[bytes]

    @property
    def video_kbps(self) -> float:
        return sum(len(p) for p in self.video) * 8 / VIDEO_LOOP_S / 1000

    @classmethod
    def load(cls, path: str) -> Media:
        with open(path, "rb") as file:
            audio, video = pickle.load(file)
        return cls(audio, video)

    def save(self) -> Path:
        fd, path = tempfile.mkstemp(prefix="shoal-sfu-media-", suffix=".pickle")
        with os.fdopen(fd, "wb") as file:
            pickle.dump((self.audio, self.video), file)
        return Path(path)


class Vp8PacketSource(MediaStreamTrack):
    """Pre-encoded VP8 frames, looped, paced in real time; aiortc's sender packetizes them as they are."""

    kind = "video"

    def __init__(self, frames: Sequence[bytes]) -> None:
        super().__init__()
        self._frames = list(frames)
        self._index = 0
        self._anchor: float | None = None

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        data = self._frames[self._index % len(self._frames)]
        pts = self._index * VIDEO_CLOCK // VIDEO_FPS
        self._index += 1
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = now - pts / VIDEO_CLOCK
        wait = self._anchor + pts / VIDEO_CLOCK - now
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -LATE_RESET_S:
            self._anchor = now - pts / VIDEO_CLOCK
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = VIDEO_TIME_BASE
        return packet


# --------------------------------------------------------------------------------------------
# Instruments: the publisher's sends, the receivers' arrivals


class SendLog:
    """Wraps a publisher connection's DTLS transport to record (hash, time) of its media packets."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.sent: dict[str, SendRecord] = {kind: [] for kind in KINDS}
        self.total: Counter[str] = Counter()
        self._kinds: dict[int, str] = {}  # media SSRC -> kind (RTX SSRCs are left out)
        self._wrapped: set[int] = set()

    def install(self, pc: RTCPeerConnection) -> None:
        """Hook the transport(s) of ``pc``'s senders; call again after a renegotiation."""
        for transceiver in pc.getTransceivers():
            sender = transceiver.sender
            self._kinds[sender._ssrc] = transceiver.kind
            transport = sender.transport
            if transport is None or id(transport) in self._wrapped:
                continue
            self._wrapped.add(id(transport))
            original = transport._send_rtp

            async def send_rtp(data: bytes, original: Callable[[bytes], Any] = original) -> None:
                if len(data) >= 12 and not is_rtcp(data):
                    at = time.monotonic()
                    kind = self._kinds.get(int.from_bytes(data[8:12], "big"))
                    if kind is not None:
                        self.total[kind] += 1
                        if self.window.holds(at):
                            self.sent[kind].append((payload_hash(rtp_payload(data)), at))
                await original(data)

            setattr(transport, "_send_rtp", send_rtp)  # noqa: B010 - instance override of aiortc's method


class ArrivalLog:
    """Replaces receivers' packet handling: records (hash, time) and drops the packet (no decoding)."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.arrivals: dict[str, SendRecord] = {kind: [] for kind in KINDS}
        self.total: Counter[str] = Counter()

    def install(self, pc: RTCPeerConnection, hooked: set[int]) -> None:
        for transceiver in pc.getTransceivers():
            receiver = transceiver.receiver
            if id(receiver) in hooked:
                continue
            hooked.add(id(receiver))
            kind = transceiver.kind

            async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int, kind: str = kind) -> None:
                at = time.monotonic()
                self.total[kind] += 1
                if self.window.holds(at):
                    self.arrivals[kind].append((payload_hash(packet.payload), at))

            setattr(receiver, "_handle_rtp_packet", handle_rtp_packet)  # noqa: B010

    @property
    def receiving(self) -> bool:
        return all(self.total[kind] for kind in KINDS)


def connection_state(peer: Any) -> str:
    if peer.pc is not None:
        return str(peer.pc.connectionState)
    return f"{peer.state} (socket {peer.close_code} {peer.close_reason!r})"


# --------------------------------------------------------------------------------------------
# Role: publisher — one WebRTCPeer publishing the looped audio and video


async def publisher_role() -> None:
    from shoal.testing import OpusPacketSource, WebRTCPeer

    reader = await stdin_reader()
    config = json.loads(await reader.readline())
    media = Media.load(config["media"])
    consent = LogCounter("aioice.ice", "Consent to send expired")
    window = Window()
    log = SendLog(window)
    peer = await WebRTCPeer.join(
        config["ws_url"], config["token"], metadata={"name": "publisher"}, send_stats=False, max_recording_s=0, timeout=30
    )
    audio = OpusPacketSource(media.audio, loop=True)
    video = Vp8PacketSource(media.video)
    tracks = {
        "audio": await peer.publish_audio(audio, timeout=30),
        "video": await peer.publish_video(video, timeout=30),
    }
    assert peer.pc is not None
    log.install(peer.pc)
    emit("ready", tracks=tracks)
    await serve_commands(reader, window, lambda: {"sent": dict(log.total)})
    emit("result", sent=log.sent, state=connection_state(peer), consent_expired=consent.count)
    await peer.leave()
    await peer.close()


# --------------------------------------------------------------------------------------------
# Role: receivers — WebRTCPeers that take both tracks and record every packet's arrival


async def receivers_role() -> None:
    from shoal.testing import WebRTCPeer

    reader = await stdin_reader()
    config = json.loads(await reader.readline())
    consent = LogCounter("aioice.ice", "Consent to send expired")
    window = Window()
    gate = asyncio.Semaphore(JOIN_CONCURRENCY)
    peers: list[WebRTCPeer] = []
    logs: list[ArrivalLog] = []
    errors: list[str] = []
    hooked: set[int] = set()

    async def start(index: int, token: str) -> None:
        async with gate:
            try:
                peer = await WebRTCPeer.join(
                    config["ws_url"], token, metadata={"name": f"receiver-{index}"},
                    send_stats=False, max_recording_s=0, timeout=60,
                )
            except Exception as exc:
                errors.append(f"join: {type(exc).__name__}: {exc}")
                return
            peers.append(peer)
            logs.append(ArrivalLog(window))

    async def hook_forever() -> None:
        """Hook each receiver as soon as its transceivers exist (the first offer creates them)."""
        while True:
            for peer, log in zip(peers, logs, strict=True):
                if peer.pc is not None:
                    log.install(peer.pc, hooked)
            await asyncio.sleep(0.01)

    hooker = asyncio.create_task(hook_forever())
    await asyncio.gather(*(start(config["first"] + i, t) for i, t in enumerate(config["tokens"])))
    emit("ready", joined=len(peers), errors=errors[:5], failed=len(errors))
    await serve_commands(reader, window, lambda: {"receiving": sum(log.receiving for log in logs)})
    hooker.cancel()
    emit(
        "result",
        arrivals=[log.arrivals for log in logs],
        states=[connection_state(peer) for peer in peers],
        consent_expired=consent.count,
    )

    async def leave(peer: WebRTCPeer) -> None:
        with contextlib.suppress(Exception):
            await peer.leave()
            await peer.close()

    closing = [asyncio.create_task(leave(peer)) for peer in peers]
    if closing:
        await asyncio.wait(closing, timeout=20)


# --------------------------------------------------------------------------------------------
# Role: direct — the same publisher and one receiver, two RTCPeerConnections in one process


async def direct_role() -> None:
    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCRtpSender

    from shoal.testing import OpusPacketSource

    reader = await stdin_reader()
    config = json.loads(await reader.readline())
    media = Media.load(config["media"])
    window = Window()
    sends, arrivals = SendLog(window), ArrivalLog(window)
    bundle = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    publisher, receiver = RTCPeerConnection(bundle), RTCPeerConnection(bundle)
    publisher.addTransceiver(OpusPacketSource(media.audio, loop=True), direction="sendonly")
    video = publisher.addTransceiver(Vp8PacketSource(media.video), direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.name in ("VP8", "rtx")])
    await publisher.setLocalDescription(await publisher.createOffer())
    await receiver.setRemoteDescription(publisher.localDescription)
    arrivals.install(receiver, set())
    await receiver.setLocalDescription(await receiver.createAnswer())
    await publisher.setRemoteDescription(receiver.localDescription)
    sends.install(publisher)
    emit("ready")
    await serve_commands(reader, window, lambda: {"receiving": int(arrivals.receiving)})
    emit("result", sent=sends.sent, arrivals=[arrivals.arrivals], states=[receiver.connectionState])
    await asyncio.gather(publisher.close(), receiver.close(), return_exceptions=True)


# --------------------------------------------------------------------------------------------
# The orchestrator


class Child(ingest.Child):
    """A role of this script as a subprocess (``webrtc_ingest.Child`` runs that script's roles)."""

    @classmethod
    async def start(cls, name: str, *args: str) -> Child:
        fd, path = tempfile.mkstemp(prefix=f"shoal-sfu-{name}-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, SCRIPT, "--role", *args,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log, limit=1 << 27,
            )
        return cls(name, proc, Path(path))

    def warnings(self) -> list[str]:
        """WARNING/ERROR lines of the child's log, counted once each, with the exception of unretrieved tasks."""
        lines = self.log.read_text(errors="replace").splitlines()
        found: Counter[str] = Counter()
        for i, line in enumerate(lines):
            if " WARNING " not in line and " ERROR " not in line:
                continue
            message = line.split(" ", 2)[2] if line.count(" ") >= 2 else line  # without the timestamp
            future = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("future:") else ""
            detail = TASK_EXCEPTION.search(future)
            if detail:
                message += f": {detail['coro']} raised {detail['exception']}"
            found[message] += 1
        return [f"{message} (x{count})" if count > 1 else message for message, count in found.items()]


@dataclass
class KindResult:
    latencies: list[float] = field(default_factory=list)  # seconds
    expected: int = 0
    delivered: int = 0
    duplicates: int = 0
    ambiguous: int = 0  # payload hashes sent twice in the window (left out)

    def pct(self, q: float) -> float:
        return 1000 * float(np.percentile(self.latencies, q)) if self.latencies else math.nan

    @property
    def max_ms(self) -> float:
        return 1000 * max(self.latencies) if self.latencies else math.nan


@dataclass
class Result:
    n: int
    error: str | None = None
    kinds: dict[str, KindResult] = field(default_factory=lambda: {kind: KindResult() for kind in KINDS})
    server_cores: float = math.nan
    client_cores: float = math.nan
    busy_cores: float = math.nan
    other_cores: float = math.nan
    setup_s: float = math.nan
    counters: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def streams(self) -> int:
        return 2 * self.n

    @property
    def cpu_share(self) -> float:
        """Server cores per forwarded stream."""
        return self.server_cores / self.streams if self.streams else math.nan


def match(sent: SendRecord, receivers: list[SendRecord], result: KindResult) -> None:
    """Latencies of the packets sent in the window, per receiver, matched by payload hash."""
    when: dict[str, float] = {}
    repeated: set[str] = set()
    for digest, at in sent:
        if digest in when:
            repeated.add(digest)
        when[digest] = at
    for digest in repeated:
        del when[digest]
    result.ambiguous += len(repeated)
    result.expected += len(when) * len(receivers)
    for arrivals in receivers:
        seen: set[str] = set()
        for digest, at in arrivals:
            sent_at = when.get(digest)
            if sent_at is None:
                continue  # sent before the window (or an ambiguous hash)
            if digest in seen:
                result.duplicates += 1
                continue
            seen.add(digest)
            result.delivered += 1
            result.latencies.append(at - sent_at)


def note_pause(audio_sends: SendRecord, result: Result) -> None:
    """Note a stall of the publisher's process: its audio packets are due every 20 ms."""
    times = [at for _, at in audio_sends]
    pause = float(np.diff(times).max()) if len(times) > 1 else 0.0
    if pause > PAUSE_NOTE_S:
        result.notes.append(
            f"the publisher's longest pause between audio packets was {1000 * pause:.0f} ms (20 ms nominal): "
            "its process stalled too, so latency spikes around then are likely the machine's (shared cores), "
            "not only the server's"
        )


def snapshot(pids: dict[str, int]) -> dict[str, float]:
    values = {name: cpu_seconds(pid) for name, pid in pids.items()}
    values["machine"] = machine_busy_seconds()
    values["wall"] = time.monotonic()
    return values


def rest(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)


def create_room_and_peers(url: str, token: str, count: int) -> list[str]:
    """A VP8 room with ``count`` WebRTC peers (auto-subscribing); their tokens."""
    with rest(url, token) as client:
        response = client.post("/room", json={"videoCodec": "vp8"})
        response.raise_for_status()
        room_id = response.json()["data"]["room"]["id"]
        tokens: list[str] = []
        for _ in range(count):
            response = client.post(f"/room/{room_id}/peer", json={"type": "webrtc", "options": {"subscribeMode": "auto"}})
            response.raise_for_status()
            tokens.append(response.json()["data"]["token"])
        return tokens


async def wait_receiving(children: list[Child], total: int, timeout: float) -> int:
    """Poll the children until ``total`` of their peers get media of both kinds (or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        for child in children:
            await child.send(cmd="status")
        seen = sum([(await child.expect("status", 30))["receiving"] for child in children])
        if seen >= total or time.monotonic() > deadline:
            return int(seen)
        await asyncio.sleep(0.2)


def server_log_summary(text: str, result: Result) -> None:
    for line in text.splitlines():
        found = FORWARDER_LINE.search(line)
        if found:
            result.counters["forwarders"] += 1
            for key, value in zip(("forwarded", "retransmitted", "dropped", "keyframe requests", "skipped for keyframe"), found.groups(), strict=True):
                result.counters[key] += int(value)
        elif " WARNING " in line or " ERROR " in line or "Traceback" in line:
            result.counters["warnings"] += 1
            if result.counters["warnings"] <= 3:
                result.notes.append(f"server log: {line[:220]}")


async def run_direct(media_path: Path, seconds: float, warmup: float) -> Result:
    result = Result(n=1)
    child = await Child.start("direct", "direct")
    try:
        await child.send(media=str(media_path))
        await child.expect("ready", 60)
        seen = await wait_receiving([child], 1, READY_TIMEOUT_S)
        if not seen:
            result.notes.append("the direct receiver did not get both tracks")
        await asyncio.sleep(warmup)
        t0 = time.monotonic() + 0.2
        t1 = t0 + seconds
        await child.send(cmd="window", t0=t0, t1=t1 + DRAIN_S)  # sends after t1 are left out below
        await asyncio.sleep(t1 + DRAIN_S + 0.2 - time.monotonic())
        await child.send(cmd="stop")
        report = await child.expect("result", 60)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        await child.close()
    for kind in KINDS:
        sent = [(d, at) for d, at in report["sent"][kind] if at < t1]
        match(sent, [arrivals[kind] for arrivals in report["arrivals"]], result.kinds[kind])
        if kind == "audio":
            note_pause(sent, result)
    return result


async def retire(child: Child, children: list[Child], result: Result) -> None:
    """Note the child's warnings and wait for it to exit (it closes its peers on the way)."""
    if child in children:
        children.remove(child)
        for line in child.warnings()[:3]:
            result.notes.append(f"{child.name} log: {line[:200]}")
        await child.close()


async def run(n: int, media_path: Path, seconds: float, warmup: float, per_process: int, keep_logs: bool) -> Result:
    from shoal.testing import ServerProcess, start_server

    result = Result(n)
    started = time.monotonic()
    server: ServerProcess | None = None
    children: list[Child] = []
    try:
        server = await asyncio.to_thread(start_server, ["--log-level", "info"])
        tokens = await asyncio.to_thread(create_room_and_peers, server.url, server.token, n + 1)
        publisher = await Child.start("publisher", "publisher")
        children.append(publisher)
        await publisher.send(ws_url=server.ws_url, token=tokens[0], media=str(media_path))
        await publisher.expect("ready", 60)

        receivers: list[Child] = []
        count = math.ceil(n / per_process)
        for g in range(count):
            share = tokens[1:][g * per_process : (g + 1) * per_process]
            child = await Child.start(f"receivers{g}", "receivers")
            children.append(child)
            receivers.append(child)
            await child.send(ws_url=server.ws_url, tokens=share, first=g * per_process)
        readies = await asyncio.gather(*(r.expect("ready", 60 + 2 * n) for r in receivers))
        failed = sum(r["failed"] for r in readies)
        if failed:
            errors = [e for r in readies for e in r["errors"]]
            result.notes.append(f"{failed} receivers failed to join: {errors[:2]}")
        seen = await wait_receiving(receivers, n - failed, READY_TIMEOUT_S)
        if seen < n:
            result.notes.append(f"only {seen}/{n} receivers got both tracks before the warm-up")
        result.setup_s = time.monotonic() - started

        await asyncio.sleep(warmup)
        t0 = time.monotonic() + 0.5
        t1 = t0 + seconds
        await publisher.send(cmd="window", t0=t0, t1=t1)
        for child in receivers:
            await child.send(cmd="window", t0=t0, t1=t1 + DRAIN_S)
        pids = {"server": server.process.pid, **{c.name: c.pid for c in children}}
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        before = snapshot(pids)
        await asyncio.sleep(max(0.0, t1 - time.monotonic()))
        after = snapshot(pids)
        await asyncio.sleep(DRAIN_S + 0.2)
        for child in receivers:
            await child.send(cmd="stop")
        received = await asyncio.gather(*(c.expect("result", 120) for c in receivers))
        # The receivers leave first (their forwarders log their counters), then the publisher.
        await asyncio.gather(*(retire(c, children, result) for c in receivers))
        await publisher.send(cmd="stop")
        sent = await publisher.expect("result", 60)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        await asyncio.gather(*(retire(c, children, result) for c in list(children)), return_exceptions=True)
        if server is not None:
            await asyncio.sleep(0.5)  # the last receivers' forwarders log their counters as they go
            await asyncio.to_thread(server.stop)
            server_log_summary(server.log_text(), result)
            if keep_logs:
                ingest.KEEP_LOGS.append(server.log_path)
            else:
                server.log_path.unlink(missing_ok=True)

    wall = after["wall"] - before["wall"]
    busy = {name: (after[name] - before[name]) / wall for name in pids}
    result.server_cores = busy["server"]
    result.client_cores = sum(v for name, v in busy.items() if name != "server")
    result.busy_cores = (after["machine"] - before["machine"]) / wall
    result.other_cores = result.busy_cores - sum(busy.values())
    for kind in KINDS:
        arrivals = [per_peer[kind] for report in received for per_peer in report["arrivals"]]
        match(sent["sent"][kind], arrivals, result.kinds[kind])

    states = Counter(s for report in received for s in report["states"] if s != "connected")
    if sent["state"] != "connected":
        states[f"publisher {sent['state']}"] += 1
    if states:
        result.notes.append(f"connections not connected at the end: {dict(states)}")
    consent = sent["consent_expired"] + sum(r["consent_expired"] for r in received)
    if consent:
        result.notes.append(f"{consent} connections closed: ICE consent expired (~30 s without answers)")
    note_pause(sent["sent"]["audio"], result)
    for kind, k in result.kinds.items():
        if k.duplicates or k.ambiguous:
            result.notes.append(f"{kind}: {k.duplicates} duplicate arrivals, {k.ambiguous} payloads sent twice (left out)")
    short = [kind for kind, k in result.kinds.items() if k.expected and k.delivered < 0.99 * k.expected]
    lagging = [kind for kind, k in result.kinds.items() if k.pct(50) > LAGGING_P50_MS]
    if short or lagging or result.server_cores > 0.9:
        what = []
        if short:
            what.append(f"{' and '.join(short)} delivered < 99%")
        if lagging:
            what.append(f"{' and '.join(lagging)} p50 > {LAGGING_P50_MS:g} ms")
        if result.server_cores > 0.9:
            what.append(f"the server used {result.server_cores:.2f} cores (its event loop runs on one)")
        client = " or the clients (they share the cores)" if result.busy_cores > 1.8 else ""
        result.notes.append(f"overloaded: {'; '.join(what)}: the server{client} fell behind, so CPU/stream is a floor")
    return result


def fmt(value: float, width: int = 6, digits: int = 1) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:>{width}.{digits}f}"


def print_cpu_header() -> None:
    print()
    print("server CPU (window):")
    print(
        f"{'N':>3} {'streams':>7} {'server':>7} {'CPU/stream':>10} {'streams/core':>12} "
        f"{'clients':>7} {'busy':>5} {'other':>5} {'setup s':>7}",
        flush=True,
    )


def print_cpu_row(r: Result) -> None:
    if r.error is not None:
        lines = r.error.strip().splitlines() or [""]
        print(f"{r.n:>3} failed: {lines[0]}" + (f" ... {lines[-1]}" if len(lines) > 1 else ""), flush=True)
    else:
        per_core = 1 / r.cpu_share if r.cpu_share > 0 else math.inf
        print(
            f"{r.n:>3} {r.streams:>7} {r.server_cores:>7.3f} {100 * r.cpu_share:>9.2f}% {per_core:>12.0f} "
            f"{r.client_cores:>7.2f} {r.busy_cores:>5.2f} {r.other_cores:>5.2f} {r.setup_s:>7.1f}",
            flush=True,
        )
    if r.counters:
        c = r.counters
        print(
            f"      server forwarders ({c['forwarders']} logged): forwarded {c['forwarded']}, "
            f"retransmitted {c['retransmitted']}, dropped {c['dropped']} (queue full), "
            f"{c['skipped for keyframe']} skipped waiting for a keyframe; {c['warnings']} warnings/errors in its log",
            flush=True,
        )
    for note in r.notes:
        print(f"      note: {note}", flush=True)


def print_latency(results: list[Result], direct: Result | None) -> None:
    print()
    print("latency, ms (publisher's transport → receiver's RTCRtpReceiver, SRTP decrypted):")
    print(
        f"{'path':>9} {'kind':>5} {'p50':>6} {'p90':>6} {'p99':>6} {'max':>6} {'added p50':>9} "
        f"{'delivered/expected':>19}",
    )
    rows: list[tuple[str, Result]] = ([("direct", direct)] if direct is not None else []) + [
        (f"N={r.n}", r) for r in results
    ]
    for name, r in rows:
        if r.error is not None:
            print(f"{name:>9} failed: {r.error.splitlines()[0] if r.error else ''}")
            continue
        for kind, k in r.kinds.items():
            base = direct.kinds[kind].pct(50) if direct is not None and direct.error is None and r is not direct else math.nan
            added = fmt(k.pct(50) - base, 9, 2) if not math.isnan(base) else f"{'':>9}"
            delivered = f"{k.delivered}/{k.expected}"
            print(
                f"{name:>9} {kind:>5} {fmt(k.pct(50))} {fmt(k.pct(90))} {fmt(k.pct(99))} {fmt(k.max_ms)} "
                f"{added} {delivered:>19}",
                flush=True,
            )
    if direct is not None:
        for note in direct.notes:
            print(f"      direct note: {note}")


async def orchestrate(ns: list[int], seconds: float, warmup: float, per_process: int, direct_too: bool, keep_logs: bool) -> None:
    started = time.monotonic()
    print(f"machine: {machine()}")
    encode_started = time.monotonic()
    media = Media(encode_audio(), encode_video())
    media_path = media.save()
    print(
        f"media (encoded once, {time.monotonic() - encode_started:.1f} s): Opus 48 kHz mono 20 ms "
        f"{AUDIO_BITRATE // 1000} kbit/s noise, {AUDIO_LOOP_S} s loop, 50 packets/s; VP8 {VIDEO_WIDTH}x{VIDEO_HEIGHT}@{VIDEO_FPS} "
        f"{media.video_kbps:.0f} kbit/s, keyframe every {VIDEO_KEYFRAME_S} s, {VIDEO_LOOP_S} s loop"
    )
    print(
        f"one room (videoCodec vp8): 1 publisher (audio + video) and N receivers, {per_process} receivers per "
        f"process; {seconds:g} s measured after {warmup:g} s warm-up, then {DRAIN_S:g} s for late packets; "
        f"client event loops: {'uvloop' if uvloop_factory() else 'asyncio'}"
    )
    print(
        "CPU/stream: server CPU / window / (2·N forwarded streams), % of one core; server, clients "
        "(publisher + receiver processes), busy (whole machine), other (busy minus this benchmark): cores"
    )
    direct: Result | None = None
    try:
        if direct_too:
            direct = await run_direct(media_path, seconds, warmup)
        print_cpu_header()
        results: list[Result] = []
        for n in ns:
            r = await run(n, media_path, seconds, warmup, per_process, keep_logs)
            results.append(r)
            print_cpu_row(r)
    finally:
        media_path.unlink(missing_ok=True)
    ok = [r for r in results if r.error is None]
    if len(ok) >= 2 and ok[-1].n != ok[0].n:
        low, high = ok[0], ok[-1]
        marginal = (high.server_cores - low.server_cores) / (high.streams - low.streams)
        print(
            f"marginal: {100 * marginal:.2f}% of a core per forwarded stream between N={low.n} and N={high.n} "
            f"({1 / marginal if marginal > 0 else math.inf:.0f} streams/core; the publisher's ingest left out)"
        )
    print_latency(results, direct)
    print(f"\ntotal time {time.monotonic() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receivers", default="1,10,50", help="comma-separated N values")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of streaming before the window")
    parser.add_argument("--receivers-per-process", type=int, default=25, help="receivers per client process")
    parser.add_argument("--no-direct", action="store_true", help="skip the direct (serverless) reference path")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs and print their paths")
    parser.add_argument("--role", choices=["publisher", "receivers", "direct"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seconds + DRAIN_S >= AUDIO_LOOP_S:
        parser.error(f"--seconds must be below {AUDIO_LOOP_S - DRAIN_S:g}: the audio loop would repeat payloads")
    roles: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "publisher": publisher_role,
        "receivers": receivers_role,
        "direct": direct_role,
    }
    if args.role is not None:
        child_logging()
        with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
            runner.run(roles[args.role]())
        return
    ingest.KEEP_LOGS_ON = args.keep_logs
    ns = [int(n) for n in args.receivers.split(",") if n.strip()]
    asyncio.run(orchestrate(ns, args.seconds, args.warmup, args.receivers_per_process, not args.no_direct, args.keep_logs))
    if ingest.KEEP_LOGS:
        print("logs: " + " ".join(str(p) for p in ingest.KEEP_LOGS))


if __name__ == "__main__":
    main()
