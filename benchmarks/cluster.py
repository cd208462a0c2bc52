"""Cluster benchmark: how many participant → agent streams 1 node and 2 nodes carry, and REST via a non-owner.

Capacity. For each node count (default 1 and 2) it climbs a ladder of N (participants, each
alone in a room with one agent taking 16 kHz pcm16), exactly the load of
``benchmarks/webrtc_ingest.py`` and measured by its machinery: a fresh ``redis-server`` and
fresh nodes (``shoal serve --redis … --node-id …``, sharing one management token) for every
step; rooms, agents and peer tokens are created through node 0, so placement spreads them;
each agent (shoal's SDK) and each participant connect to the node ``peer_websocket_url`` names,
the room's owner. A step passes when at most 1 % of the frames sent in the window are missing
at the agents, no sender was paused, no peer hung up, and the p99 latency (packet sent by the
participant → its frame at the agent) is at most 50 ms. The capacity of a node count is the
largest N that passed before the first failure; the ratio is capacity(2) / capacity(1).
Server CPU is the sum over the nodes and Redis.

The clients (WebRTC senders, agents) run on the same machine and cost more CPU per stream
than shoal does (the table shows each side's cores), so on a small machine the machine, not
the nodes, sets the ceiling of both rows. ``--debug-media-cost-ms X`` models a heavier media
pipeline instead: every node's event loop is held for X ms per media datagram it reads (a
sleep, which takes the loop's time but no CPU from the clients), so a node runs out of loop
time — the limit one process has and a second node lifts — before the machine runs out of
cores.

REST. On a quiet 2-node cluster: rooms owned by node 1 are read (``GET /room/{id}``) and given
a peer (``POST /room/{id}/peer``, then ``DELETE``) through node 1 itself and through node 0,
which forwards to the owner; requests alternate between the two paths; percentiles per path.

Run: ``.venv/bin/python benchmarks/cluster.py [--nodes 1,2] [--peers 40,60,80,...] [--seconds 10]
[--warmup 5] [--debug-media-cost-ms X] [--rest-requests 300] [--skip-capacity | --skip-rest]``
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import time
from dataclasses import dataclass, field

import numpy as np
import webrtc_ingest as ingest

from shoal.testing import ServerProcess, start_server
from shoal.testing.redis import RedisProcess

MAX_LOSS = 0.01
MAX_P99_MS = 50.0
DEFAULT_LADDER = ",".join(str(n) for n in range(40, 201, 10))


def start_cluster(nodes: int, extra: list[str]) -> ingest.Deployment:
    """A fresh Redis and ``nodes`` shoal nodes sharing it (one management token, one webhook secret)."""
    redis = RedisProcess()
    redis.start()
    token = "bench-" + secrets.token_hex(8)
    env = {"SHOAL_WEBHOOK_SECRET": "whsec-" + secrets.token_hex(8)}
    servers: list[ServerProcess] = []
    try:
        for index in range(nodes):
            args = [
                *ingest.shoal_args(), *extra,
                "--redis", redis.url, "--node-id", f"bench-{index}",
                "--drain-timeout", "0",  # the benchmark stops nodes with rooms open
            ]
            servers.append(start_server(args, env, token))
    except BaseException:
        for server in servers:
            server.stop()
        redis.stop()
        raise
    assert redis.process is not None
    return ingest.Deployment(servers, {"redis": redis.process.pid}, on_stop=redis.stop)


@dataclass
class Step:
    nodes: int
    result: ingest.Result
    reasons: list[str] = field(default_factory=list)  # why it failed; empty when it passed

    @property
    def passed(self) -> bool:
        return not self.reasons


def judge(nodes: int, r: ingest.Result) -> Step:
    step = Step(nodes, r)
    if r.error is not None:
        step.reasons.append(f"error: {r.error.splitlines()[0] if r.error.strip() else r.error}")
        return step
    if r.streams < r.n:
        step.reasons.append(f"only {r.streams}/{r.n} tracks published")
    loss = 1 - r.delivered / r.sent if r.sent else 1.0
    if loss > MAX_LOSS:
        step.reasons.append(f"loss {100 * loss:.1f} % > {100 * MAX_LOSS:g} %")
    if r.paused_peers > 0:
        step.reasons.append(f"{r.paused_peers} senders paused by admission")
    if not r.latencies or r.pct(99) > MAX_P99_MS:
        step.reasons.append(f"p99 {r.pct(99):.1f} ms > {MAX_P99_MS:g} ms")
    if any("hung up" in note or "consent expired" in note or "not connected" in note for note in r.notes):
        step.reasons.append("peers hung up")
    return step


def print_step_header() -> None:
    print(
        f"{'nodes':>5} {'peers':>5} {'delivered/sent':>15} {'loss %':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'server cores (per node, redis)':>32} {'gens':>5} {'agents':>6} {'busy':>5} {'health max':>10}  verdict",
        flush=True,
    )


def print_step(step: Step) -> None:
    r = step.result
    if r.error is not None:
        print(f"{step.nodes:>5} {r.n:>5} failed: {step.reasons[0]}", flush=True)
        return
    loss = 100 * (1 - r.delivered / r.sent) if r.sent else math.nan
    nodes = [v for k, v in r.server_cores.items() if k != "server-redis"]
    cores = f"{sum(r.server_cores.values()):.2f} (" + " + ".join(f"{v:.2f}" for v in nodes)
    cores += f", {r.server_cores.get('server-redis', 0.0):.2f})"
    health = max(r.health_ms) if r.health_ms else math.nan
    lat_max = 1000 * max(r.latencies) if r.latencies else math.nan
    verdict = "pass" if step.passed else "FAIL: " + "; ".join(step.reasons)
    print(
        f"{step.nodes:>5} {r.n:>5} {r.delivered:>7}/{r.sent:<7} {loss:>6.2f} {r.pct(50):>7.1f} {r.pct(99):>7.1f} "
        f"{lat_max:>7.1f} {cores:>32} {ingest.fmt_cores(r.generator_cores)} {ingest.fmt_cores(r.agent_cores):>6} "
        f"{ingest.fmt_cores(r.busy_cores)} {health:>10.1f}  {verdict}",
        flush=True,
    )
    for note in r.notes:
        print(f"            note: {note}", flush=True)


async def capacity(node_counts: list[int], ladder: list[int], seconds: float, warmup: float, extra: list[str]) -> None:
    print()
    print(
        f"capacity: pass = loss <= {100 * MAX_LOSS:g} %, p99 <= {MAX_P99_MS:g} ms, no sender paused, no peer hung up; "
        f"{seconds:g} s window after {warmup:g} s warm-up; a fresh Redis and fresh nodes per step"
    )
    print_step_header()
    carried: dict[int, int] = {}
    for nodes in node_counts:
        ingest.START_SHOAL = lambda nodes=nodes: start_cluster(nodes, extra)  # type: ignore[misc]
        carried[nodes] = 0
        for n in ladder:
            step = judge(nodes, await ingest.run("shoal", n, seconds, warmup))
            print_step(step)
            if not step.passed:
                break
            carried[nodes] = n
    print()
    print("streams carried (largest passing N before the first failure):")
    for nodes, n in carried.items():
        top = "" if n < ladder[-1] else " (the top of the ladder: more may pass)"
        print(f"  {nodes} node{'s' if nodes > 1 else ''}: {n}{top}")
    if len(carried) >= 2 and carried[node_counts[0]] > 0:
        first = node_counts[0]
        for nodes in node_counts[1:]:
            print(f"  ratio {nodes} nodes / {first}: {carried[nodes] / carried[first]:.2f}x", flush=True)


async def rest_latency(requests: int) -> None:
    import httpx

    deployment = await asyncio.to_thread(start_cluster, 2, [])
    try:
        entry, owner = deployment.servers
        headers = {"authorization": f"Bearer {entry.token}"}
        async with (
            httpx.AsyncClient(base_url=entry.url, headers=headers, timeout=30) as via_other,
            httpx.AsyncClient(base_url=owner.url, headers=headers, timeout=30) as via_owner,
        ):
            rooms: list[str] = []
            while len(rooms) < 5:  # placement alternates; keep the rooms node 1 owns
                created = (await via_other.post("/room", json={})).json()["data"]["room"]["id"]
                if (await via_owner.get(f"/room/{created}", headers={"x-shoal-hop": "1"})).status_code == 200:
                    rooms.append(created)
            paths = {"owner (node 1)": via_owner, "non-owner (node 0, forwards)": via_other}
            samples: dict[tuple[str, str], list[float]] = {}
            for client in paths.values():  # warm both paths' connections
                await client.get(f"/room/{rooms[0]}")
            for i in range(requests):
                room = rooms[i % len(rooms)]
                for path, client in paths.items():
                    start = time.perf_counter()
                    response = await client.get(f"/room/{room}")
                    samples.setdefault(("GET /room/{id}", path), []).append(time.perf_counter() - start)
                    assert response.status_code == 200, response.text
                    if i % 3 == 0:
                        start = time.perf_counter()
                        response = await client.post(f"/room/{room}/peer", json={"type": "webrtc", "options": {}})
                        samples.setdefault(("POST /room/{id}/peer", path), []).append(time.perf_counter() - start)
                        assert response.status_code == 201, response.text
                        peer_id = response.json()["data"]["peer"]["id"]
                        start = time.perf_counter()
                        response = await client.delete(f"/room/{room}/peer/{peer_id}")
                        samples.setdefault(("DELETE /room/{id}/peer/{id}", path), []).append(time.perf_counter() - start)
                        assert response.status_code == 204, response.text
    finally:
        await asyncio.to_thread(deployment.stop)
    print()
    print("REST on a quiet 2-node cluster (rooms owned by node 1; one request at a time, the two paths alternating):")
    print(f"{'call':>28} {'via':>29} {'n':>5} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}")
    for (call, path), values in samples.items():
        ms = 1000 * np.array(values)
        print(
            f"{call:>28} {path:>29} {len(values):>5} {np.percentile(ms, 50):>7.2f} {np.percentile(ms, 90):>7.2f} "
            f"{np.percentile(ms, 99):>7.2f}",
            flush=True,
        )


async def main_async(args: argparse.Namespace) -> None:
    print(f"machine: {ingest.machine()}")
    print(f"server event loop: {'uvloop' if ingest.uvloop_factory() else 'asyncio'}")
    extra = ["--debug-media-cost-ms", str(args.debug_media_cost_ms)] if args.debug_media_cost_ms else []
    if extra:
        print(f"modelled media cost: each node's event loop held {args.debug_media_cost_ms:g} ms per media datagram")
    if not args.skip_capacity:
        nodes = [int(v) for v in args.nodes.split(",") if v.strip()]
        ladder = [int(v) for v in args.peers.split(",") if v.strip()]
        await capacity(nodes, ladder, args.seconds, args.warmup, extra)
    if not args.skip_rest:
        await rest_latency(args.rest_requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="1,2", help="comma-separated node counts")
    parser.add_argument("--peers", default=DEFAULT_LADDER, help="the ladder of N, climbed until a step fails")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of streaming before the window")
    parser.add_argument("--debug-media-cost-ms", type=float, default=0.0, help="model a heavier pipeline (see above)")
    parser.add_argument("--rest-requests", type=int, default=300, help="GET requests per path (a third also add a peer)")
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument("--skip-rest", action="store_true")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
