"""Agent-to-agent audio benchmark: CPU per track, delivery and playout latency.

For each N (default 1, 10, 50, 200) it starts a fresh shoal server and N rooms, each with
one sending agent and one receiving agent. Every sender publishes a 24 kHz pcm16 track
(as TTS engines produce) and sends SECONDS of audio in 1 s chunks as fast as it can;
every receiver takes 16 kHz (as speech-to-text wants), so each frame is paced, resampled
and wrapped on the server. It prints, per N:

* server CPU per track (% of one core) and the tracks one core could carry;
* frames delivered versus sent;
* latency percentiles from each frame's scheduled playout time (recorded by the server
  with ``--trace-playout``) to its arrival at the receiving agent's process. Both use the
  machine's monotonic clock, so the difference is the real delivery time.

Run: ``.venv/bin/python benchmarks/agent_audio.py [--tracks 1 10 50 200] [--seconds 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from fishjam._proto import agent_notifications_pb2 as A
from fishjam._proto.notifications import shared_pb2 as S
from shoal.testing import ServerProcess, start_server

IN_RATE, OUT_RATE, FRAME_S = 24000, 16000, 0.02
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line),
        platform.processor() or "unknown CPU",
    )
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


async def join(server: ServerProcess, http: httpx.AsyncClient, room: str, rate: int) -> tuple[str, ClientConnection]:
    body = {"type": "agent", "options": {"output": {"audioFormat": "pcm16", "audioSampleRate": rate}}}
    data = (await http.post(f"/room/{room}/peer", json=body)).json()["data"]
    ws = await connect(f"{server.ws_url}/socket/agent/websocket", max_size=None, ping_interval=None)
    await ws.send(A.AgentRequest(auth_request=A.AgentRequest.AuthRequest(token=data["token"])).SerializeToString())
    await ws.recv()
    return data["peer"]["id"], ws


class Tally:
    """Arrival times per track; ``done`` is set once ``target`` frames have arrived in all."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.count = 0
        self.target = 0
        self.done = asyncio.Event()

    def add(self, track: str, at: float) -> None:
        self.arrivals[track].append(at)
        self.count += 1
        if self.target and self.count >= self.target:
            self.done.set()


async def receive(ws: ClientConnection, tally: Tally) -> None:
    message = A.AgentResponse()
    async for frame in ws:
        now = time.monotonic()
        message.ParseFromString(frame)  # type: ignore[arg-type]
        tally.add(message.track_data.track.id, now)


def read_trace(path: Path) -> dict[str, list[float]]:
    """Scheduled playout times per track, in frame order, from the server's trace file."""
    scheduled: dict[str, list[float]] = defaultdict(list)
    for line in path.read_text().splitlines():
        track, _index, at = line.split()
        scheduled[track].append(float(at))
    path.unlink()
    return scheduled


async def run(n: int, seconds: float) -> dict[str, float]:
    trace = Path(tempfile.mkstemp(prefix="shoal-trace-")[1])
    server = start_server(["--trace-playout", str(trace), "--log-level", "warning"])
    http = httpx.AsyncClient(base_url=server.url, headers={"authorization": f"Bearer {server.token}"}, timeout=30)
    tally = Tally()
    senders: list[tuple[ClientConnection, str]] = []
    readers: list[asyncio.Task[None]] = []
    sockets: list[ClientConnection] = []
    try:
        for _ in range(n):
            room = (await http.post("/room", json={})).json()["data"]["room"]["id"]
            _, sender = await join(server, http, room, OUT_RATE)
            _, receiver = await join(server, http, room, OUT_RATE)
            sockets += [sender, receiver]
            readers.append(asyncio.create_task(receive(receiver, tally)))
            track = uuid.uuid4().hex
            params = A.AgentRequest.AddTrack.CodecParameters(encoding=S.TRACK_ENCODING_PCM16, sample_rate=IN_RATE, channels=1)
            add = A.AgentRequest.AddTrack(track=S.Track(id=track, type=S.TRACK_TYPE_AUDIO, metadata="null"), codec_params=params)
            await sender.send(A.AgentRequest(add_track=add).SerializeToString())
            senders.append((sender, track))
        t = np.arange(IN_RATE) / IN_RATE
        second = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
        cpu_before, wall_before = cpu_seconds(server.process.pid), time.monotonic()
        for _ in range(int(seconds)):
            for ws, track in senders:
                data = A.AgentRequest.TrackData(track_id=track, data=second)
                await ws.send(A.AgentRequest(track_data=data).SerializeToString())
        expected = int(round(seconds / FRAME_S))
        tally.target = expected * n
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.done.wait(), seconds + 10)
        wall = time.monotonic() - wall_before
        cpu = cpu_seconds(server.process.pid) - cpu_before
    finally:
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
        await http.aclose()
        server.stop()

    scheduled = read_trace(trace)
    arrivals = tally.arrivals
    latencies = np.array(
        [arrived - planned for track, times in arrivals.items() for arrived, planned in zip(times, scheduled[track], strict=False)]
    )
    delivered = sum(len(v) for v in arrivals.values())
    cpu_share = cpu / wall / n
    return {
        "tracks": n,
        "cpu_pct_per_track": 100 * cpu_share,
        "tracks_per_core": 1 / cpu_share if cpu_share else float("inf"),
        "frames_sent": expected * n,
        "frames_delivered": delivered,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p90_ms": 1000 * float(np.percentile(latencies, 90)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "max_ms": 1000 * float(latencies.max()),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, nargs="+", default=[1, 10, 50, 200])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"each track: {args.seconds:g} s of 24 kHz pcm16 sent in 1 s chunks, received at 16 kHz by another agent")
    print(
        f"{'tracks':>6} {'CPU/track':>10} {'tracks/core':>11} {'delivered/sent':>16} "
        f"{'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    )
    for n in args.tracks:
        r = await run(n, args.seconds)
        print(
            f"{n:>6} {r['cpu_pct_per_track']:>9.2f}% {r['tracks_per_core']:>11.0f} "
            f"{int(r['frames_delivered']):>7}/{int(r['frames_sent']):<8} "
            f"{r['p50_ms']:>7.2f} {r['p90_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['max_ms']:>7.2f}",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
