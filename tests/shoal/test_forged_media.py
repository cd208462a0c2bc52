"""Forged and corrupted media on a participant's connection, against a real server.

Alice sends 800 datagrams that look like RTP and RTCP but are not SRTP-protected (as a
forger on her address, or a corrupting network, would) in the middle of her call, paced
over about half a second. SRTP
refuses each of them: they are dropped, counted in ``shoal_dropped_total`` and logged once,
and the agent keeps hearing Alice's tone and Bob's.
"""

from __future__ import annotations

import asyncio
import random

from shoal.testing import WebRTCPeer
from tests.shoal.test_metrics import scrape, value
from tests.support.peers import tail_frequency, two_talkers
from tests.support.server import ServerProcess

RATE = 16000


def forged(rng: random.Random) -> list[bytes]:
    rtp = [bytes([0x80, 111]) + rng.randbytes(rng.randrange(10, 200)) for _ in range(500)]
    rtcp = [bytes([0x80, rng.randrange(200, 207)]) + rng.randbytes(rng.randrange(6, 80)) for _ in range(200)]
    other = [bytes([rng.randrange(128, 192)]) + rng.randbytes(rng.randrange(0, 300)) for _ in range(100)]
    return rtp + rtcp + other


async def test_forged_packets_are_refused_counted_and_the_call_goes_on(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    talk = await two_talkers(server, peers, RATE)
    agent, alice_track, bob_track = talk.agent, talk.alice_track, talk.bob_track
    before = value(scrape(server), "shoal_dropped_total", where="rtp_receive", reason="srtp_refused")
    datagrams = forged(random.Random(11))
    # Paced as a stream (20 every 10 ms), not one 800-datagram burst: a burst can overrun the
    # socket buffer or be shed as overload on a slow machine before SRTP ever sees it.
    for start in range(0, len(datagrams), 20):
        await talk.alice.send_raw_media(datagrams[start : start + 20])
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    refused = value(scrape(server), "shoal_dropped_total", where="rtp_receive", reason="srtp_refused") - before
    assert 0.9 * len(datagrams) <= refused <= len(datagrams), f"{refused} of {len(datagrams)} forged packets counted"
    alice_now, bob_now = len(agent.received[alice_track].chunks), len(agent.received[bob_track].chunks)
    await agent.wait_samples(alice_track, (alice_now + 50) * RATE // 50, timeout=10)
    await agent.wait_samples(bob_track, (bob_now + 50) * RATE // 50, timeout=10)
    assert abs(tail_frequency(agent.received[alice_track], RATE) - 440) < 10
    assert abs(tail_frequency(agent.received[bob_track], RATE) - 660) < 10
    assert server.log_text().count("failed SRTP (forged, corrupted or replayed)") >= 1
    await agent.close()
