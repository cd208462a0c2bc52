"""NAT rebinding mid-call: the participant's NAT maps it to a new address, and media follows both ways.

Network (topology.client_nat_network): participant 198.51.100.20 behind a masquerading router
(203.0.113.1), server on 203.0.113.10. Mid-call, the router forgets its UDP mappings and maps new
flows to 203.0.113.2 (topology.rebind_client_nat; TCP mappings stay, so signaling lives on). The
participant's packets then come from a new address the server has never seen, and packets sent
to the old one die at the router.

Run with the shared media port (``--rtc-udp-port``, where the demultiplexer must bind the new
address to the call) and with a socket per call. Fails if the server keeps sending to the old
address (the participant stops hearing the agent), or drops the participant's packets from the
new address (the agent stops hearing the participant), within a generous bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.net.helpers import (
    AGENT_HZ,
    AGENT_RATE,
    agent_heard,
    assert_tone,
    explained,
    speaking_agent,
    wait_agent_hears,
)
from tests.net.netns import NetLab
from tests.net.participants import ParticipantProcess, PeerSpec
from tests.net.services import NetServer, start_shoal
from tests.net.topology import (
    CLIENT_NAT,
    CLIENT_NAT_AFTER_REBIND,
    Network,
    client_nat_network,
    rebind_client_nat,
    udp_mappings,
)
from tests.support.agent_client import create_room, create_webrtc_peer
from tests.support.audio import dominant_frequency, rms

PEER_HZ = 560.0
CONNECT_TIMEOUT = 60.0
HEAR_TIMEOUT = 60.0
RESUME_TIMEOUT = 40.0  # aiortc sends its next consent check within about 5 s; generous for a busy machine
RESUMED_S = 3.0  # audio each side must receive after the rebinding


@pytest.fixture
def behind_nat(lab: NetLab) -> Network:
    return client_nat_network(lab)


@pytest.fixture
def servers(behind_nat: Network) -> Iterator[list[NetServer]]:
    started: list[NetServer] = []
    yield started
    for server in started:
        server.server.stop()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("media_port", ["shared", "per-call"])
async def test_media_follows_the_participant_to_its_new_nat_address_both_ways(
    behind_nat: Network, servers: list[NetServer], media_port: str
) -> None:
    extra = ["--rtc-udp-port", "40000"] if media_port == "shared" else []
    shoal = start_shoal(behind_nat.lab, behind_nat.server, public_host=behind_nat.server_host, extra_args=extra)
    servers.append(shoal)
    room = create_room(shoal.server)
    agent = await speaking_agent(shoal.server, room, AGENT_HZ)
    peer_id, token = create_webrtc_peer(shoal.server, room)
    python = ParticipantProcess(
        behind_nat.participant,
        [PeerSpec("python", shoal.public_ws_url, token, PEER_HZ, listen_to=agent.peer_id)],
        connect_timeout=CONNECT_TIMEOUT,
    )
    try:
        await python.start()
        with explained(python.report, shoal.log_tail, lambda: udp_mappings(behind_nat)):
            outcome = await python.wait_for("python", {"connected", "not_connected"}, CONNECT_TIMEOUT + 60)
            assert outcome["event"] == "connected", f"media did not connect before the rebinding: {outcome}"
            heard = await python.wait_for("python", {"heard"}, HEAR_TIMEOUT)
            assert_tone("before: the participant heard the agent", heard["hz"], heard["rms"], AGENT_HZ)
            hz, level = await wait_agent_hears(agent, peer_id, 1.5, HEAR_TIMEOUT)
            assert_tone("before: the agent heard the participant", hz, level, PEER_HZ)
            assert CLIENT_NAT in udp_mappings(behind_nat)

            before = await python.status("python")
            agent_before = len(agent_heard(agent, peer_id))
            rebind_client_nat(behind_nat)
            rebound_at = time.monotonic()

            # Both directions must carry RESUMED_S more seconds of audio within the bound.
            while True:
                status = await python.status("python")
                participant_gain = status["received_s"] - before["received_s"]
                agent_gain = (len(agent_heard(agent, peer_id)) - agent_before) / AGENT_RATE
                if participant_gain >= RESUMED_S + 1.0 and agent_gain >= RESUMED_S + 1.0:
                    break
                assert time.monotonic() - rebound_at < RESUME_TIMEOUT, (
                    f"{RESUME_TIMEOUT:.0f} s after the NAT rebinding the participant received "
                    f"{participant_gain:.1f} s more audio and the agent {agent_gain:.1f} s more "
                    f"(both need {RESUMED_S + 1.0:.1f} s)"
                )
                await asyncio.sleep(1.0)

            assert CLIENT_NAT_AFTER_REBIND in udp_mappings(behind_nat), "the NAT did not map the call anew"
            assert_tone("after: the participant hears the agent", status["hz"], status["rms"], AGENT_HZ)
            recent = agent_heard(agent, peer_id)[-int(1.5 * AGENT_RATE) :]
            assert_tone("after: the agent hears the participant", dominant_frequency(recent, AGENT_RATE),
                        rms(recent), PEER_HZ)
    finally:
        await python.stop()
        await agent.close()
