"""Cluster faults with real processes: a node killed, Redis stopped and started again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest

from fishjam.events import ServerMessageRoomCrashed
from shoal.cluster.node import NODE_TTL_S
from shoal.protocol.pb import server_pb
from shoal.testing import ToneSource, WebRTCPeer
from tests.cluster.conftest import Cluster, start_nodes
from tests.compat.webhook_receiver import webhook_receiver
from tests.support.agent_client import RawAgent
from tests.support.notify import collecting, wait_for
from tests.support.redis import RedisProcess
from tests.support.server import ServerProcess

CRASH_BOUND_S = 10.0
"""docs/cluster.md: a dead node's rooms are reported within this bound."""


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A fresh Redis and three nodes per test: these tests break them."""
    redis = RedisProcess()
    redis.start()
    nodes: list[ServerProcess] = []
    try:
        nodes = start_nodes(redis, 3)
        yield Cluster(redis, nodes)
    finally:
        for node in nodes:
            node.stop()
        redis.stop()


def room_on(cluster: Cluster, node: int, **config: object) -> str:
    """A room placed on ``node``: create through it until placement puts one there."""
    with cluster.client(node) as client:
        for _ in range(30):
            response = client.post("/room", json=config)
            assert response.status_code == 201, response.text
            room_id: str = response.json()["data"]["room"]["id"]
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
