"""UDP blocked between participant and server: media goes through coturn, with time-limited credentials.

Network (topology.routed_network with block_udp and with_turn): participant 203.0.113.20 and
server 198.51.100.10 are routed to each other, but the router drops every UDP packet between
them (TCP passes, so signaling works). coturn on 203.0.113.30 is reachable from both and relays
only to the server. shoal runs with ``--ice-server turn:203.0.113.30:3478?transport=udp`` and
``--turn-secret``; the participant takes the TURN credentials from ``connected.ice_servers``.

Which setting makes each test fail:
* ``test_udp_blocked_*`` fails without ``--ice-server``/``--turn-secret`` (no relay candidate,
  nothing connects), with a secret coturn does not share (401, see the next test), or if the
  credentials are not coturn's REST-API scheme (``expiry:peer_id``, base64 HMAC-SHA1).
* ``test_wrong_turn_secret_*`` fails if the server does not report coturn's rejection in its
  log at start-up, or if media connects anyway (the block would then not be working).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Iterator

import pytest

from tests.net.helpers import (
    AGENT_HZ,
    agent_and_python_participant,
    agent_heard,
    assert_tone,
    drop_counter,
    explained,
    wait_agent_hears,
)
from tests.net.netns import NetLab
from tests.net.services import Coturn, NetServer, start_coturn, start_shoal
from tests.net.topology import PARTICIPANT, SERVER_PRIVATE, Network, nft_counters, routed_network

PEER_HZ = 520.0
SECRET = "coturn-static-auth-secret-for-tests"
CONNECT_TIMEOUT = 60.0
NO_MEDIA_WAIT = 25.0
HEAR_TIMEOUT = 60.0
LOG_TIMEOUT = 30.0  # the server's TURN self-check runs in the background at start-up


@pytest.fixture
def blocked(lab: NetLab) -> Network:
    return routed_network(lab, block_udp=True, with_turn=True)


@pytest.fixture
def coturn(blocked: Network) -> Coturn:
    assert blocked.turn is not None
    return start_coturn(blocked.lab, blocked.turn, secret=SECRET, relay_to=[SERVER_PRIVATE])


@pytest.fixture
def servers(blocked: Network) -> Iterator[list[NetServer]]:
    started: list[NetServer] = []
    yield started
    for server in started:
        server.server.stop()


def rest_api_credential(secret: str, username: str) -> str:
    """coturn's TURN REST API password: base64(HMAC-SHA1(static-auth-secret, username))."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def direct_udp_drops(net: Network) -> int:
    """Packets the router's two UDP-blocking rules (participant <-> server) dropped."""
    return drop_counter(nft_counters(net.router), rf"ip saddr ({PARTICIPANT}|{SERVER_PRIVATE}) .*udp counter")


