"""Shared fixtures: a real shoal server process on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import ServerProcess, start_server


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One shoal server for the whole test session (tests create their own rooms)."""
    proc = start_server()
    try:
        yield proc
    finally:
        proc.stop()
