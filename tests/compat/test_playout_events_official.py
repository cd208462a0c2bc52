"""The official server SDKs never see shoal's playout events (docs/protocol-extensions.md).

In one room, shoal's SDK agent asks for playout events and plays a tone while an official
agent — the Python ``fishjam-server-sdk`` in one test, the JS ``@fishjam-cloud/js-server-sdk``
in the other — plays, interrupts and listens. The server's count of playout events sent
must equal what shoal's agent received, so none went to the official agent; the official
agent still hears shoal's tone. The JS SDK logs every agent message it cannot decode: it
logs none, and logs the one real PlayoutEvent frame handed to it at the end (the control).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fishjam.agent import IncomingPlayoutEvent, OutgoingAudioTrackOptions
from shoal.protocol.agent import playout_event
from tests.compat.runner import run_scenario
from tests.compat.test_js_server_sdk import JS_DIR
from tests.shoal.test_metrics import scrape, value
from tests.shoal.test_playout_events import Events, sdk_agent
from tests.support.agent_client import create_room
from tests.support.audio import tone
from tests.support.server import ServerProcess


async def beside_an_agent_that_asks(
    server: ServerProcess, room: str, official: Callable[[], Awaitable[Any]]
) -> tuple[Any, float, Events]:
    """Run ``official`` while shoal's agent, which asked for events, plays 3 s in ``room``."""
    before = value(scrape(server), "shoal_agent_playout_events_total")
    agent, connecting = await sdk_agent(server, room)
    async with connecting as session:
        assert session.playout_events
        events = Events(session)
        running = asyncio.create_task(official())
        await asyncio.sleep(0.5)  # the official agent has joined and publishes
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
        await track.send_chunk(tone(440, 3.0, 16000))
        result = await asyncio.wait_for(running, 60)
        await asyncio.wait_for(track.wait_for_playout(), 10)
        await asyncio.sleep(0.2)
        events.close()
    sent = value(scrape(server), "shoal_agent_playout_events_total") - before
    return result, sent, events


async def test_the_official_python_sdk_agent_gets_no_playout_events(server: ServerProcess) -> None:
    room = create_room(server)
    result, sent, events = await beside_an_agent_that_asks(
        server, room, lambda: asyncio.to_thread(run_scenario, "playout_quiet", "quiet", server, room_id=room)
    )
    assert sent == len(events.items) >= 5, "every event the server sent went to the agent that asked"
    assert result["kinds"].get("AgentResponseTrackData", 0) >= 10, f"the official agent heard shoal's tone: {result}"
    assert set(result["kinds"]) == {"AgentResponseTrackData"}


async def test_the_official_js_sdk_agent_gets_no_playout_events(server: ServerProcess) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; install Node.js >= 20 to run the JS SDK test", pytrace=False)
    room = create_room(server)
    control = base64.b64encode(playout_event("t", "finished", 0.0, 1.0, 0.0, 1)).decode()
    env = {**os.environ, "SHOAL_URL": server.url, "SHOAL_TOKEN": server.token, "SHOAL_ROOM": room,
           "SHOAL_CONTROL_FRAME": control}

    def run_js() -> dict[str, Any]:
        proc = subprocess.run(
            [node, "playout_quiet.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        lines = proc.stdout.strip().splitlines()
        assert proc.returncode == 0 and lines, f"playout_quiet.mjs failed ({proc.returncode}): {proc.stderr}"
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    result, sent, events = await beside_an_agent_that_asks(server, room, lambda: asyncio.to_thread(run_js))
    assert sent == len(events.items) >= 5
    assert result["control"] == 1, "the JS SDK logs a PlayoutEvent it is handed (the detector works)"
    assert result["undecodable"] == 0, "the JS SDK was sent a message it could not decode"
    assert result["audioChunks"] >= 10, f"the JS agent heard shoal's tone: {result}"
    assert all(isinstance(event, IncomingPlayoutEvent) for _, event in events.items)