@pytest.mark.timeout(300)
async def test_udp_blocked_media_flows_both_ways_through_a_turn_relay(
    blocked: Network, coturn: Coturn, servers: list[NetServer]
) -> None:
    """The participant connects through a relay candidate of coturn and audio flows both ways."""
    shoal = start_shoal(
        blocked.lab, blocked.server, public_host=blocked.server_host,
        extra_args=["--ice-server", coturn.url, "--turn-secret", SECRET],
    )
    servers.append(shoal)
    agent, peer_id, python = await agent_and_python_participant(shoal, blocked.participant, PEER_HZ, CONNECT_TIMEOUT)
    try:
        await python.start()
        with explained(python.report, shoal.log_tail, coturn.log_tail, lambda: nft_counters(blocked.router)):
            # The TURN credentials the server handed out, in coturn's REST-API scheme.
            joined = await python.wait_for("python", {"joined"}, CONNECT_TIMEOUT)
            turn_entries = [s for s in joined["ice_servers"] if any(u.startswith("turn:") for u in s["urls"])]
            assert turn_entries, f"connected.ice_servers has no turn: URL: {joined['ice_servers']}"
            [entry] = turn_entries
            assert coturn.url in entry["urls"], f"ice_servers {entry['urls']}, expected {coturn.url}"
            expiry, _, user = entry["username"].partition(":")
            assert user == peer_id and expiry.isdigit() and int(expiry) > time.time(), (
                f"username {entry['username']!r} is not '<future expiry>:<peer id {peer_id}>'"
            )
            assert entry["credential"] == rest_api_credential(SECRET, entry["username"]), "credential is not the HMAC"

            # Media through the relay.
            outcome = await python.wait_for("python", {"connected", "not_connected"}, CONNECT_TIMEOUT + 60)
            assert outcome["event"] == "connected", f"media did not connect: {outcome}"
            local, remote = outcome["pair"]["local"], outcome["pair"]["remote"]
            assert local["type"] == "relay" and local["address"] == coturn.address, (
                f"the selected pair does not use a relay candidate of coturn: {outcome['pair']}"
            )
            assert remote["address"] == SERVER_PRIVATE, f"the relay does not lead to the server: {outcome['pair']}"
            heard = await python.wait_for("python", {"heard"}, HEAR_TIMEOUT)
            assert_tone("the participant heard the agent through the relay", heard["hz"], heard["rms"], AGENT_HZ)
            hz, level = await wait_agent_hears(agent, peer_id, 1.5, HEAR_TIMEOUT)
            assert_tone("the agent heard the participant through the relay", hz, level, PEER_HZ)
            # The block was real: direct UDP between the two was tried and dropped.
            assert direct_udp_drops(blocked) > 0, "the router dropped no direct UDP: the block is not in place"
    finally:
        await python.stop()
        await agent.close()


@pytest.mark.timeout(300)
async def test_wrong_turn_secret_no_media_and_the_server_log_names_coturns_rejection(
    blocked: Network, coturn: Coturn, servers: list[NetServer]
) -> None:
    """A secret coturn does not share: 401 for every allocation, no media, and the server says why."""
    shoal = start_shoal(
        blocked.lab, blocked.server, public_host=blocked.server_host,
        extra_args=["--ice-server", coturn.url, "--turn-secret", "not-" + SECRET],
    )
    servers.append(shoal)
    agent, peer_id, python = await agent_and_python_participant(shoal, blocked.participant, PEER_HZ, NO_MEDIA_WAIT)
    try:
        await python.start()
        with explained(python.report, shoal.log_tail, coturn.log_tail, lambda: nft_counters(blocked.router)):
            # Start-up self-check: the server's log names the rejection and the TURN server.
            deadline = time.monotonic() + LOG_TIMEOUT
            rejection: list[str] = []
            while not rejection and time.monotonic() < deadline:
                rejection = [
                    line for line in shoal.log_text().splitlines()
                    if "rejected" in line and coturn.url.split("?")[0] in line and "401" in line
                ]
                await asyncio.sleep(0.2)
            assert rejection, f"the server's log does not name {coturn.url}'s rejection (401) within {LOG_TIMEOUT:.0f} s"
            assert len(rejection) == 1, f"the rejection is logged more than once: {rejection}"

            # Signaling works, media does not.
            answered = await python.wait_for("python", {"answered"}, CONNECT_TIMEOUT)
            assert answered["answers"] >= 1
            outcome = await python.wait_for("python", {"connected", "not_connected"}, NO_MEDIA_WAIT + 60)
            assert outcome["event"] == "not_connected", f"media connected with a wrong TURN secret: {outcome}"
            assert not [c for c in outcome["local_candidates"] if c["type"] == "relay"], (
                f"the participant got a relay candidate with a wrong secret: {outcome['local_candidates']}"
            )
            refused = [line for line in coturn.log_text().splitlines() if peer_id in line and "401" in line]
            assert refused, "coturn did not refuse (401) an allocation of the participant"
            assert len(agent_heard(agent, peer_id)) == 0, "the agent heard the participant: media did connect"
            # Still once, after the participant's failed allocations: the self-check is the only one logged.
            later = [line for line in shoal.log_text().splitlines() if "rejected shoal's credentials" in line]
            assert len(later) == 1, f"the rejection is logged more than once: {later}"
    finally:
        await python.stop()
        await agent.close()
