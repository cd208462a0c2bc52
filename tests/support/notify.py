"""Collect server notifications with our SDK's notifier while a test runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fishjam import FishjamNotifier
from tests.support.server import ServerProcess


@asynccontextmanager
async def collecting(server: ServerProcess) -> AsyncIterator[list[object]]:
    received: list[object] = []
    notifier = FishjamNotifier(server.url, server.token)
    notifier.on_server_notification(received.append)
    task = asyncio.create_task(notifier.connect())
    await asyncio.wait_for(notifier.wait_ready(), 5)
    try:
        yield received
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def wait_for(received: list[object], predicate: Callable[[object], bool], timeout: float = 5.0) -> object:
    """The first notification matching ``predicate`` (waiting up to ``timeout`` seconds)."""
    async with asyncio.timeout(timeout):
        while True:
            for item in received:
                if predicate(item):
                    return item
            await asyncio.sleep(0.02)
