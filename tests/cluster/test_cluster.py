"""Three shoal nodes sharing one real redis-server: placement, forwarding, relayed sockets, tokens."""

from __future__ import annotations

import asyncio
from collections import Counter
from urllib.parse import urlsplit

import pytest

from fishjam._proto import agent_notifications_pb2 as A
from fishjam.events import ServerMessageRoomDeleted
from shoal.testing import ToneSource, WebRTCPeer
from tests.cluster.conftest import Cluster
from tests.support.agent_client import RawAgent
from tests.support.audio import tone
from tests.support.notify import collecting, wait_for
from tests.support.peers import SETTLE_S, heard, spectrum_of


def add_peer(cluster: Cluster, via: int, room_id: str, kind: str) -> dict:
    body = {"type": kind, "options": {"output": {"audioSampleRate": 16000}} if kind == "agent" else {}}
    with cluster.client(via) as client:
        response = client.post(f"/room/{room_id}/peer", json=body)
        assert response.status_code == 201, response.text
        data: dict = response.json()["data"]
        return data


def test_rooms_spread_over_the_nodes_and_every_node_answers_for_each(cluster: Cluster) -> None:
    rooms = [cluster.create_room(0) for _ in range(21)]
    owners = Counter(cluster.owner(room_id) for room_id in rooms)
    assert set(owners) == {0, 1, 2} and min(owners.values()) >= 3, f"rooms per node: {dict(owners)}"

    for via in range(3):
        with cluster.client(via) as client:
            listed = {room["id"] for room in client.get("/room").json()["data"]}
            assert set(rooms) <= listed, f"node {via} lists {len(set(rooms) & listed)} of the 21 rooms"
            for room_id in rooms[:6]:
                response = client.get(f"/room/{room_id}")
                assert response.status_code == 200, response.text
                assert response.json()["data"]["id"] == room_id

    # Deleted through a node that does not own it: gone on every node.
    victim = rooms[0]
    other = (cluster.owner(victim) + 1) % 3
    with cluster.client(other) as client:
        assert client.delete(f"/room/{victim}").status_code == 204
    for via in range(3):
        with cluster.client(via) as client:
            response = client.get(f"/room/{victim}")
            assert response.status_code == 404 and "errors" in response.json()
    for room_id in rooms[1:]:
        with cluster.client(cluster.owner(room_id)) as client:
            client.delete(f"/room/{room_id}")


def test_peer_websocket_url_names_the_owner_node(cluster: Cluster) -> None:
    room_id = cluster.create_room(1)
    owner = cluster.owner(room_id)
    for via in range(3):
        data = add_peer(cluster, via, room_id, "webrtc")
        url = urlsplit(data["peer_websocket_url"])
        assert (url.scheme, url.port, url.path) == ("ws", urlsplit(cluster.nodes[owner].url).port, "/socket/peer/websocket")


async def test_an_agent_on_another_node_hears_the_peer_and_the_peer_hears_it(
    cluster: Cluster, peers: list[WebRTCPeer]
) -> None:
    room_id = cluster.create_room(0)
    owner = cluster.owner(room_id)
    elsewhere = (owner + 1) % 3
    agent_data = add_peer(cluster, 0, room_id, "agent")
    agent = RawAgent(cluster.nodes[elsewhere], agent_data["peer"]["id"], agent_data["token"])
    await agent.connect()  # relayed to the owner: the node it reached does not hold the room
    assert f"relayed to node node-{owner}" in cluster.nodes[elsewhere].log_text()

    peer_data = add_peer(cluster, 2, room_id, "webrtc")
    peer_url = peer_data["peer_websocket_url"].removesuffix("/socket/peer/websocket")
    alice = await WebRTCPeer.join(peer_url, peer_data["token"], metadata={"name": "alice"})
    peers.append(alice)
    alice_track = await alice.publish_audio(ToneSource(440))
    await agent.wait_samples(alice_track, int(16000 * (1.5 + SETTLE_S)), timeout=15)
    got, level = spectrum_of(agent.received[alice_track].pcm, 16000)
    assert abs(got - 440) < 10 and level > 1000, f"agent heard {got:.0f} Hz at level {level:.0f}"

    bot_track = await agent.add_track(rate=24000)
    await agent.send_audio(bot_track, tone(880, 3.0, 24000))
    remote = await alice.wait_for_remote_track(endpoint_id=agent.peer_id, timeout=10)
    freq, level = await heard(remote)
    assert abs(freq - 880) < 10 and level > 1000, f"peer heard {freq:.0f} Hz at level {level:.0f}"
    await agent.close()
    with cluster.client(owner) as client:
        client.delete(f"/room/{room_id}")


