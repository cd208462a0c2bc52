"""``/dashboard``'s data: a snapshot of this node's rooms, peers, tracks and counters, and a stream of them.

``GET /dashboard/api/snapshot`` and ``GET /dashboard/api/stream`` (server-sent events, one
snapshot every ``STREAM_PERIOD_S``) sit behind the management token like the REST API. A
snapshot holds, per room: its type and node; per peer: type, status, connected since, and for
WebRTC peers their media connection (state, RTT, loss, bitrate in and out from the byte counts
of the previous snapshot); per track: kind, codec, the live audio level and voice activity
(participants' tracks) or the queued playout seconds (agents' tracks); and the node's
forwarding counters. In cluster mode the node asked also asks every other live node for its
own rooms (``?local=1``, with the shared management token), so one dashboard shows the whole
cluster, each room with the node it lives on, and each node's counters under ``nodes``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from shoal.endpoints.agent import AgentEndpoint
from shoal.server import Shoal

STREAM_PERIOD_S = 0.5
NODE_TIMEOUT_S = 1.0


class Dashboard:
    def __init__(self, shoal: Shoal) -> None:
        self._shoal = shoal
        self._bytes: dict[str, tuple[float, int, int]] = {}  # peer id -> (when, received, sent)

    async def snapshot(self, local: bool = False) -> dict[str, Any]:
        """This node's view; with a cluster and not ``local``, every live node's rooms merged in."""
        mine = await self._local()
        cluster = self._shoal.cluster
        if local or cluster is None:
            return mine
        nodes = [{"id": mine["node"], "reachable": True, "forwarding": mine["forwarding"], "rooms": len(mine["rooms"])}]
        others = [node for node in await cluster.live_nodes() if node.id != mine["node"]]
        token = self._shoal.config.management_token
        async with httpx.AsyncClient(timeout=NODE_TIMEOUT_S, headers={"authorization": f"Bearer {token}"}) as client:
            for node in others:
                try:
                    response = await client.get(f"{node.internal_url}/dashboard/api/snapshot", params={"local": "1"})
                    response.raise_for_status()
                    theirs = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    nodes.append({"id": node.id, "reachable": False, "error": str(exc) or type(exc).__name__})
                    continue
                mine["rooms"].extend(theirs["rooms"])
                nodes.append({"id": node.id, "reachable": True, "forwarding": theirs["forwarding"], "rooms": len(theirs["rooms"])})
        mine["nodes"] = nodes
        return mine

    async def _local(self) -> dict[str, Any]:
        shoal = self._shoal
        node = shoal.config.node_id
        rooms: list[dict[str, Any]] = []
        live: set[str] = set()
        for room in shoal.manager.rooms():
            peers = [await self._peer(peer) for peer in room.peers.values()]
            live.update(peer.id for peer in room.peers.values())
            rooms.append({"id": room.id, "type": room.config.room_type.value, "node": node, "peers": peers})
        for gone in set(self._bytes) - live:
            del self._bytes[gone]
        return {
            "node": node,
            "cluster": shoal.cluster is not None,
            "at": time.time(),
            "rooms": rooms,
            "forwarding": dataclasses.asdict(shoal.tally),
        }

    async def _peer(self, peer: Any) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": peer.id, "type": peer.type.value, "status": peer.status.value,
            "connected_since": peer.connected_at, "metadata": peer.peer_metadata,
            "tracks": [{"track_id": t.id, "kind": t.kind.value} for t in peer.tracks.values()],
            "network": None,
        }
        endpoint = self._shoal.directory.session(peer.id)
        if endpoint is not None and endpoint.room_id == peer.room_id:
            view["tracks"] = endpoint.inbound_views()
            network = await endpoint.network_stats()
            view["network"] = {**network, **self._bitrates(peer.id, network)}
        receiver = self._shoal.router.receiver(peer.id)
        if isinstance(receiver, AgentEndpoint) and receiver.room_id == peer.room_id:
            view["tracks"] = receiver.track_views()
        return view

    def _bitrates(self, peer_id: str, network: dict[str, Any]) -> dict[str, float | None]:
        if "bytes_received" not in network:
            return {"kbps_in": None, "kbps_out": None}
        now = time.monotonic()
        before = self._bytes.get(peer_id)
        self._bytes[peer_id] = (now, network["bytes_received"], network["bytes_sent"])
        if before is None or now - before[0] <= 0:
            return {"kbps_in": None, "kbps_out": None}
        seconds = now - before[0]
        return {
            "kbps_in": round(8 * (network["bytes_received"] - before[1]) / seconds / 1000, 1),
            "kbps_out": round(8 * (network["bytes_sent"] - before[2]) / seconds / 1000, 1),
        }

    async def stream(self) -> AsyncIterator[bytes]:
        """Server-sent events: a ``snapshot`` event every ``STREAM_PERIOD_S`` until the client goes."""
        while True:
            yield b"event: snapshot\ndata: " + json.dumps(await self.snapshot()).encode() + b"\n\n"
            await asyncio.sleep(STREAM_PERIOD_S)
