"""``--rtc-udp-port`` against a real server: every participant's media on one UDP port.

Participants in different rooms connect over real WebRTC; the server's only UDP sockets
are on the configured port (read from /proc), its answers announce only that port, and
each room's agent hears its own participant's tone. Bad input sent to the port (an
unknown ufrag, garbage) is dropped and counted while a live call keeps its audio.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator

import pytest

from shoal.net.demux import DROP_CAUSES, Drop
from shoal.testing import ToneSource, WebRTCPeer
from tests.shoal.ice_support import free_udp_port, rtc_stats, udp_sockets_of
from tests.support.agent_client import RawAgent, create_room
from tests.support.peers import SETTLE_S, join, spectrum_of
from tests.support.server import ServerProcess, start_server

PARTICIPANTS = 4
TONES = [330 + 110 * i for i in range(PARTICIPANTS)]
RATE = 16000


@pytest.fixture(scope="module")
def udp_port() -> int:
    return free_udp_port()


@pytest.fixture(scope="module")
def mux_server(udp_port: int) -> Iterator[ServerProcess]:
    proc = start_server(["--rtc-udp-port", str(udp_port)])
    try:
        yield proc
    finally:
        proc.stop()


def candidate_ports(sdp: str) -> set[int]:
    return {int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:")}


async def agent_hears(agent: RawAgent, track_id: str, freq: float, seconds: float = 1.5) -> None:
    """The agent gets ``seconds`` more of ``track_id`` and it is ``freq`` at a real level."""
    start = agent.samples_from(track_id)
    await agent.wait_samples(track_id, start + int(RATE * (seconds + SETTLE_S)), timeout=20)
    got, level = spectrum_of(agent.received[track_id].pcm[start:], RATE)
    assert abs(got - freq) < 10, f"agent heard {got:.0f} Hz, expected {freq} Hz"
    assert level > 1000, f"level {level:.0f}"


async def test_participants_in_different_rooms_share_one_udp_port_and_each_agent_hears_its_own(
    mux_server: ServerProcess, udp_port: int, peers: list[WebRTCPeer]
) -> None:
    """Fails if a peer connection binds its own (ephemeral) port, or if the demultiplexer
    hands one participant's media to another connection (the agent would hear the wrong
    tone or nothing)."""
    rooms = [create_room(mux_server) for _ in range(PARTICIPANTS)]
    agents = [await RawAgent.join(mux_server, room) for room in rooms]
    tracks = []
    for i, room in enumerate(rooms):
        peer = await join(mux_server, room, f"p{i}")
        peers.append(peer)
        tracks.append(await peer.publish_audio(ToneSource(TONES[i])))
    for agent, track, freq in zip(agents, tracks, TONES, strict=True):
        await agent_hears(agent, track, freq)

    for peer in peers:
        assert peer.pc is not None and peer.pc.remoteDescription is not None
        assert candidate_ports(peer.pc.remoteDescription.sdp) == {udp_port}
    sockets = udp_sockets_of(mux_server.process.pid)
    assert sockets, "the server holds no UDP socket"
    assert {port for _, port in sockets} == {udp_port}, f"server UDP sockets: {sockets}"
    stats = rtc_stats(mux_server)
    assert stats["udp_port"] == udp_port
    assert stats["shared"]["connections"] >= PARTICIPANTS
    assert stats["shared"]["datagrams_in"] > PARTICIPANTS * 50
    for agent in agents:
        await agent.close()
    await asyncio.gather(*(peer.close() for peer in peers))
    for _ in range(100):  # closing a connection unregisters its ufrag and addresses; the socket stays
        shared = rtc_stats(mux_server)["shared"]
        if shared["connections"] == 0:
            break
        await asyncio.sleep(0.1)
    assert shared["connections"] == 0 and shared["addresses"] == 0, shared
    assert {port for _, port in udp_sockets_of(mux_server.process.pid)} == {udp_port}


def stun_binding_request(username: str) -> bytes:
    """A Binding request with only a USERNAME (no integrity: the demultiplexer looks at the ufrag first)."""
    value = username.encode()
    attribute = struct.pack("!HH", 0x0006, len(value)) + value + b"\0" * (-len(value) % 4)
    return struct.pack("!HHI12s", 0x0001, len(attribute), 0x2112A442, b"shoal-test-1") + attribute


async def test_bad_input_on_the_shared_port_is_counted_and_a_live_call_keeps_its_audio(
    mux_server: ServerProcess, udp_port: int, peers: list[WebRTCPeer]
) -> None:
    """Unknown ufrags, garbage, fake RTP and truncated STUN from unknown addresses are
    dropped by reason; the call in progress is untouched. Fails if the demultiplexer
    delivers such datagrams to a connection (aioice would answer or queue them), counts
    them under the wrong reason, or logs one line per datagram."""
    room = create_room(mux_server)
    agent = await RawAgent.join(mux_server, room)
    peer = await join(mux_server, room, "victim")
    peers.append(peer)
    track = await peer.publish_audio(ToneSource(550))
    await agent_hears(agent, track, 550, seconds=0.5)
    before = rtc_stats(mux_server)["shared"]["dropped"]

    address = peer.pc.remoteDescription.sdp if peer.pc and peer.pc.remoteDescription else ""
    host = next(line.split()[4] for line in address.splitlines() if line.startswith("a=candidate:") and "." in line.split()[4])
    junk = {
        "unknown_ufrag": [stun_binding_request(f"nobody{i}:x") for i in range(50)],
        "not_stun": [bytes([0x80, 0x6F]) + bytes(170) for _ in range(50)] + [b"\xff" * 9 for _ in range(50)],
        "malformed_stun": [stun_binding_request("nobody:x")[:-3] + b"\x00\x00\x00\x01" for _ in range(50)],
        "no_username": [struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, b"shoal-test-2") for _ in range(50)],
    }
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        attacker.bind((host, 0))
        for datagrams in junk.values():
            for datagram in datagrams:
                attacker.sendto(datagram, (host, udp_port))
                await asyncio.sleep(0.001)
        await agent_hears(agent, track, 550, seconds=1.5)
        await asyncio.sleep(0.5)
    after = rtc_stats(mux_server)["shared"]["dropped"]
    for reason, datagrams in junk.items():
        counted = after.get(reason, 0) - before.get(reason, 0)
        assert counted == len(datagrams), f"{reason}: {counted} counted of {len(datagrams)} sent"
    log = mux_server.log_text()
    for reason in junk:
        lines = [line for line in log.splitlines() if "dropped" in line and "logged once" in line and reason_doc(reason) in line]
        assert len(lines) == 1, f"{reason}: {len(lines)} log lines"
    assert peer.pc is not None and peer.pc.connectionState == "connected"
    await agent.close()


def reason_doc(reason: str) -> str:
    return DROP_CAUSES[Drop(reason)]
