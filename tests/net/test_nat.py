"""1:1 NAT: the server has only a private address; participants reach it through a DNATed public one.

Network (topology.nat_network): participant 203.0.113.20 (behind a stateful firewall, as nearly
every client is) → router, which maps 203.0.113.10 one to one onto the server's 198.51.100.10 →
server. Signaling (TCP to 203.0.113.10:5002) always works; media works only if the server's ICE
candidates carry the public address, which is what ``--rtc-public-ip`` does.

Which setting makes each test fail:
* ``test_public_ip_*`` fails without ``--rtc-public-ip 203.0.113.10`` (or if the server announces
  anything else, or binds its sockets to the public address it does not have).
* ``test_without_public_ip_*`` fails if the network lets the participant reach the private
  address (e.g. remove the router's drop of 198.51.100.0/24) or lets the server's own checks in
  (remove the participant's firewall): then media would connect without the option.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.browser.harness import (
    BrowserPage,
    State,
    remote_tracks,
    steady_tone,
    ts_client_versions,
    write_tone_wav,
)
from tests.browser.helpers import page_gave_up
from tests.net.helpers import (
    AGENT_HZ,
    agent_and_python_participant,
    agent_heard,
    assert_tone,
    drop_counter,
    explained,
    speaking_agent,
    wait_agent_hears,
)
from tests.net.netns import NetLab
from tests.net.participants import ParticipantProcess, PeerSpec
from tests.net.services import NetServer, start_shoal
from tests.net.topology import SERVER_PRIVATE, SERVER_PUBLIC, Network, nat_network, nft_counters
from tests.support.agent_client import create_room, create_webrtc_peer

PEER_HZ = 500.0  # the aiortc participant's tone
MIC_HZ = 660.0  # the browser's fake microphone
CONNECT_TIMEOUT = 60.0  # generous: a busy 2-core machine
NO_MEDIA_WAIT = 25.0  # how long media gets to (not) connect without the option; aioice fails its checks in ~7 s
HEAR_TIMEOUT = 60.0
PAGE_TIMEOUT = 90.0

each_client = pytest.mark.parametrize("client_version", ts_client_versions(), ids=lambda v: f"ts-client-{v}")


@pytest.fixture
def nat(lab: NetLab) -> Network:
    return nat_network(lab)


@pytest.fixture
def servers(nat: Network) -> Iterator[list[NetServer]]:
    started: list[NetServer] = []
    yield started
    for server in started:
        server.server.stop()


def page_hears(agent_id: str, hz: float) -> Callable[[State], State | None]:
    def check(state: State) -> State | None:
        for entry in remote_tracks(state, agent_id).values():
            if steady_tone(entry.get("measurements") or [], hz, 20.0, 0.02, 4):
                return state
        return None

    return check


@pytest.mark.timeout(480)
@each_client
async def test_public_ip_lets_an_aiortc_peer_and_a_browser_talk_with_an_agent_through_1to1_nat(
    nat: Network, servers: list[NetServer], page_bundles: None, client_version: str, tmp_path: Path
) -> None:
    """With ``--rtc-public-ip 203.0.113.10`` both participants connect through the NAT, both ways."""
    shoal = start_shoal(nat.lab, nat.server, public_host=SERVER_PUBLIC, extra_args=["--rtc-public-ip", SERVER_PUBLIC])
    servers.append(shoal)
    room = create_room(shoal.server)
    agent = await speaking_agent(shoal.server, room, AGENT_HZ)
    python_id, python_token = create_webrtc_peer(shoal.server, room)
    browser_id, browser_token = create_webrtc_peer(shoal.server, room)

    python = ParticipantProcess(
        nat.participant,
        [PeerSpec("python", shoal.public_ws_url, python_token, PEER_HZ, listen_to=agent.peer_id)],
        connect_timeout=CONNECT_TIMEOUT,
    )
    wav = write_tone_wav(tmp_path / "microphone.wav", MIC_HZ, 5.0)
    page = BrowserPage(
        client_version=client_version, wav=wav, ws_url=shoal.public_ws_url, token=browser_token,
        name="browser", launcher=nat.participant.exec_args([]),
    )
    try:
        await python.start()
        page.start()
        with explained(python.report, page.report, shoal.log_tail, lambda: nft_counters(nat.router)):
            # The aiortc participant: its selected pair goes to the announced public address.
            connected = await python.wait_for("python", {"connected", "not_connected"}, CONNECT_TIMEOUT + 60)
            assert connected["event"] == "connected", f"the aiortc peer's media did not connect: {connected}"
            remote = connected["pair"]["remote"]
            assert remote["address"] == SERVER_PUBLIC, f"selected pair goes to {remote}, not the public address"
            assert all(SERVER_PRIVATE not in c for c in connected["server_candidates"]), (
                f"the server announced its private address: {connected['server_candidates']}"
            )
            heard = await python.wait_for("python", {"heard"}, HEAR_TIMEOUT)
            assert_tone("the aiortc peer heard the agent", heard["hz"], heard["rms"], AGENT_HZ)
            hz, level = await wait_agent_hears(agent, python_id, 1.5, HEAR_TIMEOUT)
            assert_tone("the agent heard the aiortc peer", hz, level, PEER_HZ)

            # The official ts-client in Chromium, in the same namespace.
            await page.wait_for(
                page_hears(agent.peer_id, AGENT_HZ), PAGE_TIMEOUT,
                f"the browser to play the agent's {AGENT_HZ:.0f} Hz track", fail_if=page_gave_up,
            )
            hz, level = await wait_agent_hears(agent, browser_id, 1.5, HEAR_TIMEOUT)
            assert_tone("the agent heard the browser", hz, level, MIC_HZ)
    finally:
        await asyncio.to_thread(page.stop)
        await python.stop()
        await agent.close()


@pytest.mark.timeout(300)
async def test_without_public_ip_signaling_works_but_media_never_connects(
    nat: Network, servers: list[NetServer]
) -> None:
    """Without ``--rtc-public-ip`` the server announces 198.51.100.10, which the participant cannot reach."""
    shoal = start_shoal(nat.lab, nat.server, public_host=SERVER_PUBLIC)
    servers.append(shoal)
    agent, peer_id, python = await agent_and_python_participant(shoal, nat.participant, PEER_HZ, NO_MEDIA_WAIT)
    try:
        await python.start()
        with explained(python.report, shoal.log_tail, lambda: nft_counters(nat.router), lambda: nft_counters(nat.participant)):
            # Signaling works: the peer joined over 203.0.113.10 and the server answered its offer.
            joined = await python.wait_for("python", {"joined"}, CONNECT_TIMEOUT)
            assert joined["endpoint_id"] == peer_id
            answered = await python.wait_for("python", {"answered"}, CONNECT_TIMEOUT)
            assert answered["answers"] >= 1
            # Media does not: within a bounded wait ICE never connects.
            outcome = await python.wait_for("python", {"connected", "not_connected"}, NO_MEDIA_WAIT + 60)
            assert outcome["event"] == "not_connected", f"media connected without --rtc-public-ip: {outcome}"
            candidates = outcome["server_candidates"]
            assert candidates and all(SERVER_PRIVATE in c and SERVER_PUBLIC not in c for c in candidates), (
                f"the server should announce only its private address without the option: {candidates}"
            )
            # Why: the participant's checks to 198.51.100.10 died at the router, the server's own
            # checks at the participant's firewall.
            assert drop_counter(nft_counters(nat.router), r"198\.51\.100\.0/24 counter") > 0
            assert drop_counter(nft_counters(nat.participant), r"udp counter") > 0
            assert len(agent_heard(agent, peer_id)) == 0, "the agent heard the peer, so media did connect"
    finally:
        await python.stop()
        await agent.close()
