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
from dataclasses import dataclass
from typing import Any

import pytest

from tests.net.helpers import assert_tone, explained, listening_agent, wait_agent_hears
from tests.net.netns import NetLab
from tests.net.participants import ParticipantProcess, PeerSpec
from tests.net.services import NetServer, start_shoal
from tests.net.topology import SERVER_PRIVATE, Network, routed_network
from tests.support.agent_client import RawAgent, create_room, create_webrtc_peer

MEDIA_PORT = 40000
PORT_RANGE = (41000, 41029)  # 30 ports for 20 calls
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


@dataclass
class Rooms:
    """``count`` rooms, each with a listening agent and one participant publishing the room's tone."""

    agents: list[RawAgent]
    peer_ids: list[str]
    specs: list[PeerSpec]
    processes: list[ParticipantProcess]
    owner: dict[str, ParticipantProcess]

    def reports(self) -> str:
        return "\n\n".join(p.report(stderr_lines=15) for p in self.processes)

    async def outcomes(self) -> list[dict[str, Any]]:
        """Each participant's ``connected`` or ``not_connected`` report, in room order."""
        return list(await asyncio.gather(*(
            self.owner[spec.name].wait_for(spec.name, {"connected", "not_connected"}, CONNECT_TIMEOUT + 60)
            for spec in self.specs
        )))

    async def check_each_agent_hears_its_own_room(self, rooms: list[int]) -> None:
        heard = await asyncio.gather(*(
            wait_agent_hears(self.agents[i], self.peer_ids[i], 1.5, HEAR_TIMEOUT) for i in rooms
        ))
        for room_index, (hz, level) in zip(rooms, heard, strict=True):
            assert_tone(f"room {room_index}'s agent", hz, level, tone_of(room_index))
        for agent, peer_id in zip(self.agents, self.peer_ids, strict=True):
            others = {r.peer_id for r in agent.received.values()} - {peer_id}
            assert not others, f"an agent heard peers of other rooms: {others}"

    async def close(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.processes), return_exceptions=True)
        await asyncio.gather(*(a.close() for a in self.agents), return_exceptions=True)


async def open_rooms(net: Network, shoal: NetServer, count: int) -> Rooms:
    agents: list[RawAgent] = []
    specs: list[PeerSpec] = []
    peer_ids: list[str] = []
    for room_index in range(count):
        room = create_room(shoal.server)
        agents.append(await listening_agent(shoal.server, room))
        peer_id, token = create_webrtc_peer(shoal.server, room)
        peer_ids.append(peer_id)
        specs.append(PeerSpec(f"room{room_index}", shoal.public_ws_url, token, tone_of(room_index)))
    chunks = [specs[i : i + PEERS_PER_PROCESS] for i in range(0, count, PEERS_PER_PROCESS)]
    processes = [ParticipantProcess(net.participant, chunk, connect_timeout=CONNECT_TIMEOUT) for chunk in chunks]
    owner = {spec.name: process for process, chunk in zip(processes, chunks, strict=True) for spec in chunk}
    rooms = Rooms(agents, peer_ids, specs, processes, owner)
    try:
        for process in processes:
            await process.start()
    except BaseException:
        await rooms.close()
        raise
    return rooms


@pytest.mark.timeout(600)
async def test_twenty_rooms_share_one_media_port_and_each_agent_hears_its_own_participant(
    routed: Network, servers: list[NetServer]
) -> None:
    """``--rtc-udp-port 40000``: one socket on port 40000 carries all 20 calls, each to its own room."""
    shoal = start_shoal(
        routed.lab, routed.server, public_host=routed.server_host, extra_args=["--rtc-udp-port", str(MEDIA_PORT)]
    )
    servers.append(shoal)
    rooms = await open_rooms(routed, shoal, ROOMS)
    try:
        with explained(rooms.reports, shoal.log_tail, routed.server.udp_sockets):
            outcomes = await rooms.outcomes()
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

            await rooms.check_each_agent_hears_its_own_room(list(range(ROOMS)))
    finally:
        await rooms.close()


