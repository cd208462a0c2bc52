"""The dashboard's data in cluster mode: one node's snapshot holds every node's rooms, each with its owner."""

from __future__ import annotations

import httpx

from tests.cluster.conftest import running_cluster


def test_any_node_shows_every_room_of_the_cluster_with_the_node_it_lives_on() -> None:
    with running_cluster(2) as cluster:
        rooms = [cluster.create_room(via=0) for _ in range(6)]
        owners = {room: f"node-{cluster.owner(room)}" for room in rooms}
        assert len(set(owners.values())) == 2, f"placement put every room on one node: {owners}"
        headers = {"authorization": f"Bearer {cluster.nodes[0].token}"}
        for index, node in enumerate(cluster.nodes):
            merged = httpx.get(f"{node.url}/dashboard/api/snapshot", headers=headers, timeout=10).json()
            assert {room["id"]: room["node"] for room in merged["rooms"]} == owners
            assert {(n["id"], n["reachable"]) for n in merged["nodes"]} == {("node-0", True), ("node-1", True)}
            local = httpx.get(f"{node.url}/dashboard/api/snapshot", params={"local": "1"}, headers=headers, timeout=10).json()
            assert {room["id"] for room in local["rooms"]} == {r for r, owner in owners.items() if owner == f"node-{index}"}
            assert "nodes" not in local

        cluster.nodes[1].stop()  # a node that goes away is shown as unreachable until its heartbeat expires
        merged = httpx.get(f"{cluster.nodes[0].url}/dashboard/api/snapshot", headers=headers, timeout=10).json()
        gone = [n for n in merged["nodes"] if n["id"] == "node-1"]
        assert gone == [] or gone[0]["reachable"] is False
        assert {room["id"] for room in merged["rooms"]} == {r for r, owner in owners.items() if owner == "node-0"}