async def test_a_token_refreshed_on_one_node_fails_on_every_node(cluster: Cluster) -> None:
    room_id = cluster.create_room(2)
    data = add_peer(cluster, 2, room_id, "agent")
    peer_id, old_token = data["peer"]["id"], data["token"]
    with cluster.client(1) as client:
        response = client.post(f"/room/{room_id}/peer/{peer_id}/refresh_token")
        assert response.status_code == 201, response.text
        new_token = response.json()["data"]["token"]

    for via in range(3):
        stale = RawAgent(cluster.nodes[via], peer_id, old_token)
        await stale.connect(authenticate=False)
        await stale.send(A.AgentRequest(auth_request=A.AgentRequest.AuthRequest(token=old_token)))
        code, reason = await stale.wait_closed()
        assert (code, reason) == (1008, "invalid token"), f"node {via}: {code} {reason!r}"

    for via in range(3):
        fresh = RawAgent(cluster.nodes[via], peer_id, new_token)
        await fresh.connect()  # authenticated (connect waits for the reply), relayed where needed
        assert fresh.closed is None, f"node {via} closed the new token's socket: {fresh.closed}"
        await fresh.close()


@pytest.mark.parametrize("path", ["/room/not-a-room", "/room/not-a-room/peer"])
def test_an_unknown_room_is_404_on_every_node(cluster: Cluster, path: str) -> None:
    for via in range(3):
        with cluster.client(via) as client:
            response = client.get(path) if path.count("/") == 2 else client.post(path, json={"type": "agent"})
            assert response.status_code == 404, response.text


async def test_a_notifier_on_any_node_sees_every_notification_of_a_room_in_order(cluster: Cluster) -> None:
    async with collecting(cluster.nodes[0]) as at0, collecting(cluster.nodes[1]) as at1, collecting(cluster.nodes[2]) as at2:
        room_id = cluster.create_room(1)
        owner = cluster.owner(room_id)
        data = add_peer(cluster, (owner + 1) % 3, room_id, "agent")
        agent = RawAgent(cluster.nodes[(owner + 2) % 3], data["peer"]["id"], data["token"])
        await agent.connect()
        track = await agent.add_track()
        await agent.remove_track(track)
        await agent.close()
        with cluster.client((owner + 1) % 3) as client:
            assert client.delete(f"/room/{room_id}").status_code == 204
        for received in (at0, at1, at2):
            await wait_for(received, lambda n: isinstance(n, ServerMessageRoomDeleted) and n.room_id == room_id)

    def of_room(received: list[object]) -> list[str]:
        return [type(n).__name__ for n in received if getattr(n, "room_id", None) == room_id]

    reference = of_room([at0, at1, at2][owner])  # the owner delivers from its own event bus
    assert reference[0] == "RoomCreated" and reference[-1] == "RoomDeleted"
    for expected in ("PeerAdded", "PeerConnected", "TrackAdded", "TrackRemoved", "PeerDisconnected", "PeerDeleted"):
        assert expected in reference, reference
    for index, received in enumerate((at0, at1, at2)):
        assert of_room(received) == reference, f"node {index} (owner {owner})"
    with cluster.client(owner) as client:
        stats = client.get("/limits/stats").json()["cluster"]
    assert stats["node_id"] == f"node-{owner}" and stats["redis_available"] is True
    assert stats["notifications"]["published"] >= len(reference) and stats["notifications"]["dropped"] == 0


async def test_an_agent_relayed_from_another_node_keeps_its_playout_events_opt_in(cluster: Cluster) -> None:
    """The query string travels with the relayed socket: the owner grants the events and sends them."""
    room_id = cluster.create_room(0)
    elsewhere = (cluster.owner(room_id) + 1) % 3
    data = add_peer(cluster, 0, room_id, "agent")
    agent = RawAgent(cluster.nodes[elsewhere], data["peer"]["id"], data["token"])
    await agent.connect(query="?playout_events=true")
    granted = A.AgentResponse()
    granted.ParseFromString(agent.auth_frame)
    assert granted.authenticated.playout_events
    track = await agent.add_track()
    await agent.send_audio(track, tone(440, 0.3, 16000))
    for _ in range(100):
        if agent.kinds.count("playout_event") >= 2:
            break
        await asyncio.sleep(0.05)
    assert agent.kinds.count("playout_event") >= 2, agent.kinds
    await agent.close()
