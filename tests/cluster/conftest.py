"""Cluster fixtures: a real redis-server and shoal nodes sharing it (one token, one webhook secret)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from shoal.testing.redis import RedisProcess
from tests.support.server import ServerProcess, start_server


@dataclass
class Cluster:
    redis: RedisProcess
    nodes: list[ServerProcess]

    def client(self, index: int) -> httpx.Client:
        node = self.nodes[index]
        return httpx.Client(base_url=node.url, headers={"authorization": f"Bearer {node.token}"}, timeout=15)

    def create_room(self, via: int, **config: object) -> str:
        """A room created through node ``via`` (placed wherever placement puts it)."""
        with self.client(via) as client:
            response = client.post("/room", json=config)
            assert response.status_code == 201, response.text
            room_id: str = response.json()["data"]["room"]["id"]
            return room_id

    def owner(self, room_id: str) -> int:
        """Index of the node that holds the room, read from the directory in Redis."""
        owner_id = self.redis.client().get(f"shoal:room:{room_id}")
        assert owner_id is not None, f"room {room_id} is not in the directory"
        return [f"node-{index}" for index in range(len(self.nodes))].index(owner_id)


def start_nodes(redis: RedisProcess, count: int, *extra: str, token: str | None = None) -> list[ServerProcess]:
    token = token or "cluster-" + secrets.token_hex(8)
    env = {"SHOAL_WEBHOOK_SECRET": "whsec-" + secrets.token_hex(8)}
    nodes: list[ServerProcess] = []
    try:
        for index in range(count):
            # A short drain, so stopping a node with rooms open takes a second, not 30.
            args = ["--redis", redis.url, "--node-id", f"node-{index}", "--drain-timeout", "1", *extra]
            nodes.append(start_server(args, env, token))
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


@contextmanager
def running_cluster(count: int = 3) -> Iterator[Cluster]:
    """A fresh Redis and ``count`` nodes, all stopped afterwards (nodes a test added too)."""
    redis = RedisProcess()
    redis.start()
    nodes: list[ServerProcess] = []
    try:
        nodes = start_nodes(redis, count)
        yield Cluster(redis, nodes)
    finally:
        for node in nodes:
            node.stop()
        redis.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Three nodes and their Redis, for the tests of one module."""
    with running_cluster() as nodes:
        yield nodes
