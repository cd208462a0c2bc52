"""One UDP port for all media: 20 participants in 20 rooms, each heard by its own room's agent.

Network (topology.routed_network): participants in one namespace (203.0.113.20), the server in
another (198.51.100.10), routed. shoal runs with ``--rtc-udp-port 40000``. Every participant
publishes its own tone (pre-encoded Opus: no encoder per peer) from one of a few processes.

What is checked: every participant's selected ICE pair goes to 198.51.100.10:40000; the server
process has exactly one UDP socket, bound to port 40000 (``ss -uanp`` in its namespace); and the
agent of room *i* hears tone *i*, so media arriving on the shared port reaches the right peer.

It fails without ``--rtc-udp-port`` (every peer gets its own ephemeral port: the pairs and the
socket list show other ports), or if the demultiplexing mixes peers up (an agent hears another
room's tone, or nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.net.helpers import assert_tone, explained, listening_agent, wait_agent_hears
from tests.net.netns import NetLab
from tests.net.participants import ParticipantProcess, PeerSpec
from tests.net.services import NetServer, start_shoal
from tests.net.topology import SERVER_PRIVATE, Network, routed_network
from tests.support.agent_client import RawAgent, create_room, create_webrtc_peer

MEDIA_PORT = 40000
ROOMS = 20
PEERS_PER_PROCESS = 5  # 4 processes: few interpreters, several aiortc peers each
CONNECT_TIMEOUT = 120.0  # 20 DTLS handshakes at once on 2 cores
HEAR_TIMEOUT = 90.0


def tone_of(room: int) -> float:
    """Distinct per room, 50 Hz apart (the analysis resolves well under 15 Hz)."""
    return 300.0 + 50.0 * room


@pytest.fixture
def routed(lab: NetLab) -> Network:
    return routed_network(lab)


@pytest.fixture
def servers(routed: Network) -> Iterator[list[NetServer]]:
    started: list[NetServer] = []
    yield started
    for server in started:
        server.server.stop()


def udp_ports_of(ss_output: str, pid: int) -> list[tuple[str, int]]:
    """(local address, port) of every UDP socket of ``pid`` in ``ss -uanp`` output."""
    sockets = []
    for line in ss_output.splitlines():
        if f"pid={pid}," not in line:
            continue
        address, _, port = line.split()[3].rpartition(":")  # State Recv-Q Send-Q Local Peer Process
        sockets.append((address, int(port)))
    return sockets


@pytest.mark.timeout(600)
async def test_twenty_rooms_share_one_media_port_and_each_agent_hears_its_own_participant(
    routed: Network, servers: list[NetServer]
) -> None:
    shoal = start_shoal(
        routed.lab, routed.server, public_host=routed.server_host, extra_args=["--rtc-udp-port", str(MEDIA_PORT)]
    )
    servers.append(shoal)
    agents: list[RawAgent] = []
    specs: list[PeerSpec] = []
    peer_ids: list[str] = []
    for room_index in range(ROOMS):
        room = create_room(shoal.server)
        agents.append(await listening_agent(shoal.server, room))
        peer_id, token = create_webrtc_peer(shoal.server, room)
        peer_ids.append(peer_id)
        specs.append(PeerSpec(f"room{room_index}", shoal.public_ws_url, token, tone_of(room_index)))
    chunks = [specs[i : i + PEERS_PER_PROCESS] for i in range(0, ROOMS, PEERS_PER_PROCESS)]
    processes = [ParticipantProcess(routed.participant, chunk, connect_timeout=CONNECT_TIMEOUT) for chunk in chunks]
    owner = {spec.name: process for process, chunk in zip(processes, chunks, strict=True) for spec in chunk}

    def reports() -> str:
        return "\n\n".join(p.report(stderr_lines=15) for p in processes)

    try:
        for process in processes:
            await process.start()
        with explained(reports, shoal.log_tail, lambda: routed.server.udp_sockets()):
            outcomes = await asyncio.gather(*(
                owner[spec.name].wait_for(spec.name, {"connected", "not_connected"}, CONNECT_TIMEOUT + 60)
                for spec in specs
            ))
            failed = [o for o in outcomes if o["event"] != "connected"]
            assert not failed, f"{len(failed)} of {ROOMS} participants did not connect: {failed[:3]}"
            remotes = {(o["pair"]["remote"]["address"], o["pair"]["remote"]["port"]) for o in outcomes}
            assert remotes == {(SERVER_PRIVATE, MEDIA_PORT)}, f"participants send media to {sorted(remotes)}"

            # The server's sockets while 20 calls are up: one UDP socket, on the configured port.
            sockets = udp_ports_of(routed.server.udp_sockets(), shoal.server.process.pid)
            assert sockets and {port for _, port in sockets} == {MEDIA_PORT}, (
                f"the server's UDP sockets: {sockets}; expected only port {MEDIA_PORT}"
            )
            assert len(sockets) == 1, f"one address is gathered, so one socket is expected: {sockets}"

            # Each room's agent hears its own participant's tone.
            heard = await asyncio.gather(*(
                wait_agent_hears(agent, peer_id, 1.5, HEAR_TIMEOUT) for agent, peer_id in zip(agents, peer_ids, strict=True)
            ))
            for room_index, (hz, level) in enumerate(heard):
                assert_tone(f"room {room_index}'s agent", hz, level, tone_of(room_index))
            for agent, peer_id in zip(agents, peer_ids, strict=True):
                others = {r.peer_id for r in agent.received.values()} - {peer_id}
                assert not others, f"an agent heard peers of other rooms: {others}"
    finally:
        await asyncio.gather(*(p.stop() for p in processes), return_exceptions=True)
        await asyncio.gather(*(a.close() for a in agents), return_exceptions=True)


def test_udp_ports_of_reads_ss_output() -> None:
    """The parser of ``ss -uanp`` lines that the one-port test relies on."""
    sample = (
        "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"
        'UNCONN 0      0      198.51.100.10:40000      0.0.0.0:*    users:(("python",pid=42,fd=17))\n'
        'UNCONN 0      0      0.0.0.0:5353      0.0.0.0:*    users:(("other",pid=7,fd=3))\n'
    )
    assert udp_ports_of(sample, 42) == [("198.51.100.10", 40000)]
    assert udp_ports_of(sample, 7) == [("0.0.0.0", 5353)]
    assert udp_ports_of(sample, 4) == []
