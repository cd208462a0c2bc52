"""Interruption latency: a participant speaks over a voice agent — how long until the agent's audio stops?

A fresh shoal server, a parrot agent as its own process (``examples/parrot.py``, the raw SDK,
and ``examples/pipecat_parrot.py``, the same behaviour as a Pipecat pipeline over
``fishjam.integrations.pipecat``; each gets its own server, one after the other), and one WebRTC participant
(``shoal.testing.WebRTCPeer``, aiortc with its default jitter buffer) in one room. Each round
the participant says a 660 Hz tone for 2 s and falls silent; the parrot repeats it; 0.3–0.9 s
into the repeat (as heard by the participant) the participant speaks again (880 Hz, 0.6 s).
Per round, from the moment the participant's first frame of that speech went out:

* **event**: until the parrot process got the server's ``VoiceActivity`` and sent its
  interrupt (its ``interrupted`` line: server VAD onset, 60 ms of speech, plus the socket);
* **stopped**: until the end of the repeat's last frame at the participant (its arrival plus
  its 20 ms): the event, and the server playing nothing more from its next 20 ms tick. The
  server's playout clock sends a frame every 20 ms, so the frame being played when the
  interrupt arrives is the last one. A browser adds its own jitter buffer (40–80 ms) before
  the person hears the silence; aiortc's receiver hands frames out as packets arrive.

Baseline, same run: **reply** — from the parrot sending its repeat to the repeat's first
frame coming out of the participant's receiver: the delay before any reply is heard
(packetization, the socket, the participant's jitter buffer filling).

Every process reads ``time.monotonic()`` (CLOCK_MONOTONIC), so times compare across them.

Run: ``.venv/bin/python benchmarks/interruption.py [--rounds 20] [--agents parrot.py,pipecat_parrot.py]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
from pathlib import Path

import httpx
import numpy as np

from shoal.testing import RemoteTrack, WebRTCPeer, start_server
from shoal.testing.talker import AgentProgram, Talker, heard_spans

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FRAME_S = 0.02


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line),
        platform.processor() or "unknown CPU",
    )
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


async def wait_until_heard(track: RemoteTrack, freq: float, since: float, timeout: float = 10.0) -> tuple[float, float]:
    for _ in range(int(timeout / 0.02)):
        spans = heard_spans(track.recording, freq, since=since)
        if spans:
            return spans[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{freq} Hz never reached the participant")


async def run(rounds: int, script: Path) -> dict[str, list[float]]:
    rng = random.Random(5)
    server = await asyncio.to_thread(start_server, [])
    parrot: AgentProgram | None = None
    participant: WebRTCPeer | None = None
    event_ms: list[float] = []
    stopped_ms: list[float] = []
    path_ms: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, headers={"authorization": f"Bearer {server.token}"}) as rest:
            room = (await rest.post("/room", json={})).json()["data"]["room"]["id"]
            peer = (await rest.post(f"/room/{room}/peer", json={"type": "webrtc", "options": {}})).json()["data"]
        parrot = AgentProgram(script, "--url", server.url, "--token", server.token, "--room", room)
        ready = await parrot.wait_for("ready")
        participant = await WebRTCPeer.join(server.ws_url, peer["token"], metadata={"name": "talker"})
        talker = Talker()
        await participant.publish_audio(talker.source)
        reply = await participant.wait_for_remote_track(
            lambda t: t.track_id.endswith(ready["track_id"]), timeout=15, ready=False  # silent until it repeats
        )
        await asyncio.sleep(1.0)
        for index in range(rounds):
            said = talker.say(660, 2.0)
            repeating = await parrot.wait_for("repeating", count=2 * index + 1)
            assert said.started is not None
            await wait_until_heard(reply, 660, since=said.started)
            first = next(at for at, _ in reply.recording.timed_frames() if at > repeating["t"])
            path_ms.append(1000 * (first - repeating["t"]))
            await asyncio.sleep(rng.uniform(0.3, 0.9))
            barge = talker.say(880, 0.6)
            interrupted = await parrot.wait_for("interrupted", count=index + 1)
            await asyncio.sleep(1.0)
            spans = heard_spans(reply.recording, 660, since=said.started)
            assert barge.started is not None and spans
            event_ms.append(1000 * (interrupted["t"] - barge.started))
            stopped_ms.append(1000 * (spans[-1][1] + FRAME_S - barge.started))  # the last frame ends 20 ms after it arrives
            await parrot.wait_for("repeating", count=2 * index + 2)  # the parrot repeats the barge-in; let it finish
            await asyncio.sleep(1.5)
            print(f"{script.name} round {index + 1:>2}: event {event_ms[-1]:6.1f} ms, stopped {stopped_ms[-1]:6.1f} ms, "
                  f"reply {path_ms[-1]:6.1f} ms", flush=True)
    finally:
        if participant is not None:
            await participant.close()
        if parrot is not None:
            parrot.stop()
        await asyncio.to_thread(server.stop)

    return {
        "event (speech -> agent interrupts)": event_ms,
        "stopped (speech -> repeat silent)": stopped_ms,
        "reply (agent sends -> first frame)": path_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--agents", default="parrot.py,pipecat_parrot.py", help="example programs to measure, in order")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    results = {name: asyncio.run(run(args.rounds, EXAMPLES / name)) for name in args.agents.split(",")}
    for name, figures in results.items():
        print()
        print(f"{name:>34} {'p50':>7} {'p90':>7} {'max':>7}   (ms, {args.rounds} rounds)")
        for figure, values in figures.items():
            v = np.array(values)
            print(f"{figure:>34} {np.percentile(v, 50):7.1f} {np.percentile(v, 90):7.1f} {v.max():7.1f}")


if __name__ == "__main__":
    main()
