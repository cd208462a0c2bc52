"""Soak benchmark: N rooms of WebRTC participants and agents, both ways, for a chosen duration.

Each room (default 20) has PARTICIPANTS WebRTC participants (default 2,
``shoal.testing.WebRTCPeer``), each publishing a looped pre-encoded Opus track (30 s of
noise, every packet different, real time), which the server forwards to the other
participants; and one agent (the ``fishjam`` SDK) that hears every participant (16 kHz
PCM) and publishes a 16 kHz PCM tone, paced in real time in 20 ms chunks, that every
participant hears (the server plays it out and encodes it to Opus once per track). Every
INTERVAL s (default 30) it prints, for the interval:

* forward (participant → participant): RTP packets the publishers handed to their
  transports, against forwarded packets the other participants' receivers got; latency
  p50/p99 from the publisher's ``_send_rtp`` to the receiver's ``RTCRtpReceiver``, matched
  by a hash of the payload (both participants of a room share a process and its
  ``time.monotonic()``);
* to agents (participant → agent): 20 ms packets sent, against 20 ms of PCM received by
  the agents; backlog: per track, the audio its participant sent that its agent has not
  received yet (20 ms per packet; median and max over tracks), so a growing latency shows
  as a growing backlog (a sender's own stalls do not: they send less, and are owed less);
* from agents (agent → participant): 20 ms chunks the agents sent, times the participants
  per room, against RTP packets of the agent tracks the participants got; drift: arrival
  time minus RTP timestamp time since each stream's first packet (timestamps unwrapped;
  the server's timestamps follow its playout clock, so this is the server → participant
  path's latency change);
* the server's RSS and CPU (cores, from /proc) and the client processes' CPU.

A final summary gives RSS at the start (media flowing) and end, and delivery per direction
over the whole run, and says when the server was overloaded (its asyncio loop runs on one
core: past that, latency grows by seconds, deliveries fall and after ~30 s participants'
ICE consent expires). Counts are read from each process in turn, so an interval may show a
little over 100 %. Participants do not decode (their receivers' ``_handle_rtp_packet`` is
replaced by a recorder, as in ``sfu_forward.py``), so they send no NACKs and receiver
reports; on loopback nothing is lost unless a process falls behind. Clients run in child
processes (ROOMS_PER_PROCESS rooms of participants each, one process for all agents) so the
client side does not share one event loop.

Reused from ``webrtc_ingest.py``: /proc accounting (``cpu_seconds``, ``machine_busy_seconds``,
``machine``), child plumbing (``Child``, ``emit``, ``stdin_reader``, ``serve_commands``,
``Window``, ``child_logging``) and ``uvloop_factory``; from ``sfu_forward.py``: the noise
loop (``encode_audio``) and ``payload_hash``.

Run: ``.venv/bin/python benchmarks/soak.py [--duration 600] [--rooms 20] [--participants 2]
[--interval 30] [--rooms-per-process 5] [--keep-logs]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import webrtc_ingest as ingest
from sfu_forward import encode_audio, payload_hash
from webrtc_ingest import (
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

from shoal.media.seqnum import timestamp_unwrapper
from shoal.testing.rtp import rtp_payload

SCRIPT = str(Path(__file__).resolve())
AGENT_RATE = 16000
CHUNK_S = 0.02
CHUNK_SAMPLES = int(AGENT_RATE * CHUNK_S)
AGENT_TONE_HZ = 330.0
RETAIN_S = 10.0  # a sent payload's time is kept this long for matching (the noise loop repeats after 30 s)
JOIN_CONCURRENCY = 6
LATE_RESET_S = 0.1  # an agent sender this late restarts its pacing instead of bursting
LAGGING_P50_MS = 150.0  # a forwarded packet's p50 beyond this means a backlog (loopback: ~2 ms)
DRIFT_GROWTH_MS = 200.0  # backlog or drift growing more than this over a run means latency is piling up


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


# --------------------------------------------------------------------------------------------
# Role: agents — create the rooms, one agent each, the participants' tokens; hear and speak


async def agents_role(url: str, token: str, rooms: int, participants: int) -> None:
    from fishjam import AgentOptions, FishjamClient
    from fishjam.agent import OutgoingAudioTrackOptions
    from fishjam.api._options import AgentOutputOptions

    client = FishjamClient(url, token)
    agents, tokens = [], []
    for _ in range(rooms):
        room = await asyncio.to_thread(client.create_room)
        options = AgentOptions(output=AgentOutputOptions(audio_sample_rate=AGENT_RATE))
        agents.append(await asyncio.to_thread(client.create_agent, room.id, options))
        tokens.append([(await asyncio.to_thread(client.create_peer, room.id))[1] for _ in range(participants)])

    first: dict[str, float] = {}  # track id -> time of its first message
    samples: dict[str, int] = {}
    sent = [0]
    go = asyncio.Event()
    tracks: list[Any] = []
    sessions: list[Any] = []
    ready = asyncio.Semaphore(0)
    tone = np.round(6000 * np.sin(2 * np.pi * AGENT_TONE_HZ * np.arange(AGENT_RATE) / AGENT_RATE)).astype("<i2")
    chunks = [tone[i : i + CHUNK_SAMPLES].tobytes() for i in range(0, AGENT_RATE, CHUNK_SAMPLES)]

    async def run(agent: Any) -> None:
        async with agent.connect() as session:
            sessions.append(session)
            tracks.append(await session.add_track(OutgoingAudioTrackOptions(sample_rate=AGENT_RATE)))
            ready.release()
            async for message in session.receive():
                if not hasattr(message, "peer_id"):
                    continue
                track_id = message.track.id
                first.setdefault(track_id, time.monotonic())
                samples[track_id] = samples.get(track_id, 0) + len(message.data) // 2

    async def speak() -> None:
        """One pacer for every agent track: a 20 ms chunk each, on absolute deadlines."""
        await go.wait()
        anchor, n = time.monotonic(), 0
        while True:
            deadline = anchor + n * CHUNK_S
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -LATE_RESET_S:
                anchor, n = time.monotonic(), 0
            chunk = chunks[n % len(chunks)]
            for track in tuple(tracks):
                await track.send_chunk(chunk)
                sent[0] += 1
            n += 1

    def status() -> dict[str, Any]:
        return {"sent": sent[0], "received_frames": sum(samples.values()) / CHUNK_SAMPLES,
                "tracks": len(first), "per_track": {t: n / CHUNK_SAMPLES for t, n in samples.items()}}

    runners = [asyncio.create_task(run(agent)) for agent in agents]
    for _ in agents:
        await asyncio.wait_for(ready.acquire(), 60)
    emit("ready", tokens=tokens)
    speaker = asyncio.create_task(speak())
    reader = await stdin_reader()
    await serve_commands(reader, Window(), status, go)
    emit("result", **status())
    speaker.cancel()
    for session in sessions:
        with contextlib.suppress(Exception):
            await session.disconnect()
    await asyncio.wait(runners, timeout=10)


# --------------------------------------------------------------------------------------------
# Role: participants — the WebRTC participants of some rooms, sending and recording


@dataclass
class Participant:
    name: str
    peer: Any = None
    track_id: str = ""
    hooked_transport: int = 0  # id() of the transport whose _send_rtp records our packets
    sent: int = 0
    sent_at: dict[str, float] = field(default_factory=dict)  # payload hash -> send time
    order: deque[tuple[float, str]] = field(default_factory=deque)
    partners: list[Participant] = field(default_factory=list)
    forwarded: int = 0
    from_agent: int = 0
    agent_streams: dict[int, tuple[Any, float, int]] = field(default_factory=dict)  # ssrc -> (unwrapper, t0, ts0)
    drift_ms: dict[int, float] = field(default_factory=dict)

    def note_sent(self, data: bytes, at: float) -> None:
        self.sent += 1
        digest = payload_hash(rtp_payload(data))
        self.sent_at[digest] = at
        self.order.append((at, digest))
        while self.order and self.order[0][0] < at - RETAIN_S:
            _, old = self.order.popleft()
            if self.sent_at.get(old, math.inf) < at - RETAIN_S:
                del self.sent_at[old]


async def participants_role() -> None:
    from aiortc.rtp import RtpPacket, is_rtcp

    from shoal.testing import OpusPacketSource, WebRTCPeer

    reader = await stdin_reader()
    config = json.loads(await reader.readline())
    packets = encode_audio()
    go = asyncio.Event()
    latencies: list[float] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(JOIN_CONCURRENCY)
    everyone: list[Participant] = []
    hooked: set[int] = set()

    class GatedSource(OpusPacketSource):
        """Sends nothing until ``go``; every participant starts at its own place in the loop."""

        def __init__(self, offset: int) -> None:
            super().__init__(packets[offset:] + packets[:offset], loop=True)
            self._gated = True

        async def recv(self) -> Any:
            if self._gated:
                await go.wait()
                await asyncio.sleep(random.uniform(0, CHUNK_S))
                self._gated = False
            return await super().recv()

    def hook_sender(me: Participant) -> None:
        """Record the packets of our own track on the transport its sender uses now (a renegotiation
        that bundles may move it to another one: ``keep_hooking`` checks twice a second)."""
        transceiver = me.peer.local_tracks[me.track_id].transceiver
        transport = transceiver.sender.transport if transceiver is not None else None
        if transceiver is None or transport is None or id(transport) == me.hooked_transport:
            return  # not negotiated yet, or already hooked
        ssrc = transceiver.sender._ssrc
        me.hooked_transport = id(transport)
        original = transport._send_rtp

        async def send_rtp(data: bytes) -> None:
            if len(data) >= 12 and not is_rtcp(data) and int.from_bytes(data[8:12], "big") == ssrc:
                me.note_sent(data, time.monotonic())
            await original(data)

        setattr(transport, "_send_rtp", send_rtp)  # noqa: B010

    def hook_receivers(me: Participant) -> None:
        for transceiver in me.peer.pc.getTransceivers():
            receiver = transceiver.receiver
            if id(receiver) in hooked:
                continue
            hooked.add(id(receiver))

            async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
                at = time.monotonic()
                digest = payload_hash(packet.payload)
                for partner in me.partners:
                    sent_at = partner.sent_at.get(digest)
                    if sent_at is not None:
                        me.forwarded += 1
                        latencies.append(at - sent_at)
                        return
                me.from_agent += 1  # the agent's track (encoded by the server): no payload to match
                stream = me.agent_streams.get(packet.ssrc)
                if stream is None:
                    unwrapper = timestamp_unwrapper()
                    stream = me.agent_streams[packet.ssrc] = (unwrapper, at, unwrapper.unwrap(packet.timestamp))
                unwrapper, t0, ts0 = stream
                me.drift_ms[packet.ssrc] = 1000 * ((at - t0) - (unwrapper.unwrap(packet.timestamp) - ts0) / 48000)

            setattr(receiver, "_handle_rtp_packet", handle)  # noqa: B010

    async def start(room: list[Participant], tokens: list[str], index: int) -> None:
        for me, token in zip(room, tokens, strict=True):
            async with gate:
                try:
                    me.peer = await WebRTCPeer.join(
                        config["ws_url"], token, metadata={"name": me.name}, send_stats=False,
                        max_recording_s=0, timeout=60,
                    )
                    me.track_id = await me.peer.publish_audio(GatedSource(random.randrange(len(packets))), timeout=60)
                    hook_sender(me)
                except Exception as exc:
                    errors.append(f"{me.name}: {type(exc).__name__}: {exc}")

    rooms = []
    for r, tokens in enumerate(config["tokens"]):
        room = [Participant(f"room{config['first'] + r}-p{i}") for i in range(len(tokens))]
        for me in room:
            me.partners = [p for p in room if p is not me]
        rooms.append(room)
        everyone += room
    await asyncio.gather(*(start(room, tokens, r) for r, (room, tokens) in enumerate(zip(rooms, config["tokens"], strict=True))))

    async def keep_hooking() -> None:
        while True:
            for me in everyone:
                if me.peer is not None and me.peer.pc is not None and me.track_id:
                    hook_receivers(me)
                    hook_sender(me)
            await asyncio.sleep(0.5)

    hooker = asyncio.create_task(keep_hooking())
    emit("ready", failed=len(errors), errors=errors[:3])

    def status() -> dict[str, Any]:
        window = latencies[:]
        latencies.clear()
        drifts = [d for me in everyone for d in me.drift_ms.values()]
        states = [me.peer.pc.connectionState if me.peer is not None and me.peer.pc is not None else "gone" for me in everyone]
        return {
            "sent": sum(me.sent for me in everyone),
            "forwarded": sum(me.forwarded for me in everyone),
            "from_agent": sum(me.from_agent for me in everyone),
            "latency_ms": [1000 * percentile(window, 50), 1000 * percentile(window, 99), len(window)],
            "drift_ms": [median(drifts), max(drifts, default=math.nan)],
            "not_connected": sum(1 for s in states if s != "connected"),
            "per_track": {me.track_id: me.sent for me in everyone},
        }

    await serve_commands(reader, Window(), status, go)
    emit("result", **status())
    hooker.cancel()
    closing = [asyncio.create_task(me.peer.close()) for me in everyone if me.peer is not None]
    if closing:
        await asyncio.wait(closing, timeout=20)


# --------------------------------------------------------------------------------------------
# The orchestrator


class Child(ingest.Child):
    """A role of this script as a subprocess."""

    @classmethod
    async def start(cls, name: str, *args: str) -> Child:
        fd, path = tempfile.mkstemp(prefix=f"shoal-soak-{name}-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, SCRIPT, "--role", *args,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log, limit=1 << 26,
            )
        return cls(name, proc, Path(path))


@dataclass
class Totals:
    forward_sent: int = 0
    forward_received: int = 0
    agent_in_sent: int = 0
    agent_in_received: float = 0.0
    agent_out_sent: int = 0
    agent_out_received: int = 0


def ratio(received: float, expected: float) -> str:
    return f"{received:.0f}/{expected:.0f} ({100 * received / expected:.2f}%)" if expected else f"{received:.0f}/0"


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:+.0f}" if abs(value) < 1e5 else "huge"


async def orchestrate(duration: float, rooms: int, participants: int, interval: float, per_process: int) -> None:
    from shoal.testing import start_server

    print(f"machine: {machine()}; client event loops: {'uvloop' if uvloop_factory() else 'asyncio'}")
    print(
        f"soak: {rooms} rooms x ({participants} WebRTC participants publishing Opus, forwarded to each other; "
        f"1 agent hearing them at {AGENT_RATE} Hz and publishing a {AGENT_RATE} Hz PCM tone they hear), "
        f"{duration:g} s, a report every {interval:g} s; {per_process} rooms of participants per process",
        flush=True,
    )
    started = time.monotonic()
    server = await asyncio.to_thread(start_server, ["--log-level", "warning"])
    children: list[Child] = []
    try:
        agents = await Child.start("agents", "agents", "--url", server.url, "--token", server.token,
                                   "--rooms", str(rooms), "--participants", str(participants))
        children.append(agents)
        tokens: list[list[str]] = (await agents.expect("ready", 60 + 2 * rooms))["tokens"]
        groups: list[Child] = []
        for g, first in enumerate(range(0, rooms, per_process)):
            child = await Child.start(f"participants{g}", "participants")
            children.append(child)
            groups.append(child)
            await child.send(ws_url=server.ws_url, tokens=tokens[first : first + per_process], first=first)
        readies = await asyncio.gather(*(g.expect("ready", 120 + 5 * per_process * participants) for g in groups))
        failed = sum(r["failed"] for r in readies)
        if failed:
            print(f"note: {failed} participants failed to join: {[e for r in readies for e in r['errors']][:3]}")
        for child in children:
            await child.send(cmd="go")
        print(f"setup {time.monotonic() - started:.0f} s; media flowing", flush=True)
        await asyncio.sleep(min(5.0, interval))  # every track starts, every forwarder and agent starts

        pids = {"server": server.process.pid, **{c.name: c.pid for c in children}}

        async def poll() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, float]]:
            await agents.send(cmd="status")
            for child in groups:
                await child.send(cmd="status")
            agent_status = await agents.expect("status", 60)
            group_status = await asyncio.gather(*(g.expect("status", 60) for g in groups))
            cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
            cpu["machine"], cpu["wall"] = machine_busy_seconds(), time.monotonic()
            return agent_status, group_status, cpu

        def totals(agent_status: dict[str, Any], group_status: list[dict[str, Any]]) -> Totals:
            t = Totals()
            t.forward_sent = sum(s["sent"] for s in group_status) * (participants - 1)
            t.forward_received = sum(s["forwarded"] for s in group_status)
            t.agent_in_sent = sum(s["sent"] for s in group_status)
            t.agent_in_received = agent_status["received_frames"]
            t.agent_out_sent = agent_status["sent"] * participants
            t.agent_out_received = sum(s["from_agent"] for s in group_status)
            return t

        previous_agents, previous_groups, previous_cpu = await poll()
        base = previous = totals(previous_agents, previous_groups)
        rss_start = rss_mb(server.process.pid)
        print(f"t=   0 s  server RSS {rss_start:.0f} MB (start)", flush=True)
        t_start = time.monotonic()
        rss_track = [rss_start]
        trend: list[tuple[float, float, float]] = []  # per report: forward p50, to-agent backlog, from-agent drift
        peak_cores, most_disconnected = 0.0, 0
        while time.monotonic() - t_start < duration - 1e-6:
            await asyncio.sleep(min(interval, max(0.0, duration - (time.monotonic() - t_start))))
            agent_status, group_status, cpu = await poll()
            now = totals(agent_status, group_status)
            wall = cpu["wall"] - previous_cpu["wall"]
            server_cores = (cpu["server"] - previous_cpu["server"]) / wall
            client_cores = sum(cpu[c.name] - previous_cpu[c.name] for c in children) / wall
            busy = (cpu["machine"] - previous_cpu["machine"]) / wall
            rss = rss_mb(server.process.pid)
            rss_track.append(rss)
            weights = [s["latency_ms"][2] for s in group_status]
            p50 = median([s["latency_ms"][0] for s, w in zip(group_status, weights, strict=True) if w])
            p99 = max((s["latency_ms"][1] for s, w in zip(group_status, weights, strict=True) if w), default=math.nan)
            out_drift = [s["drift_ms"] for s in group_status]
            owed = {t: n for s in group_status for t, n in s["per_track"].items()}
            backlogs = [CHUNK_S * 1000 * (owed[t] - got) for t, got in agent_status["per_track"].items() if t in owed]
            backlog = (median(backlogs), max(backlogs, default=math.nan))
            not_connected = sum(s["not_connected"] for s in group_status)
            trend.append((p50, backlog[0], median([d[0] for d in out_drift])))
            peak_cores, most_disconnected = max(peak_cores, server_cores), max(most_disconnected, not_connected)
            print(
                f"t={time.monotonic() - t_start:4.0f} s  "
                f"forward {ratio(now.forward_received - previous.forward_received, now.forward_sent - previous.forward_sent)} "
                f"lat p50 {p50:.1f} p99 {p99:.1f} ms | "
                f"to agents {ratio(now.agent_in_received - previous.agent_in_received, now.agent_in_sent - previous.agent_in_sent)} "
                f"backlog {ms(backlog[0])}/{ms(backlog[1])} ms | "
                f"from agents {ratio(now.agent_out_received - previous.agent_out_received, now.agent_out_sent - previous.agent_out_sent)} "
                f"drift {ms(median([d[0] for d in out_drift]))}/{ms(max((d[1] for d in out_drift), default=math.nan))} ms | "
                f"server RSS {rss:.0f} MB, {server_cores:.2f} cores; clients {client_cores:.2f}, machine {busy:.2f}"
                + (f" | {not_connected} participants not connected" if not_connected else ""),
                flush=True,
            )
            previous, previous_cpu = now, cpu
        final = previous
        print()
        print(f"summary after {time.monotonic() - t_start:.0f} s ({rooms} rooms, {rooms * participants} participants, {rooms} agents):")
        print(f"  server RSS: start {rss_start:.0f} MB, end {rss_track[-1]:.0f} MB, max {max(rss_track):.0f} MB")
        print(f"  forward (participant -> participant): {ratio(final.forward_received - base.forward_received, final.forward_sent - base.forward_sent)}")
        print(f"  to agents (participant -> agent):     {ratio(final.agent_in_received - base.agent_in_received, final.agent_in_sent - base.agent_in_sent)} (20 ms frames)")
        print(f"  from agents (agent -> participant):   {ratio(final.agent_out_received - base.agent_out_received, final.agent_out_sent - base.agent_out_sent)} (20 ms packets)")
        if trend:
            (p50_0, in_0, out_0), (p50_1, in_1, out_1) = trend[0], trend[-1]
            print(
                f"  over the run (first report -> last): forward latency p50 {p50_0:.1f} -> {p50_1:.1f} ms; "
                f"to-agent backlog {ms(in_0)} -> {ms(in_1)} ms; from-agent drift {ms(out_0)} -> {ms(out_1)} ms "
                "(medians over streams; a growing value is a growing latency)"
            )
        shares = [
            (final.forward_received - base.forward_received) / max(final.forward_sent - base.forward_sent, 1),
            (final.agent_in_received - base.agent_in_received) / max(final.agent_in_sent - base.agent_in_sent, 1),
            (final.agent_out_received - base.agent_out_received) / max(final.agent_out_sent - base.agent_out_sent, 1),
        ]
        lagging = [p for p, _, _ in trend if not math.isnan(p) and p > LAGGING_P50_MS]
        growing = [d for _, a, b in trend[-1:] for d in (a - trend[0][1], b - trend[0][2]) if d > DRIFT_GROWTH_MS]
        if min(shares) < 0.99 or lagging or growing or most_disconnected:
            what = []
            if min(shares) < 0.99:
                what.append(f"a direction delivered {100 * min(shares):.0f}%")
            if lagging:
                what.append(f"forward latency p50 up to {max(lagging):.0f} ms")
            if growing:
                what.append(f"latency (backlog or drift) grew {max(growing):.0f} ms")
            if most_disconnected:
                what.append(f"{most_disconnected} participants lost their connection")
            print(
                f"  OVERLOADED: {'; '.join(what)}. The server used up to {peak_cores:.2f} cores (its event loop "
                "runs on one; the machine's other work competes for the same cores): these figures show the "
                "overload, not a leak or a counter fault. Fewer --rooms measure a sustainable load."
            )
        for child in children:
            await child.send(cmd="stop")
        await asyncio.gather(*(c.expect("result", 60) for c in children), return_exceptions=True)
    finally:
        for child in children:
            for line in child.warnings()[:3]:
                print(f"  {child.name} log: {line[:200]}")
        await asyncio.gather(*(child.close() for child in children), return_exceptions=True)
        await asyncio.to_thread(server.stop)
        warnings = [line for line in server.log_text().splitlines() if "WARNING" in line or "ERROR" in line]
        if warnings:
            print(f"  server log: {len(warnings)} warnings/errors, the first: {warnings[0][:200]}")
        if ingest.KEEP_LOGS_ON:
            ingest.KEEP_LOGS.append(server.log_path)
        else:
            server.log_path.unlink(missing_ok=True)
    print(f"total time {time.monotonic() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of media after setup")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--participants", type=int, default=2, help="WebRTC participants per room (≥ 2)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between reports")
    parser.add_argument("--rooms-per-process", type=int, default=5, help="rooms of participants per client process")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs and print their paths")
    parser.add_argument("--role", choices=["agents", "participants"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.participants < 2:
        parser.error("--participants must be at least 2 (forwarding needs a listener)")
    roles: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "agents": lambda: agents_role(args.url, args.token, args.rooms, args.participants),
        "participants": participants_role,
    }
    if args.role is not None:
        child_logging()
        with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
            runner.run(roles[args.role]())
        return
    ingest.KEEP_LOGS_ON = args.keep_logs
    asyncio.run(orchestrate(args.duration, args.rooms, args.participants, args.interval, args.rooms_per_process))
    if ingest.KEEP_LOGS:
        print("logs: " + " ".join(str(p) for p in ingest.KEEP_LOGS))


if __name__ == "__main__":
    main()
