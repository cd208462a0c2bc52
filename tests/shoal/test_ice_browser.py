"""Chromium with the official ts-client through ``--rtc-udp-port``: a browser's ICE on the shared port.

Browsers check several candidate pairs, nominate with USE-CANDIDATE and keep checking the
selected pair; the demultiplexer and the rebinding rule must get all of that right. This
runs the ts-client browser test (microphone to an agent, agent's track played by the page)
unchanged against a server whose media is on one UDP port, and then checks that port
carried it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import page_bundles
from tests.browser.test_ts_client import (
    each_client,
)
from tests.browser.test_ts_client import (
    test_browser_publishes_its_microphone_to_an_agent_and_plays_the_agents_track as browser_call,
)
from tests.shoal.ice_support import free_udp_port, rtc_stats, udp_sockets_of
from tests.support.server import ServerProcess, start_server

__all__ = ["page_bundles"]


@pytest.fixture(scope="module")
def media_port() -> int:
    return free_udp_port()


@pytest.fixture(scope="module")
def shoal(media_port: int) -> Iterator[ServerProcess]:
    proc = start_server(["--rtc-udp-port", str(media_port)])
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.timeout(480)
@each_client
async def test_a_browser_call_runs_through_the_one_udp_port(
    shoal: ServerProcess, media_port: int, page_bundles: None, client_version: str, tmp_path: Path
) -> None:
    """Fails if the shared port misroutes or drops a browser's checks or media (the agent
    would hear nothing, or the page would not play the agent's tone), or if the rebinding
    rule mistakes a browser's checks of other candidate pairs for a move."""
    await browser_call(shoal, page_bundles, client_version, tmp_path)
    assert {port for _, port in udp_sockets_of(shoal.process.pid)} == {media_port}
    stats = rtc_stats(shoal)
    assert stats["connections_gathered"] >= 1 and stats["shared"]["datagrams_in"] > 100, stats
    # A browser may switch among its own candidates by nominating (followed, and counted as
    # such); the server's silence rule must not move a browser that keeps checking in.
    assert stats["rebinds_followed"] == 0, f"a browser that stayed put was moved to another address: {stats}"
