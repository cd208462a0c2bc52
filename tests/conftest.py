"""Shared fixtures: a real shoal server process on a free loopback port; WebRTC peers closed after a test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from shoal.testing import WebRTCPeer
from tests.support.server import ServerProcess, start_server


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One shoal server for the whole test session (tests create their own rooms)."""
    proc = start_server()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def peers() -> AsyncIterator[list[WebRTCPeer]]:
    """Peers a test joins; all closed at the end."""
    joined: list[WebRTCPeer] = []
    yield joined
    await asyncio.gather(*(peer.close() for peer in joined), return_exceptions=True)
