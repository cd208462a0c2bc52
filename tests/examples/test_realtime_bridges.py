"""examples/openai_realtime_bridge.py and examples/gemini_live_bridge.py, each run as a program against a
real shoal with a WebRTC participant, talking to a local stand-in for its cloud API
(tests/support/fake_realtime.py, the documented WebSocket protocol; the only fake: the internet).

1. The participant says 440 Hz and falls silent; the service answers with 660 Hz, streamed
   faster than real time; the participant hears the answer, paced, after speaking.
2. The participant speaks over a 4 s answer: the service stops answering, the bridge
   interrupts the track, and the answer stops at the participant long before its end. The
   OpenAI bridge also tells the service how much of the answer was heard
   (``conversation.item.truncate``), which must match what reached the participant.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoal.testing import RemoteTrack, WebRTCPeer
from shoal.testing.talker import AgentProgram, Talker, heard_spans, tone_level
from tests.support.agent_client import create_room
from tests.support.fake_realtime import FakeGeminiLive, FakeOpenAIRealtime, _FakeService
from tests.support.peers import caller_of
from tests.support.server import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BRIDGES = {
    "openai": (EXAMPLES / "openai_realtime_bridge.py", FakeOpenAIRealtime, "OPENAI_API_KEY"),
    "gemini": (EXAMPLES / "gemini_live_bridge.py", FakeGeminiLive, "GEMINI_API_KEY"),
}


@dataclass
class Call:
    bridge: AgentProgram
    service: _FakeService
    talker: Talker
    reply: RemoteTrack


@asynccontextmanager
async def a_call(
    which: str, server: ServerProcess, peers: list[WebRTCPeer], replies: list[tuple[float, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Call]:
    script, fake, key_variable = BRIDGES[which]
    async with fake(replies) as service:
        monkeypatch.setenv(key_variable, service.api_key)
        room = create_room(server)
        bridge = AgentProgram(script, "--url", server.url, "--token", server.token, "--room", room, "--model-url", service.url)
        try:
            ready = await bridge.wait_for("ready")
            assert ready["playout_events"] is True
            caller = await caller_of(server, room, ready["track_id"], peers, name="caller")
            yield Call(bridge, service, caller.talker, caller.reply)
        finally:
            bridge.stop()


@pytest.mark.parametrize("which", sorted(BRIDGES))
async def test_the_caller_hears_the_models_answer_paced_after_speaking(
    which: str, server: ServerProcess, peers: list[WebRTCPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with a_call(which, server, peers, [(660, 1.0)], monkeypatch) as call:
        said = call.talker.say(440, 0.8)
        await call.bridge.wait_for("answering")
        await asyncio.sleep(2.0)
        assert said.started is not None and said.ended is not None
        spans = heard_spans(call.reply.recording, 660, since=said.started)
        assert len(spans) == 1, f"660 Hz reached the caller as {spans}"
        (first, last), = spans
        assert first > said.ended + 0.4, "the answer came before the service's turn detection ended the turn"
        # Sent 5x faster than real time, heard in real time: 50 frames, less the 5 aiortc's
        # receiver holds back at the end of a burst (its prefetch).
        assert last - first == pytest.approx(0.88, abs=0.06), f"the 1 s answer was heard over {last - first:.2f} s"
        loud = sum(1 for at, frame in call.reply.recording.timed_frames() if at >= first and tone_level(frame, 660) > 1500)
        assert loud == pytest.approx(45, abs=2)
        assert not heard_spans(call.reply.recording, 440, since=said.started)
        assert not call.bridge.events("interrupted")
        setup = call.service.received[0]
        if which == "openai":
            assert setup["type"] == "session.update"
            assert setup["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        else:
            assert setup["setup"]["generationConfig"]["responseModalities"] == ["AUDIO"]


@pytest.mark.parametrize("which", sorted(BRIDGES))
async def test_speaking_over_the_model_stops_its_answer_at_the_caller(
    which: str, server: ServerProcess, peers: list[WebRTCPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with a_call(which, server, peers, [(660, 4.0)], monkeypatch) as call:
        said = call.talker.say(440, 0.6)
        for _ in range(200):
            if heard_spans(call.reply.recording, 660, since=said.started or 0.0):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.6)
        barge = call.talker.say(880, 0.6)
        interrupted = await call.bridge.wait_for("interrupted")
        await asyncio.sleep(2.0)  # the uninterrupted answer would still be playing at the end of this
        assert barge.started is not None
        spans = heard_spans(call.reply.recording, 660, since=said.started or 0.0)
        assert len(spans) == 1, f"660 Hz reached the caller as {spans}"
        (first, last), = spans
        assert last < first + 2.0, "the 4 s answer was not cut short"
        assert last > barge.started - 0.05, "the answer stopped before anyone spoke over it"
        stopped_ms = 1000 * (last + 0.02 - barge.started)
        print(f"{which} bridge: the answer ended {stopped_ms:.0f} ms after the caller spoke")
        assert stopped_ms < 300, "the answer went on after the service said it was interrupted"
        assert call.service.interrupted == 1
        if which == "openai":
            truncates = [m for m in call.service.received if m["type"] == "conversation.item.truncate"]
            assert len(truncates) == 1 and truncates[0]["item_id"] == interrupted["item_id"]
            # What the server had played when interrupted; the caller's first frame came out
            # after aiortc's 4-frame prefetch, so it heard from ~100 ms in.
            heard_ms = 1000 * (last + 0.02 - first) + 100
            assert truncates[0]["audio_end_ms"] == pytest.approx(heard_ms, abs=60)
