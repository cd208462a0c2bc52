"""examples/parrot.py and its Pipecat twin examples/pipecat_parrot.py, each run as a program against
a real shoal, with a WebRTC participant talking to it.

1. The participant says 440 Hz for 1 s and falls silent: the parrot repeats it — 440 Hz
   reaches the participant, starting after the participant stopped (the parrot waits for the
   silence) and lasting about as long as the utterance.
2. The participant says 660 Hz for 2 s; while the parrot repeats it, the participant speaks
   again (880 Hz): the repeat stops early, long before its natural end, and the parrot says
   it was interrupted. (How fast: ``benchmarks/interruption.py``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from shoal.testing import WebRTCPeer
from shoal.testing.talker import AgentProgram, Talker, heard_spans
from tests.support.agent_client import create_room
from tests.support.peers import caller_of
from tests.support.server import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(params=["parrot.py", "pipecat_parrot.py"])
def parrot_program(request: pytest.FixtureRequest) -> Path:
    return EXAMPLES / request.param


@asynccontextmanager
async def talking_to_the_parrot(
    server: ServerProcess, peers: list[WebRTCPeer], program: Path
) -> AsyncIterator[tuple[AgentProgram, Talker, Any]]:
    room = create_room(server)
    parrot = AgentProgram(program, "--url", server.url, "--token", server.token, "--room", room)
    try:
        ready = await parrot.wait_for("ready")
        caller = await caller_of(server, room, ready["track_id"], peers)
        yield parrot, caller.talker, caller.reply
    finally:
        parrot.stop()


async def test_the_parrot_repeats_an_utterance_after_the_speaker_stops(
    server: ServerProcess, peers: list[WebRTCPeer], parrot_program: Path
) -> None:
    async with talking_to_the_parrot(server, peers, parrot_program) as (parrot, talker, reply):
        said = talker.say(440, 1.0)
        await parrot.wait_for("repeating")
        await asyncio.sleep(2.5)
        assert said.started is not None and said.ended is not None
        spans = heard_spans(reply.recording, 440, since=said.started)
        assert len(spans) == 1, f"440 Hz reached the participant as {spans}"
        (first, last), = spans
        assert first > said.ended + 0.4, "the repeat started before the speaker had been silent for the hangover"
        assert last - first == pytest.approx(1.0, abs=0.15), f"the repeat lasted {last - first:.2f} s"
        assert not parrot.events("interrupted")


async def test_speaking_over_the_parrot_stops_it_long_before_its_repeat_would_end(
    server: ServerProcess, peers: list[WebRTCPeer], parrot_program: Path
) -> None:
    async with talking_to_the_parrot(server, peers, parrot_program) as (parrot, talker, reply):
        said = talker.say(660, 2.0)
        repeating = await parrot.wait_for("repeating")
        for _ in range(100):  # until the repeat is playing at the participant
            if heard_spans(reply.recording, 660, since=said.started or 0.0):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.4)
        barge = talker.say(880, 1.0)
        await parrot.wait_for("interrupted")
        await asyncio.sleep(1.0)
        spans = heard_spans(reply.recording, 660, since=said.started or 0.0)
        assert len(spans) == 1, f"660 Hz reached the participant as {spans}"
        (first, last), = spans
        natural_end = first + repeating["seconds"]
        assert barge.started is not None
        assert last < natural_end - 1.0, "the repeat was not cut short"
        assert last > barge.started - 0.1, "the repeat stopped before anyone spoke over it"
        print(f"interruption: the repeat ended {1000 * (last + 0.02 - barge.started):.0f} ms after the participant spoke")
