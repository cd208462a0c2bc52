"""Cluster faults with real processes: a node killed, Redis stopped and started again."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import numpy as np
import pytest

from fishjam.events import ServerMessageRoomCrashed
from shoal.cluster.node import NODE_TTL_S
from shoal.protocol.pb import server_pb
from shoal.server import DRAIN_REASON
from shoal.testing import ToneSource, WebRTCPeer
from tests.cluster.conftest import Cluster, running_cluster
from tests.compat.webhook_receiver import webhook_receiver
from tests.support.agent_client import RawAgent
from tests.support.notify import collecting, wait_for
from tests.support.server import start_server

CRASH_BOUND_S = 10.0
"""docs/cluster.md: a dead node's rooms are reported within this bound."""


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A fresh Redis and three nodes per test: these tests break them."""
    with running_cluster() as nodes:
        yield nodes


def room_on(cluster: Cluster, node: int, **config: object) -> str:
    """A room placed on ``node``: create through it until placement puts one there."""
    for _ in range(30):
        room_id = cluster.create_room(node, **config)
        if cluster.owner(room_id) == node:
            return room_id
    raise AssertionError(f"placement never chose node {node}")


async def streaming(cluster: Cluster, node: int, peers: list[WebRTCPeer]) -> tuple[RawAgent, str]:
    """A room on ``node`` where an agent hears a participant's 440 Hz tone (both connected to the owner)."""
    room_id = room_on(cluster, node)
    with cluster.client(node) as client:
        agent_data = client.post(f"/room/{room_id}/peer", json={"type": "agent"}).json()["data"]
        peer_data = client.post(f"/room/{room_id}/peer", json={"type": "webrtc", "options": {}}).json()["data"]
    agent = RawAgent(cluster.nodes[node], agent_data["peer"]["id"], agent_data["token"])
    await agent.connect()
    alice = await WebRTCPeer.join(cluster.nodes[node].ws_url, peer_data["token"])
    peers.append(alice)
    track = await alice.publish_audio(ToneSource(440))
    await agent.wait_samples(track, 16000, timeout=15)
    return agent, track


def frames_between(agent: RawAgent, track: str, start: float, end: float) -> tuple[int, float]:
    """Frames the agent got in [start, end] and the longest gap between them (s)."""
    times = np.array([t for t in agent.received[track].times if start <= t <= end])
    gaps = np.diff(np.concatenate(([start], times, [end])))
    return len(times), float(gaps.max())


async def test_a_killed_node_s_rooms_are_reported_crashed_and_the_others_keep_their_audio(
    cluster: Cluster, peers: list[WebRTCPeer]
) -> None:
    agent, track = await streaming(cluster, 1, peers)
    with webhook_receiver() as hooks:
        doomed = room_on(cluster, 2, webhookUrl=hooks.url("doomed"))
        async with collecting(cluster.nodes[0]) as notes:
            start = time.monotonic()
            cluster.nodes[2].process.kill()
            crashed = await wait_for(
                notes, lambda n: isinstance(n, ServerMessageRoomCrashed) and n.room_id == doomed, CRASH_BOUND_S + 2
            )
            reported_after = time.monotonic() - start
            assert isinstance(crashed, ServerMessageRoomCrashed)
            assert reported_after <= CRASH_BOUND_S, f"RoomCrashed after {reported_after:.1f} s"
            assert reported_after >= NODE_TTL_S - 1.5, "reported before the heartbeat could have expired"
            await asyncio.sleep(1.0)  # a second report would arrive by now
            assert sum(isinstance(n, ServerMessageRoomCrashed) and n.room_id == doomed for n in notes) == 1
        end = time.monotonic()

        crashes = hooks.wait_until("doomed", lambda got: any(b"\x0a" == d.body[:1] for d in got), 5)
        kinds = []
        for delivery in crashes:
            message = server_pb.ServerMessage()
            message.ParseFromString(delivery.body)
            kinds.append(message.WhichOneof("content"))
        assert kinds.count("room_crashed") == 1, kinds

    for via in (0, 1):
        with cluster.client(via) as client:
            assert client.get(f"/room/{doomed}").status_code == 404
    # The other room's audio went on throughout: ~50 frames a second, no gap.
    count, longest_gap = frames_between(agent, track, start, end)
    expected = (end - start) * 50
    assert count >= 0.9 * expected, f"{count} frames in {end - start:.1f} s (expected ~{expected:.0f})"
    assert longest_gap < 0.5, f"audio stopped for {longest_gap:.2f} s while the other node died"
    await agent.close()