@pytest.mark.timeout(600)
async def test_twenty_rooms_in_a_port_range_stay_inside_it(routed: Network, servers: list[NetServer]) -> None:
    """``--rtc-port-range 41000-41029``: every call's socket, and so every selected pair, is in the range.

    Fails without the option (ephemeral ports, far outside the range) or if a peer binds outside it.
    """
    low, high = PORT_RANGE
    shoal = start_shoal(
        routed.lab, routed.server, public_host=routed.server_host, extra_args=["--rtc-port-range", f"{low}-{high}"]
    )
    servers.append(shoal)
    rooms = await open_rooms(routed, shoal, ROOMS)
    try:
        with explained(rooms.reports, shoal.log_tail, routed.server.udp_sockets):
            outcomes = await rooms.outcomes()
            failed = [o for o in outcomes if o["event"] != "connected"]
            assert not failed, f"{len(failed)} of {ROOMS} participants did not connect: {failed[:3]}"
            remotes = sorted((o["pair"]["remote"]["address"], o["pair"]["remote"]["port"]) for o in outcomes)
            outside = [r for r in remotes if r[0] != SERVER_PRIVATE or not low <= r[1] <= high]
            assert not outside, f"participants send media outside {SERVER_PRIVATE}:{low}-{high}: {outside}"
            assert len(set(remotes)) == ROOMS, f"each call has its own port in the range: {remotes}"

            sockets = udp_ports_of(routed.server.udp_sockets(), shoal.server.process.pid)
            assert len(sockets) >= ROOMS and all(low <= port <= high for _, port in sockets), (
                f"the server's UDP sockets: {sockets}; expected {ROOMS} or more, all within {low}-{high}"
            )
            await rooms.check_each_agent_hears_its_own_room(list(range(ROOMS)))
    finally:
        await rooms.close()


@pytest.mark.timeout(400)
async def test_an_exhausted_port_range_fails_only_the_peer_that_finds_no_port(
    routed: Network, servers: list[NetServer]
) -> None:
    """A range of 3 ports and 4 calls: three connect and are heard, the fourth is refused with the cause.

    Fails if the fourth peer binds outside the range, if its failure harms the other calls, or
    if the server's log does not say that the range is exhausted.
    """
    low, high = 41000, 41002
    shoal = start_shoal(
        routed.lab, routed.server, public_host=routed.server_host, extra_args=["--rtc-port-range", f"{low}-{high}"]
    )
    servers.append(shoal)
    first = await open_rooms(routed, shoal, 3)
    late: Rooms | None = None
    try:
        with explained(first.reports, shoal.log_tail, routed.server.udp_sockets):
            outcomes = await first.outcomes()
            assert all(o["event"] == "connected" for o in outcomes), f"the first three calls: {outcomes}"
            late = await open_rooms(routed, shoal, 1)
            outcome = await late.processes[0].wait_for("room0", {"connected", "not_connected", "failed"}, CONNECT_TIMEOUT)
            assert outcome["event"] != "connected", f"a fourth call connected with 3 ports for 4: {outcome}"
            assert outcome["event"] == "failed" and "--rtc-port-range" in outcome["error"], (
                f"the fourth peer should be refused with a reason naming the range: {outcome}"
            )
            assert any("no free UDP port in --rtc-port-range" in line for line in shoal.log_text().splitlines()), (
                "the server's log does not say that the port range is exhausted"
            )
            sockets = udp_ports_of(routed.server.udp_sockets(), shoal.server.process.pid)
            assert all(low <= port <= high for _, port in sockets), f"a socket outside the range: {sockets}"
            await first.check_each_agent_hears_its_own_room([0, 1, 2])
    finally:
        if late is not None:
            await late.close()
        await first.close()


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
