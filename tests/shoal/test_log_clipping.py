"""Client-chosen ids in log lines are clipped and escaped, and repeated refusals log once.

Issue 10, hole 5: ``InterruptTrack``/``RemoveTrack`` for an unknown track logged the whole
id — 400 frames with 900 KB ids wrote 352 MB of log in under a second — and a newline in
an id forged a log line.
"""

from __future__ import annotations

import asyncio
import uuid

from tests.support.agent_client import RawAgent, create_room
from tests.support.server import ServerProcess

FORGED = "FORGED-LINE shoal.rooms: room deleted by admin"


def log_size(server: ServerProcess) -> int:
    return server.log_path.stat().st_size


def log_text_since(server: ServerProcess, offset: int) -> str:
    with server.log_path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


async def test_huge_unknown_track_ids_write_a_bounded_log_and_forge_no_line(server: ServerProcess) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    # The control: a short unknown id is logged (so the server does log these refusals).
    marker = uuid.uuid4().hex
    before = log_size(server)
    await agent.remove_track(marker)
    huge = ("x" * 450_000) + "\n" + FORGED + "\n" + ("y" * 450_000)
    for _ in range(200):
        await agent.remove_track(huge)
        await agent.interrupt(huge)
    # A frame after the flood proves the server has read everything before it.
    track_id = await agent.add_track()
    await agent.send_audio(track_id, b"\x00\x00" * 320)
    for _ in range(500):
        if marker in log_text_since(server, before) and track_id in log_text_since(server, before):
            break
        await asyncio.sleep(0.02)
    grown = log_size(server) - before
    text = log_text_since(server, before)
    assert marker in text, "the refusal of an unknown track was not logged at all"
    assert agent.closed is None, f"the agent's socket was closed: {agent.closed}"
    # 400 refusals of 900 KB ids: raw that was 360 MB; clipped and logged once per cause, a few KB.
    assert grown < 64 * 1024, f"log grew by {grown} bytes"
    assert not any(line.startswith(FORGED) for line in text.splitlines()), "a newline in an id forged a log line"
    await agent.close()
