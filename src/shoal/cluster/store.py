"""The cluster's shared facts in Redis: live nodes, room owners, token owners.

Keys (all under ``shoal:``):

* ``node:{id}`` — hash of ``NodeInfo`` fields, expiring ``ttl`` after the node's last
  heartbeat, so a node that dies leaves the registry by itself; ``nodes`` — set of ids
  ever registered (members whose hash expired are dead and are removed by survivors).
* ``room:{room_id}`` — the owner's node id; ``node-rooms:{id}`` — the rooms a node owns,
  for the survivors to report when that node dies.
* ``room-webhook:{room_id}`` — JSON ``{"url", "batched"}`` of a room with a webhook, so a
  survivor can send its ``RoomCrashed``; ``reaping:{id}`` — which survivor reports a dead node.
* ``token:{token}`` — JSON ``{"room", "peer", "node"}``: where a socket with that token
  belongs; ``peer-token:{peer_id}`` — the peer's current token, to revoke it.

Every method raises ``redis.RedisError`` (or ``OSError``) when Redis cannot be reached;
callers turn that into 503 or a retry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis

from shoal.cluster.placement import NodeInfo

PREFIX = "shoal:"


@dataclass(frozen=True)
class TokenRoute:
    room_id: str
    peer_id: str
    node_id: str


class ClusterStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def close(self) -> None:
        await self._redis.aclose()

    # nodes -------------------------------------------------------------------------------

    async def heartbeat(self, node: NodeInfo, ttl_s: float) -> None:
        key = f"{PREFIX}node:{node.id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=dict(node.to_fields()))  # type: ignore[arg-type]  # str keys and values
            pipe.pexpire(key, int(ttl_s * 1000))
            pipe.sadd(f"{PREFIX}nodes", node.id)
            await pipe.execute()

    async def count_room(self, node_id: str) -> None:
        """One more room on the node now, before its next heartbeat says so."""
        await self._redis.hincrby(f"{PREFIX}node:{node_id}", "rooms", 1)

    async def nodes(self) -> tuple[list[NodeInfo], list[str]]:
        """The live nodes, and the ids of registered nodes whose heartbeat has expired."""
        ids = sorted(_texts(await self._redis.smembers(f"{PREFIX}nodes")))
        if not ids:
            return [], []
        async with self._redis.pipeline(transaction=False) as pipe:
            for node_id in ids:
                pipe.hgetall(f"{PREFIX}node:{node_id}")
            hashes = await pipe.execute()
        live: list[NodeInfo] = []
        dead: list[str] = []
        for node_id, fields in zip(ids, hashes, strict=True):
            if fields and "id" in fields:
                live.append(NodeInfo.from_fields(fields))
            else:
                dead.append(node_id)
        return live, dead

    async def node(self, node_id: str) -> NodeInfo | None:
        fields = await self._redis.hgetall(f"{PREFIX}node:{node_id}")
        return NodeInfo.from_fields(fields) if fields and "id" in fields else None  # type: ignore[arg-type]

    # rooms -------------------------------------------------------------------------------

    async def set_rooms(self, node_id: str, room_ids: list[str]) -> None:
        if not room_ids:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for room_id in room_ids:
                pipe.set(f"{PREFIX}room:{room_id}", node_id)
            pipe.sadd(f"{PREFIX}node-rooms:{node_id}", *room_ids)
            await pipe.execute()

    async def set_room_webhook(self, room_id: str, url: str, batched: bool) -> None:
        await self._redis.set(f"{PREFIX}room-webhook:{room_id}", json.dumps({"url": url, "batched": batched}))

    async def room_webhooks(self, room_ids: list[str]) -> dict[str, tuple[str, bool]]:
        if not room_ids:
            return {}
        raw = await self._redis.mget([f"{PREFIX}room-webhook:{room_id}" for room_id in room_ids])
        found = {}
        for room_id, value in zip(room_ids, _texts(raw), strict=True):
            if value:
                hook = json.loads(value)
                found[room_id] = (str(hook["url"]), bool(hook["batched"]))
        return found

    async def claim_reap(self, dead_id: str, by: str) -> bool:
        """True for exactly one survivor: the one that reports the dead node's rooms."""
        return bool(await self._redis.set(f"{PREFIX}reaping:{dead_id}", by, nx=True, px=60_000))

    async def delete_room(self, node_id: str, room_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{PREFIX}room:{room_id}")
            pipe.delete(f"{PREFIX}room-webhook:{room_id}")
            pipe.srem(f"{PREFIX}node-rooms:{node_id}", room_id)
            await pipe.execute()

    async def room_owner(self, room_id: str) -> str | None:
        return _text(await self._redis.get(f"{PREFIX}room:{room_id}"))

    async def rooms_of(self, node_id: str) -> list[str]:
        return sorted(_texts(await self._redis.smembers(f"{PREFIX}node-rooms:{node_id}")))

    # tokens ------------------------------------------------------------------------------

    async def set_tokens(self, node_id: str, grants: list[tuple[str, str, str]]) -> None:
        """Route each ``(token, room_id, peer_id)`` to the node; a peer's older token stops routing."""
        if not grants:
            return
        old_tokens = await self._redis.mget([f"{PREFIX}peer-token:{peer_id}" for _, _, peer_id in grants])
        async with self._redis.pipeline(transaction=True) as pipe:
            for (token, room_id, peer_id), old in zip(grants, _texts(old_tokens), strict=True):
                if old and old != token:
                    pipe.delete(f"{PREFIX}token:{old}")
                route = json.dumps({"room": room_id, "peer": peer_id, "node": node_id})
                pipe.set(f"{PREFIX}token:{token}", route)
                pipe.set(f"{PREFIX}peer-token:{peer_id}", token)
            await pipe.execute()

    async def revoke_peer(self, peer_id: str) -> None:
        token = _text(await self._redis.getdel(f"{PREFIX}peer-token:{peer_id}"))
        if token is not None:
            await self._redis.delete(f"{PREFIX}token:{token}")

    async def token_route(self, token: str) -> TokenRoute | None:
        raw = await self._redis.get(f"{PREFIX}token:{token}")
        if raw is None:
            return None
        route = json.loads(raw)
        return TokenRoute(route["room"], route["peer"], route["node"])

    async def forget_node(self, node_id: str) -> dict[str, tuple[str, bool] | None]:
        """Remove a node's registration and rooms; returns each room it owned with its webhook.

        Its tokens stay until they are reused or revoked: they route to a node that is not
        live, and a socket with one is refused as an invalid token.
        """
        rooms = await self.rooms_of(node_id)
        hooks = await self.room_webhooks(rooms)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{PREFIX}node:{node_id}")
            for room_id in rooms:
                pipe.delete(f"{PREFIX}room:{room_id}")
                pipe.delete(f"{PREFIX}room-webhook:{room_id}")
            pipe.delete(f"{PREFIX}node-rooms:{node_id}")
            pipe.srem(f"{PREFIX}nodes", node_id)
            await pipe.execute()
        return {room_id: hooks.get(room_id) for room_id in rooms}


def _text(value: bytes | str | None) -> str | None:
    """A reply as text (the client decodes replies; bytes only if someone configured it not to)."""
    return value.decode() if isinstance(value, bytes) else value


def _texts(values: object) -> list[str]:
    return [_text(value) or "" for value in values]  # type: ignore[attr-defined]
