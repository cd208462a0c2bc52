"""Room capacity limits (issue 10, hole 4: rooms never expired; rooms and peers were unbounded).

A real server each: ``--max-rooms`` refuses one room too many with 503 and lets a new one in
once a room is deleted; ``--max-peers-per-room`` bounds every room, and a room's ``maxPeers``
can lower but never raise it; ``--room-peerless-purge-timeout`` deletes a room nobody has been
connected to for that long, keeps a room with a connected agent, and purges it once the agent
has left. Every refusal is counted in ``GET /limits/stats`` and logged once per cause.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.agent_client import RawAgent, create_room, rest
from tests.support.server import ServerProcess, start_server


@pytest.fixture
def capped() -> Iterator[ServerProcess]:
    server = start_server(["--max-rooms", "3", "--max-peers-per-room", "2"])
    try:
        yield server
    finally:
        server.stop()


def add_peer(client: httpx.Client, room_id: str) -> httpx.Response:
    return client.post(f"/room/{room_id}/peer", json={"type": "webrtc", "options": {}})


def test_one_room_over_max_rooms_gets_503_and_deleting_one_makes_room(capped: ServerProcess) -> None:
    with rest(capped) as client:
        rooms = [create_room(capped) for _ in range(3)]
        refused = [client.post("/room", json={}) for _ in range(5)]
        assert {response.status_code for response in refused} == {503}
        assert "limit of 3 rooms" in refused[0].json()["errors"]
        assert len(client.get("/room").json()["data"]) == 3, "a refused room must not be created"
        assert client.delete(f"/room/{rooms[0]}").status_code == 204
        assert client.post("/room", json={}).status_code == 201
        stats = client.get("/limits/stats").json()
    assert stats["refused"]["rooms.max_rooms"] == 5
    assert capped.log_text().count("room creation refused") == 1, "one log line per cause, not per request"


def test_max_peers_per_room_bounds_every_room_and_max_peers_only_lowers_it(capped: ServerProcess) -> None:
    with rest(capped) as client:
        unset, higher, lower = create_room(capped), create_room(capped, maxPeers=5), create_room(capped, maxPeers=1)
        for room_id in (unset, higher):
            assert [add_peer(client, room_id).status_code for _ in range(2)] == [201, 201]
            third = add_peer(client, room_id)
            assert third.status_code == 409
            assert "peer limit of 2" in third.json()["errors"]
        assert [add_peer(client, lower).status_code for _ in range(2)] == [201, 409]
        assert len(client.get(f"/room/{higher}").json()["data"]["peers"]) == 2
        stats = client.get("/limits/stats").json()
    assert stats["refused"]["rooms.max_peers_per_room"] == 2
    assert stats["refused"]["rooms.max_peers"] == 1


def room_exists(client: httpx.Client, room_id: str) -> bool:
    status = client.get(f"/room/{room_id}").status_code
    assert status in (200, 404)
    return status == 200


def wait_gone(client: httpx.Client, room_id: str, timeout: float = 20.0) -> float:
    """Seconds until the room is gone (fails if it outlives ``timeout``)."""
    start = time.monotonic()
    while room_exists(client, room_id):
        assert time.monotonic() - start < timeout, f"room {room_id} was not purged within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - start


async def test_rooms_without_connected_peers_are_purged_and_a_connected_agent_keeps_its_room() -> None:
    server = start_server(["--room-peerless-purge-timeout", "1"])
    try:
        with rest(server) as client:
            kept = create_room(server)
            agent = await RawAgent.join(server, kept)
            empty = create_room(server)
            never_connected = create_room(server)
            assert add_peer(client, never_connected).status_code == 201
            # The control rooms show the purge runs; the room with a connected agent outlives them.
            await asyncio.to_thread(wait_gone, client, empty)
            await asyncio.to_thread(wait_gone, client, never_connected)
            await asyncio.sleep(2.0)
            assert room_exists(client, kept), "a room with a connected peer must not be purged"
            assert agent.closed is None
            await agent.close()
            waited = await asyncio.to_thread(wait_gone, client, kept)
            assert waited >= 0.5, "the timeout counts from the moment the last peer left"
            assert client.get("/limits/stats").json()["purged_rooms"] == 3
        assert server.log_text().count("peerless purge timeout") == 3
    finally:
        server.stop()


def test_purge_is_off_with_zero() -> None:
    """``0`` disables the purge: a peerless room outlives a window in which a 1 s timeout would purge it."""
    server = start_server(["--room-peerless-purge-timeout", "0"])
    try:
        room_id = create_room(server)
        time.sleep(3.0)
        with rest(server) as client:
            assert room_exists(client, room_id)
            assert client.get("/limits/stats").json()["purged_rooms"] == 0
    finally:
        server.stop()
