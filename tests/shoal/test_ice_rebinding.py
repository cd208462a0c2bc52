"""NAT rebinding and ``--rtc-public-ip`` on loopback, through a small UDP NAT in the test.

The server binds 127.0.0.1 and announces 127.0.0.2 (``--rtc-public-ip``), where the test's
NAT listens: a participant can only reach the server through it, as through a 1:1 NAT.
The NAT forwards each client from its own "inside" port; mid-call it moves every client
to a new inside port and closes the old one, which is what a home router does when its
mapping times out. The call must keep flowing both ways.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from shoal.testing import ToneSource, WebRTCPeer
from shoal.testing.peer import ClientEvent
from tests.shoal.ice_support import free_udp_port, rtc_stats, udp_sockets_of
from tests.shoal.test_ice_single_port import agent_hears, candidate_ports
from tests.support.agent_client import RawAgent, create_room, create_webrtc_peer
from tests.support.audio import tone
from tests.support.peers import SETTLE_S, spectrum_of
from tests.support.server import ServerProcess, start_server

PUBLIC = "127.0.0.2"
PRIVATE = "127.0.0.1"


class LoopbackNat:
    """A UDP NAT: clients send to ``(PUBLIC, port)``; each is forwarded to the server from an inside port."""

    def __init__(self, port: int, server: tuple[str, int]) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = server
        self._public = self._socket((PUBLIC, port))
        self._loop.add_reader(self._public.fileno(), self._from_client)
        self._inside: dict[tuple[str, int], socket.socket] = {}
        self.rebinds = 0
        self.forwarded = 0

    @staticmethod
    def _socket(address: tuple[str, int]) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(address)
        sock.setblocking(False)
        return sock

    def _from_client(self) -> None:
        while True:
            try:
                data, client = self._public.recvfrom(65536)
            except BlockingIOError:
                return
            inside = self._inside.get(client)
            if inside is None:
                inside = self._open_inside(client)
            inside.sendto(data, self._server)
            self.forwarded += 1

    def _open_inside(self, client: tuple[str, int]) -> socket.socket:
        inside = self._socket((PRIVATE, 0))
        self._inside[client] = inside
        self._loop.add_reader(inside.fileno(), self._from_server, inside, client)
        return inside

    def _from_server(self, inside: socket.socket, client: tuple[str, int]) -> None:
        while True:
            try:
                data, _ = inside.recvfrom(65536)
            except (BlockingIOError, ConnectionRefusedError):
                return
            self._public.sendto(data, client)

    def inside_ports(self) -> set[int]:
        return {sock.getsockname()[1] for sock in self._inside.values()}

    def rebind(self) -> None:
        """Every client gets a new inside port; the old one is closed (the server's packets to it are lost)."""
        for client, old in list(self._inside.items()):
            self._loop.remove_reader(old.fileno())
            old.close()
            self._open_inside(client)
        self.rebinds += 1

    def close(self) -> None:
        for sock in [self._public, *self._inside.values()]:
            self._loop.remove_reader(sock.fileno())
            sock.close()


@pytest.fixture(scope="module")
def media_port() -> int:
    return free_udp_port(PRIVATE)


@pytest.fixture(scope="module", params=["udp-port", "port-range"])
def natted_server(request: pytest.FixtureRequest, media_port: int) -> Iterator[ServerProcess]:
    """The shared port, or a one-port range (the participant's own socket, at a port the NAT knows)."""
    ports = ["--rtc-udp-port", str(media_port)] if request.param == "udp-port" else ["--rtc-port-range", f"{media_port}-{media_port}"]
    proc = start_server(["--rtc-interface", PRIVATE, *ports, "--rtc-public-ip", PUBLIC])
    try:
        yield proc
    finally:
        proc.stop()


async def join_behind_nat(server: ServerProcess, room: str) -> WebRTCPeer:
    """A participant whose own host candidates never reach the server.

    Behind a real NAT they are private addresses the server cannot reach; on loopback it
    could, and ICE would pick that direct path around the test's NAT. So this client
    withholds them (no ``candidate`` events, none in its offers) and the server learns the
    NAT's address from the client's checks, as a peer-reflexive candidate.
    """
    _, token = create_webrtc_peer(server, room)
    peer = WebRTCPeer(server.ws_url, token, metadata={"name": "behind-nat"})
    send = peer._send_media_event

    async def without_candidates(event: ClientEvent) -> None:
        if event.HasField("candidate"):
            return
        if event.HasField("sdp_offer"):
            lines = event.sdp_offer.sdp.split("\r\n")
            event.sdp_offer.sdp = "\r\n".join(line for line in lines if not line.startswith("a=candidate:"))
        await send(event)

    peer._send_media_event = without_candidates  # type: ignore[method-assign]
    return await peer._join(15)


async def peer_hears(peer: WebRTCPeer, agent_id: str, freq: float, seconds: float = 1.5) -> None:
    remote = await peer.wait_for_remote_track(endpoint_id=agent_id, timeout=15)
    start = len(remote.recording.samples())
    await remote.recording.wait_for_seconds(start / 48000 + seconds + SETTLE_S, timeout=30)
    got, level = spectrum_of(remote.recording.samples()[start:], 48000)
    assert abs(got - freq) < 10 and level > 1000, f"peer heard {got:.0f} Hz at level {level:.0f}"


async def test_a_call_through_a_nat_survives_the_nat_moving_the_client_to_a_new_port(
    natted_server: ServerProcess, media_port: int, peers: list[WebRTCPeer]
) -> None:
    """Fails without ``--rtc-public-ip`` (the participant would send to 127.0.0.1 directly and
    the NAT would see nothing), and fails if the server keeps sending to the client's old
    address after the rebinding (the participant would stop hearing the agent; the
    server's consent checks to the dead address would end the call after ~30 s)."""
    nat = LoopbackNat(media_port, (PRIVATE, media_port))
    try:
        room = create_room(natted_server)
        agent = await RawAgent.join(natted_server, room)
        agent_track = await agent.add_track(rate=16000)
        for _ in range(9):  # 90 s, in frames below the socket's size limit
            await agent.send_audio(agent_track, tone(880, 10.0, 16000))
        peer = await join_behind_nat(natted_server, room)
        peers.append(peer)
        track = await peer.publish_audio(ToneSource(440))
        await agent_hears(agent, track, 440)
        await peer_hears(peer, agent.peer_id, 880)

        assert peer.pc is not None and peer.pc.remoteDescription is not None
        answer = peer.pc.remoteDescription.sdp
        hosts = {line.split()[4] for line in answer.splitlines() if line.startswith("a=candidate:")}
        assert hosts == {PUBLIC} and candidate_ports(answer) == {media_port}
        assert udp_sockets_of(natted_server.process.pid) == [(PRIVATE, media_port)]
        assert nat.forwarded > 100, "media did not go through the NAT"

        old_ports = nat.inside_ports()
        nat.rebind()
        assert nat.inside_ports().isdisjoint(old_ports)
        await agent_hears(agent, track, 440)  # the new address is learnt from its first STUN request
        await peer_hears(peer, agent.peer_id, 880)  # ... and the server sends there now
        stats = rtc_stats(natted_server)
        assert stats["rebinds_followed"] >= 1, stats  # the server's own rule: aiortc's consent checks do not nominate
        assert stats["nominations_followed"] == 0, stats
        if stats["udp_port"]:
            assert stats["shared"]["new_addresses"] >= 1, stats
        assert peer.pc.connectionState == "connected" and not peer.disconnected
        lines = [line for line in natted_server.log_text().splitlines() if "NAT rebinding" in line]
        assert len(lines) == 1, lines
        await agent.close()
    finally:
        nat.close()
