"""Outbox with a direct writer: frames leave in the order they were put, whichever path each takes.

A seeded random writer refuses some frames (as a paused transport would) and a slow async
send keeps the queue busy at times; 200,000 frames must reach the socket exactly once and in
order, and the direct path must be taken only when nothing is waiting.
"""

from __future__ import annotations

import asyncio
import random

from shoal.signaling.outbox import Outbox
from shoal.tally import Tally


async def test_200k_frames_keep_their_order_across_direct_and_queued_writes() -> None:
    rng = random.Random(5)
    tally = Tally()
    outbox = Outbox(limit=1_000_000, policy="drop_oldest", name="test", tally=tally)
    socket: list[bytes] = []
    paused = False

    def direct(frame: bytes) -> bool:
        if paused:
            return False
        socket.append(frame)
        return True

    async def send(frame: bytes) -> None:
        if rng.random() < 0.01:
            await asyncio.sleep(0)  # the transport was paused: this write waits a loop iteration
        socket.append(frame)

    outbox.write_directly(direct)
    writer = asyncio.create_task(outbox.run(send))
    total = 200_000
    for n in range(total):
        if n % 1000 == 0:
            paused = rng.random() < 0.3
        outbox.put(n.to_bytes(4, "big"))
        if rng.random() < 0.05:
            await asyncio.sleep(0)
    paused = False
    outbox.close()
    await writer
    assert [int.from_bytes(f, "big") for f in socket] == list(range(total))
    assert outbox.sent == total and outbox.dropped == 0
    assert 0 < outbox.sent_directly < total
    assert tally.agent_frames_written_directly == outbox.sent_directly


async def test_nothing_is_written_directly_while_frames_wait_in_the_queue() -> None:
    outbox = Outbox(limit=10, policy="drop_oldest", name="test")
    socket: list[bytes] = []
    outbox.write_directly(lambda frame: False)  # paused
    outbox.put(b"1")
    outbox.put(b"2")
    outbox.write_directly(lambda frame: socket.append(frame) is None)  # resumed; the queue is not empty
    outbox.put(b"3")
    assert socket == [] and len(outbox) == 3
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    writer = asyncio.create_task(outbox.run(send))
    await asyncio.sleep(0)
    outbox.put(b"4")  # the queue has drained: this one goes directly
    outbox.close()
    await writer
    assert sent == [b"1", b"2", b"3"] and socket == [b"4"]
