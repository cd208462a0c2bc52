"""Direct socket writes (shoal.api.ws_direct): the path through uvicorn's internals, and when it is taken.

A server started with ``--debug-direct-writes`` writes every frame directly: a participant's
tone reaches the agent intact, in order, each frame counted as written directly — so a
uvicorn that no longer has what the path needs fails here, not in production. A server left
to itself writes directly only while its event loop is behind (``LoopLagMonitor``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client import Histogram
from prometheus_client.registry import CollectorRegistry

from shoal.metrics import LoopLagMonitor
from shoal.testing import ToneSource, WebRTCPeer
from tests.shoal.test_metrics import scrape, value
from tests.support.agent_client import RawAgent, create_room
from tests.support.audio import dominant_frequency
from tests.support.peers import join
from tests.support.server import ServerProcess, start_server


@pytest.fixture(scope="module")
def direct() -> Iterator[ServerProcess]:
    proc = start_server(["--debug-direct-writes"])
    try:
        yield proc
    finally:
        proc.stop()


async def test_frames_written_directly_reach_the_agent_intact_and_in_order(
    direct: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    before = scrape(direct)
    room = create_room(direct)
    agent = await RawAgent.join(direct, room)
    alice = await join(direct, room, "alice")
    peers.append(alice)
    track = await alice.publish_audio(ToneSource(440))
    await agent.wait_samples(track, 16000 * 2, timeout=15)
    after = scrape(direct)
    delivered = value(after, "shoal_agent_frames_delivered_total") - value(before, "shoal_agent_frames_delivered_total")
    written = value(after, "shoal_agent_frames_written_directly_total") - value(
        before, "shoal_agent_frames_written_directly_total"
    )
    assert delivered >= 100
    assert written >= 0.95 * delivered, f"{written} of {delivered} frames written directly"
    pcm = np.frombuffer(b"".join(agent.received[track].chunks[-50:]), dtype="<i2")
    assert abs(dominant_frequency(pcm, 16000) - 440) < 5
    times = agent.received[track].times[-100:]
    assert 1.2 < times[-1] - times[0] < 4.0, "paced in real time, not bunched"
    await agent.close()


def block_the_loop(seconds: float) -> None:
    """What a long loop iteration does to everything else on the loop."""
    time.sleep(seconds)


async def test_the_lag_monitor_says_behind_after_a_stall_and_not_when_the_loop_keeps_up() -> None:
    monitor = LoopLagMonitor(Histogram("lag", "lag", registry=CollectorRegistry()), interval=0.02)
    monitor.start()
    try:
        await asyncio.sleep(0.1)
        asyncio.get_running_loop().call_soon(block_the_loop, 0.2)
        seen = []
        for _ in range(40):  # the monitor's first wake-up after the block is ~200 ms late
            await asyncio.sleep(0.005)
            seen.append(monitor.is_behind())
        assert any(seen), "a 200 ms stall was not seen"
        for _ in range(200):  # up to 10 s on a slow machine; a wake-up or two on a quiet one
            if not monitor.is_behind():
                break
            await asyncio.sleep(0.05)
        assert not monitor.is_behind(), "once the loop keeps up again, frames go through the writer task"
    finally:
        await monitor.close()
