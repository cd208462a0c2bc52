"""``--rtc-port-range``, ``--ice-server`` with TURN credentials, and bad network options, on real servers.

The TURN tests run coturn (the Debian package) on loopback with ``use-auth-secret``: the
credentials a participant receives in ``connected.ice_servers`` must get an allocation
from it, and a server configured with the wrong secret must say so at start-up.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.net.gathering import turn_allocate
from shoal.testing import ToneSource, WebRTCPeer
from shoal.testing.server import stop_process
from tests.shoal.ice_support import free_udp_port, free_udp_range, rtc_stats, udp_sockets_of
from tests.shoal.test_ice_single_port import agent_hears, candidate_ports
from tests.shoal.test_ice_units import coturn_password
from tests.support.agent_client import RawAgent, create_room
from tests.support.peers import join
from tests.support.server import ServerProcess, start_server

# --- port range ------------------------------------------------------------------------------


async def test_every_media_socket_of_the_server_is_within_the_port_range(peers: list[WebRTCPeer]) -> None:
    """Fails if any peer connection binds outside ``--rtc-port-range`` (aioice's default is
    an ephemeral port)."""
    low, high = free_udp_range(8)
    server = start_server(["--rtc-port-range", f"{low}-{high}"])
    try:
        rooms = [create_room(server) for _ in range(3)]
        agents = [await RawAgent.join(server, room) for room in rooms]
        tracks = []
        for i, room in enumerate(rooms):
            peer = await join(server, room, f"r{i}")
            peers.append(peer)
            tracks.append(await peer.publish_audio(ToneSource(400 + 200 * i)))
        for i, (agent, track) in enumerate(zip(agents, tracks, strict=True)):
            await agent_hears(agent, track, 400 + 200 * i)
        sockets = udp_sockets_of(server.process.pid)
        assert len(sockets) >= 3, sockets
        assert all(low <= port <= high for _, port in sockets), f"sockets {sockets} outside {low}-{high}"
        for peer in peers:
            assert peer.pc is not None and peer.pc.remoteDescription is not None
            assert all(low <= port <= high for port in candidate_ports(peer.pc.remoteDescription.sdp))
        for agent in agents:
            await agent.close()
    finally:
        server.stop()


async def test_an_exhausted_port_range_refuses_the_next_peer_clearly_and_the_first_keeps_talking(
    peers: list[WebRTCPeer],
) -> None:
    """A one-port range holds one peer connection per address; the second participant is
    refused with the reason, counted, and the first one's call is unaffected. Fails if
    exhaustion crashes the server, harms the live call, or fails silently (the second
    participant would hang until the ICE timeout)."""
    low, high = free_udp_range(1)
    server = start_server(["--rtc-port-range", f"{low}-{high}"])
    try:
        room = create_room(server)
        agent = await RawAgent.join(server, room)
        first = await join(server, room, "first")
        peers.append(first)
        track = await first.publish_audio(ToneSource(500))
        await agent_hears(agent, track, 500)

        second = await join(server, create_room(server), "second")
        peers.append(second)
        with pytest.raises(Exception):  # noqa: B017 - the peer reports the server's close
            await second.publish_audio(ToneSource(700), timeout=15)
        await second.wait_until(lambda: second.disconnected, timeout=15)
        assert second.close_reason is not None and "--rtc-port-range" in second.close_reason, second.close_reason
        await agent_hears(agent, track, 500)
        assert rtc_stats(server)["port_range_exhausted"] >= 1
        assert server.log_text().count("no free UDP port in --rtc-port-range") >= 1
        await agent.close()
    finally:
        server.stop()


# --- ICE servers and TURN -------------------------------------------------------------------


class Coturn:
    def __init__(self, port: int, secret: str) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="coturn-"))
        self.log = self.dir / "turn.log"
        turnserver = shutil.which("turnserver")
        assert turnserver, "coturn (Debian package) is needed for the TURN tests"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    turnserver, "-n", "--listening-ip=127.0.0.1", f"--listening-port={port}", "--relay-ip=127.0.0.1",
                    "--min-port=49152", "--max-port=49407", "--use-auth-secret", f"--static-auth-secret={secret}",
                    "--realm=shoal.test", "--no-tls", "--no-dtls", "--no-cli", "--no-multicast-peers",
                    f"--pidfile={self.dir / 'pid'}", f"--db={self.dir / 'db'}", "--log-file=stdout", "--simple-log",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, secret: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            username = f"{int(time.time()) + 60}:probe"
            check = await turn_allocate("127.0.0.1", self.port, "udp", False, username, coturn_password(secret, username), 2)
            if check.ok:
                return
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.2)
        raise RuntimeError(f"coturn did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


SECRET = "shoal-test-turn-secret"


@pytest.fixture(scope="module")
def coturn() -> Iterator[Coturn]:
    server = Coturn(free_udp_port(), SECRET)
    try:
        asyncio.run(server.wait_ready(SECRET))
        yield server
    finally:
        server.stop()


async def wait_turn_checks(server: ServerProcess, done: int, timeout: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        checks: dict[str, str] = rtc_stats(server)["turn_checks"]
        if sum(state != "pending" for state in checks.values()) >= done or time.monotonic() > deadline:
            return checks
        await asyncio.sleep(0.2)


async def test_each_peer_gets_its_own_turn_credentials_and_coturn_accepts_them(coturn: Coturn) -> None:
    """``connected.ice_servers`` carries the STUN URL, and the TURN URLs with
    ``"<expiry>:<peer id>"`` and its HMAC; the participant's credentials get a real
    allocation from coturn, and the server's own start-up check passed. Fails with a
    wrong HMAC (coturn answers 401), a wrong username layout, or an empty ice_servers."""
    stun = f"stun:127.0.0.1:{coturn.port}"
    turn = f"turn:127.0.0.1:{coturn.port}?transport=udp"
    server = start_server(["--ice-server", stun, "--ice-server", turn, "--turn-secret", SECRET, "--turn-ttl", "600"])
    try:
        room = create_room(server)
        before = int(time.time())
        alice = await join(server, room, "alice")
        bob = await join(server, room, "bob")
        for peer in (alice, bob):
            assert [s.urls for s in peer.ice_servers] == [[stun], [turn]]
            relay = peer.ice_servers[1]
            assert peer.ice_servers[0].username is None and peer.ice_servers[0].credential is None
            assert relay.username is not None and relay.credential is not None
            expiry, _, peer_id = relay.username.partition(":")
            assert peer_id == peer.endpoint_id
            assert before + 600 <= int(expiry) <= int(time.time()) + 600
            assert relay.credential == coturn_password(SECRET, relay.username)
            check = await turn_allocate("127.0.0.1", coturn.port, "udp", False, relay.username, relay.credential)
            assert check.ok, check.detail
        checks = await wait_turn_checks(server, 1)
        assert checks[turn].startswith("ok: relay 127.0.0.1:"), checks
        assert "accepted shoal's credentials" in server.log_text()
        await asyncio.gather(alice.close(), bob.close())
    finally:
        server.stop()


async def test_a_wrong_turn_secret_and_an_unreachable_turn_server_are_reported_once_at_start_up(
    coturn: Coturn,
) -> None:
    """The check runs in the background (the server is up before it ends) and logs each
    cause once with a hint. Fails if the check blocks start-up, passes credentials coturn
    refuses, or is silent about them."""
    rejected = f"turn:127.0.0.1:{coturn.port}"
    silent = f"turn:127.0.0.1:{free_udp_port()}"
    server = start_server(["--ice-server", rejected, "--ice-server", silent, "--turn-secret", "not-the-secret"])
    try:
        checks = await wait_turn_checks(server, 2, timeout=40)
        assert checks[rejected].startswith("rejected: 401"), checks
        assert checks[silent].startswith("unreachable"), checks
        log = server.log_text()
        refused = [line for line in log.splitlines() if "rejected shoal's credentials" in line]
        assert len(refused) == 1 and "static-auth-secret" in refused[0] and rejected in refused[0], refused
        assert sum(silent in line and "unreachable" in line for line in log.splitlines()) == 1
    finally:
        server.stop()


# --- bad options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rtc-port-range", "5000-4000"], "--rtc-port-range '5000-4000': MIN is greater than MAX"),
        (["--rtc-udp-port", "50000", "--rtc-port-range", "50000-50010"], "exclusive"),
        (["--rtc-public-ip", "not-an-ip"], "--rtc-public-ip 'not-an-ip': not an IP address"),
        (["--ice-server", "turn:203.0.113.5"], "need --turn-secret or --ice-username"),
        (["--ice-server", "ftp://x"], "--ice-server 'ftp://x'"),
        (["--rtc-interface", "no-such-interface*"], "matches no local address"),
    ],
)
def test_bad_network_options_exit_with_a_clear_message(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shoal", "serve", "--port", "0", "--management-token", "t", *args],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "shoal: " in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_udp_port_in_use_is_refused_at_start_up() -> None:
    """Fails if the server starts anyway and only its calls fail later."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "shoal", "serve", "--port", "0", "--management-token", "t",
             "--rtc-interface", "127.0.0.1", "--rtc-udp-port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 2
    assert f"--rtc-udp-port {port}: cannot bind UDP 127.0.0.1:{port}" in result.stderr, result.stderr


def test_environment_variables_set_the_network_options() -> None:
    """SHOAL_* variables reach the same validation as the options (a bad one exits 2 naming it)."""
    env = {**os.environ, "SHOAL_ICE_SERVERS": "stun:s:3478,turn:t:3478", "SHOAL_TURN_SECRET": "x", "SHOAL_TURN_TTL": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "shoal", "serve", "--port", "0", "--management-token", "t"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 2 and "--turn-ttl 0" in result.stderr, result.stderr
