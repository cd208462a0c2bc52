"""A participant's audio held up in the network and then delivered at once, against real servers.

Alice's outgoing audio is held before SRTP for 3 s (as a stalled network would) and then sent
all at once; Bob keeps talking throughout. The agent must not receive the part of Alice's
3 s backlog more than 1 s late (``--participant-audio-max-delay``'s default) — it is stale,
dropped undecoded and counted — but must hear Alice again right away, and Bob without a break. A second server started with ``--participant-audio-max-delay 0`` shows that
the backlog would otherwise arrive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from shoal.testing import WebRTCPeer
from tests.shoal.test_metrics import scrape, value
from tests.support.agent_client import RawAgent
from tests.support.peers import tail_frequency, two_talkers
from tests.support.server import ServerProcess, start_server

HOLD_S = 3.0
RATE = 16000


@pytest.fixture(scope="module")
def ungated() -> Iterator[ServerProcess]:
    proc = start_server(["--participant-audio-max-delay", "0"])
    try:
        yield proc
    finally:
        proc.stop()


async def hold_alice(server: ServerProcess, peers: list[WebRTCPeer]) -> tuple[RawAgent, str, str, int, float]:
    """Alice and Bob talk to an agent; Alice's audio is held HOLD_S, then released.

    Returns the agent, both track ids, the packets released and the agent's chunk count of
    Alice's track just before the release.
    """
    talk = await two_talkers(server, peers, RATE)
    agent, alice_track, bob_track = talk.agent, talk.alice_track, talk.bob_track
    tap = talk.alice.rtp_tap("audio")
    tap.hold_sent()
    await asyncio.sleep(0.3)  # what was in flight has arrived
    alice_before, bob_before = len(agent.received[alice_track].chunks), len(agent.received[bob_track].chunks)
    await asyncio.sleep(HOLD_S - 0.3)
    assert len(agent.received[alice_track].chunks) == alice_before, "nothing of Alice's arrives while it is held"
    bob_during = len(agent.received[bob_track].chunks) - bob_before
    assert bob_during >= 0.8 * (HOLD_S - 0.3) * 50, f"Bob's audio went on: {bob_during} frames in {HOLD_S - 0.3} s"
    released = await tap.release_sent()
    assert released >= 0.9 * HOLD_S * 50, f"{released} packets were held"
    return agent, alice_track, bob_track, released, alice_before


async def test_a_held_up_burst_of_a_participant_is_dropped_as_stale_and_its_audio_resumes(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    stale_before = value(scrape(server), "shoal_dropped_total", where="participant_audio", reason="stale")
    lost_before = value(scrape(server), "shoal_dropped_total", where="participant_audio", reason="lost")
    agent, alice_track, bob_track, released, alice_before = await hold_alice(server, peers)
    await asyncio.sleep(0.25)
    burst = len(agent.received[alice_track].chunks) - alice_before
    # What was sampled within 1 s of the release (50 frames), plus the 250 ms of live audio since.
    assert burst <= 75, f"{burst} of Alice's {released} held-up frames reached the agent"
    await agent.wait_samples(alice_track, (alice_before + burst + 50) * RATE // 50, timeout=10)
    received = agent.received[alice_track]
    assert abs(tail_frequency(received, RATE) - 440) < 10, "Alice is heard again after the burst"
    assert abs(tail_frequency(agent.received[bob_track], RATE) - 660) < 10
    samples = scrape(server)
    stale = value(samples, "shoal_dropped_total", where="participant_audio", reason="stale") - stale_before
    lost = value(samples, "shoal_dropped_total", where="participant_audio", reason="lost") - lost_before
    assert released - 60 <= stale <= released, f"{stale} of {released} held-up packets counted stale"
    assert lost <= 2, f"the dropped packets were counted as lost too ({lost})"
    await agent.close()


async def test_without_the_gate_the_held_up_burst_reaches_the_agent(
    ungated: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    agent, alice_track, _, released, alice_before = await hold_alice(ungated, peers)
    await asyncio.sleep(0.25)
    burst = len(agent.received[alice_track].chunks) - alice_before
    assert burst >= 0.9 * released, f"only {burst} of {released} held-up frames arrived without the gate"
    assert value(scrape(ungated), "shoal_dropped_total", where="participant_audio", reason="stale") == 0
    await agent.close()
