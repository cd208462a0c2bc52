"""Participants' audio for agents through the fast path (``shoal.media.fast_audio``), on real servers.

A participant heard only by an agent has its packets taken in the datagram callback; once a
WebRTC participant subscribes (forwarding needs aiortc's packets) they go aiortc's way again
— and the agent's audio is the participant's tone at its own rate throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from shoal.testing import ToneSource, WebRTCPeer
from tests.shoal.test_metrics import scrape, value
from tests.support.agent_client import RawAgent, create_room
from tests.support.audio import dominant_frequency, rms
from tests.support.peers import heard, join
from tests.support.server import ServerProcess, start_server


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """A server of this module's own: the counters' deltas must move with this module's traffic only."""
    proc = start_server()
    try:
        yield proc
    finally:
        proc.stop()


def agent_audio(agent: RawAgent, track: str, seconds: float, rate: int) -> np.ndarray:
    chunks = agent.received[track].chunks
    audio = np.frombuffer(b"".join(chunks), dtype="<i2")
    return audio[-int(seconds * rate) :]


def counts(server: ServerProcess) -> tuple[float, float]:
    samples = scrape(server)
    return value(samples, "shoal_rtp_packets_fast_path_total"), value(samples, "shoal_rtp_packets_received_total")


@dataclass
class Window:
    fast: float
    """Packets the fast path took in the window (the server's counter)."""
    received: float
    """RTP packets the server took from publishers in the window."""
    frames: int
    """Frames of the track the agent received in the window."""


async def window(server: ServerProcess, agent: RawAgent, track: str, seconds: float = 2.0) -> Window:
    fast_before, received_before = counts(server)
    frames_before = len(agent.received[track].chunks)
    await asyncio.sleep(seconds)
    fast_after, received_after = counts(server)
    return Window(fast_after - fast_before, received_after - received_before,
                  len(agent.received[track].chunks) - frames_before)


def assert_hears_the_tone(agent: RawAgent, track: str) -> None:
    audio = agent_audio(agent, track, 1.0, 24000)
    assert abs(dominant_frequency(audio, 24000) - 440) < 5 and rms(audio) > 1000


async def test_an_agent_only_track_takes_the_fast_path_until_a_participant_subscribes(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room, rate=24000)
    alice = await join(server, room, "alice")
    peers.append(alice)
    track = await alice.publish_audio(ToneSource(440))
    await agent.wait_samples(track, 24000 * 2, timeout=15)
    alone = await window(server, agent, track)
    assert alone.frames >= 80, f"the agent got {alone.frames} frames in 2 s"
    assert alone.fast >= 0.9 * alone.frames, f"{alone.fast} fast packets for {alone.frames} frames"
    assert_hears_the_tone(agent, track)

    bob = await join(server, room, "bob")  # auto mode: alice's track is forwarded to him
    peers.append(bob)
    remote = await bob.wait_for_remote_track(lambda t: t.track_id == track, timeout=15)
    frequency, level = await heard(remote)
    assert abs(frequency - 440) < 5 and level > 1000
    forwarded = await window(server, agent, track)
    assert forwarded.frames >= 80 and forwarded.received >= 80, "packets kept arriving while forwarded"
    assert forwarded.fast <= 2, "a forwarded track's packets go through aiortc (forwarders need them)"
    assert_hears_the_tone(agent, track)

    await bob.close()  # no forwarder left: back on the fast path
    await asyncio.sleep(1.0)
    again = await window(server, agent, track)
    assert again.fast >= 80
    await agent.close()


async def test_with_the_fast_path_off_every_packet_goes_through_aiortc_and_the_agent_hears_the_same(
    peers: list[WebRTCPeer],
) -> None:
    off = start_server(["--debug-no-fast-audio"])
    try:
        room = create_room(off)
        agent = await RawAgent.join(off, room, rate=16000)
        alice = await join(off, room, "alice")
        peers.append(alice)
        track = await alice.publish_audio(ToneSource(440))
        await agent.wait_samples(track, 16000 * 2, timeout=15)
        audio = agent_audio(agent, track, 1.0, 16000)
        assert abs(dominant_frequency(audio, 16000) - 440) < 5 and rms(audio) > 1000
        fast, received = counts(off)
        assert received >= 100 and fast == 0
        await agent.close()
    finally:
        off.stop()
