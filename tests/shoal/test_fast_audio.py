"""Participants' audio for agents through the fast path (``shoal.media.fast_audio``), on real servers.

A participant heard only by an agent has its packets taken in the datagram callback; once a
WebRTC participant subscribes (forwarding needs aiortc's packets) they go aiortc's way again
— and the agent's audio is the participant's tone at its own rate throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

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


async def test_an_agent_only_track_takes_the_fast_path_until_a_participant_subscribes(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room, rate=24000)
    alice = await join(server, room, "alice")
    peers.append(alice)
    track = await alice.publish_audio(ToneSource(440))
    await agent.wait_samples(track, 24000 * 2, timeout=15)
    fast_before, received_before = counts(server)
    frames_before = len(agent.received[track].chunks)
    await asyncio.sleep(2.0)
    fast_after, received_after = counts(server)
    frames = len(agent.received[track].chunks) - frames_before
    assert frames >= 80, f"the agent got {frames} frames in 2 s"
    assert fast_after - fast_before >= 0.9 * frames, f"{fast_after - fast_before} fast packets for {frames} frames"
    audio = agent_audio(agent, track, 1.0, 24000)
    assert abs(dominant_frequency(audio, 24000) - 440) < 5 and rms(audio) > 1000

    bob = await join(server, room, "bob")  # auto mode: alice's track is forwarded to him
    peers.append(bob)
    remote = await bob.wait_for_remote_track(lambda t: t.track_id == track, timeout=15)
    frequency, level = await heard(remote)
    assert abs(frequency - 440) < 5 and level > 1000
    fast_before, received_before = counts(server)
    frames_before = len(agent.received[track].chunks)
    await asyncio.sleep(2.0)
    fast_after, received_after = counts(server)
    frames = len(agent.received[track].chunks) - frames_before
    assert frames >= 80 and received_after - received_before >= 80, "packets kept arriving while forwarded"
    assert fast_after - fast_before <= 2, "a forwarded track's packets go through aiortc (forwarders need them)"
    audio = agent_audio(agent, track, 1.0, 24000)
    assert abs(dominant_frequency(audio, 24000) - 440) < 5 and rms(audio) > 1000

    await bob.close()  # no forwarder left: back on the fast path
    await asyncio.sleep(1.0)
    fast_before, _ = counts(server)
    await asyncio.sleep(2.0)
    fast_after, _ = counts(server)
    assert fast_after - fast_before >= 80
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
