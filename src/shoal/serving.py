"""Running the server process: uvicorn with a drain on SIGTERM, and ``--workers`` as N nodes.

SIGTERM first drains (``Shoal.drain``: no new rooms, rooms may finish within the drain
timeout, then sockets close with 1001) and only then lets uvicorn stop; a second SIGTERM or
SIGINT stops at once. ``--workers N`` runs N ``shoal serve`` processes on consecutive ports,
each one node of the cluster named by ``--redis``: one process uses one core (its event loop),
so N nodes use N cores.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from types import FrameType
from typing import Any

import uvicorn

from shoal.server import Shoal

log = logging.getLogger("shoal")


class DrainingServer(uvicorn.Server):
    """``uvicorn.Server`` whose first SIGTERM drains the node before stopping."""

    def __init__(self, config: uvicorn.Config, shoal: Shoal) -> None:
        super().__init__(config)
        self._shoal = shoal
        self._drain_requested = False
        self._drain: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not self._drain_requested and self._loop is not None and self._shoal.config.drain_s > 0:
            self._drain_requested = True
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        async def drain_then_stop() -> None:
            try:
                await self._shoal.drain()
            finally:
                self.should_exit = True

        self._drain = asyncio.get_running_loop().create_task(drain_then_stop(), name="drain")


def run_workers(count: int, port: int, node_id: str, argv: list[str]) -> int:
    """Run ``count`` nodes as child processes on ports ``port`` … ``port + count - 1``; wait for them.

    SIGTERM and SIGINT are passed on to every child (each drains); the exit code is the
    first non-zero one of theirs.
    """
    children: list[subprocess.Popen[bytes]] = []
    for index in range(count):
        child_argv = [*argv, "--workers", "1", "--port", str(port + index), "--node-id", f"{node_id}-{index}"]
        children.append(subprocess.Popen([sys.executable, "-m", "shoal", *child_argv]))
        log.info("worker %d: node %s-%d on port %d (pid %d)", index, node_id, index, port + index, children[-1].pid)

    def forward(sig: int, _: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                os.kill(child.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    failed = [code for code in codes if code not in (0, -signal.SIGTERM, -signal.SIGINT)]
    return failed[0] if failed else 0