async def test_redis_down_refuses_new_rooms_with_503_keeps_media_and_recovers(
    cluster: Cluster, peers: list[WebRTCPeer]
) -> None:
    agent, track = await streaming(cluster, 0, peers)
    elsewhere = room_on(cluster, 1)
    local = room_on(cluster, 0)

    cluster.redis.stop()
    start = time.monotonic()
    with cluster.client(0) as client:
        refused = client.post("/room", json={})
        assert refused.status_code == 503, refused.text
        assert "Redis" in refused.json()["errors"]
        # Its own rooms need no directory: answered as usual.
        assert client.get(f"/room/{local}").status_code == 200
    await asyncio.sleep(3)
    end = time.monotonic()
    count, longest_gap = frames_between(agent, track, start, end)
    assert count >= 0.9 * (end - start) * 50 and longest_gap < 0.5, (count, longest_gap)

    cluster.redis.start()  # empty: the nodes must register and publish their rooms again
    deadline = time.monotonic() + 10
    with cluster.client(0) as client:
        while (response := client.post("/room", json={})).status_code != 201:
            assert time.monotonic() < deadline, f"still {response.status_code} 10 s after Redis returned"
            await asyncio.sleep(0.2)
        while (found := client.get(f"/room/{elsewhere}")).status_code != 200:
            assert time.monotonic() < deadline, f"node 1's room still {found.status_code} via node 0"
            await asyncio.sleep(0.2)
    assert agent.closed is None
    await agent.close()


async def test_sigterm_drains_a_node_rooms_finish_and_no_new_room_lands_there(cluster: Cluster) -> None:
    patient = start_server(
        ["--redis", cluster.redis.url, "--node-id", "node-3", "--drain-timeout", "30"], token=cluster.nodes[0].token
    )
    cluster.nodes.append(patient)
    room_id = room_on(cluster, 3)
    with cluster.client(3) as client:
        data = client.post(f"/room/{room_id}/peer", json={"type": "agent"}).json()["data"]
    agent = RawAgent(cluster.nodes[0], data["peer"]["id"], data["token"])
    await agent.connect()  # relayed from node 0 to node 3

    patient.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    placed = [cluster.create_room(3) for _ in range(6)]
    assert all(cluster.owner(room) != 3 for room in placed), "a draining node took a new room"
    with cluster.client(0) as client:
        assert client.get(f"/room/{room_id}").status_code == 200  # its room goes on
    assert agent.closed is None and patient.process.poll() is None

    with cluster.client(1) as client:  # the room finishes: the node stops long before its 30 s
        assert client.delete(f"/room/{room_id}").status_code == 204
    started = time.monotonic()
    code = await asyncio.to_thread(patient.process.wait, 15)
    assert code == 0, patient.log_text()[-2000:]
    assert time.monotonic() - started < 10
    assert "drained: 0 of 1 rooms still open" in patient.log_text()


async def test_a_drain_timeout_closes_the_rooms_sockets_going_away_and_reports_the_rooms(cluster: Cluster) -> None:
    room_id = room_on(cluster, 2)
    with cluster.client(2) as client:
        direct_data = client.post(f"/room/{room_id}/peer", json={"type": "agent"}).json()["data"]
        relayed_data = client.post(f"/room/{room_id}/peer", json={"type": "agent"}).json()["data"]
    direct = RawAgent(cluster.nodes[2], direct_data["peer"]["id"], direct_data["token"])
    relayed = RawAgent(cluster.nodes[1], relayed_data["peer"]["id"], relayed_data["token"])
    await direct.connect()
    await relayed.connect()
    async with collecting(cluster.nodes[0]) as notes:
        cluster.nodes[2].process.send_signal(signal.SIGTERM)  # its drain timeout is 1 s
        for agent in (direct, relayed):
            code, reason = await agent.wait_closed(timeout=10)
            assert (code, reason) == (1001, DRAIN_REASON)
        await wait_for(notes, lambda n: isinstance(n, ServerMessageRoomCrashed) and n.room_id == room_id, 5)
    assert await asyncio.to_thread(cluster.nodes[2].process.wait, 15) == 0
    with cluster.client(0) as client:
        assert client.get(f"/room/{room_id}").status_code == 404

