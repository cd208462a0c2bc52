"""fishjam.integrations.pipecat against a real shoal: a Pipecat pipeline of the transport and a small
processor that answers each utterance with a tone, talking to a WebRTC participant (aiortc).

* The participant says 440 Hz; the pipeline hears it as ``UserAudioRawFrame`` (the peer's id,
  16 kHz), gets the server's voice activity as VAD frames, answers with 1 s of 660 Hz, and the
  participant hears exactly that. ``BotStoppedSpeakingFrame`` comes when the answer's last
  frame reaches the participant — not when Pipecat wrote it, which is ``playout_lead_secs``
  (100 ms) earlier.
* Speaking over a 3 s answer makes the processor broadcast an interruption; the answer stops at
  the participant within 100 ms of the participant's speech starting.
* Participant events from the room's notifications: joined (first and each) and left.
* Against a server that grants no extensions (``--no-agent-extensions``, as Fishjam cloud):
  the participant's audio still arrives, no VAD frames do, and BotStoppedSpeaking is timed by
  the SDK's local pacing, still close to the last frame's arrival.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from fishjam import AgentOptions, AgentOutputOptions, FishjamClient
from fishjam.integrations.pipecat import FishjamParams, FishjamTransport
from shoal.testing import RemoteTrack, WebRTCPeer, start_server
from shoal.testing.talker import Talker, heard_spans, tone_level
from tests.support.agent_client import create_room
from tests.support.peers import caller_of
from tests.support.server import ServerProcess

RATE = 16000
ANSWER_HZ = 660


def tone(freq: float, seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16).tobytes()


class Answerer(FrameProcessor):
    """Answers each utterance with a tone (lengths from ``answers``); interrupts when spoken over."""

    def __init__(self, answers: list[float]) -> None:
        super().__init__(name="answerer")
        self.answers = answers
        self.seen: list[tuple[str, float]] = []  # (what, time.monotonic())
        self.audio_from: set[tuple[str, int]] = set()  # (user_id, sample_rate)
        self._bot_speaking = False

    def times(self, what: str) -> list[float]:
        return [at for name, at in self.seen if name == what]

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, UserAudioRawFrame):
            self.audio_from.add((frame.user_id, frame.sample_rate))
            return
        now = time.monotonic()
        if isinstance(frame, BotStartedSpeakingFrame) and direction == FrameDirection.UPSTREAM:
            self._bot_speaking = True
            self.seen.append(("bot started", now))
        elif isinstance(frame, BotStoppedSpeakingFrame) and direction == FrameDirection.UPSTREAM:
            self._bot_speaking = False
            self.seen.append(("bot stopped", now))
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self.seen.append(("user started", now))
            if self._bot_speaking:
                self.seen.append(("interrupt", now))
                await self.broadcast_interruption()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self.seen.append(("user stopped", now))
            if self.answers:
                await self.push_frame(TTSStartedFrame())
                await self.push_frame(TTSAudioRawFrame(audio=tone(ANSWER_HZ, self.answers.pop(0)), sample_rate=RATE, num_channels=1))
                await self.push_frame(TTSStoppedFrame())
        await self.push_frame(frame, direction)


@dataclass
class Call:
    transport: FishjamTransport
    answerer: Answerer
    participant: WebRTCPeer
    talker: Talker
    reply: RemoteTrack
    events: list[tuple[str, str]]


@asynccontextmanager
async def a_call(
    server: ServerProcess, peers: list[WebRTCPeer], answers: list[float], extensions: bool = True
) -> AsyncIterator[Call]:
    room = create_room(server)
    client = FishjamClient(server.url, server.token)
    agent = await asyncio.to_thread(client.create_agent, room, AgentOptions(output=AgentOutputOptions(audio_sample_rate=RATE)))
    transport = FishjamTransport(
        agent, FishjamParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE), management_token=server.token
    )
    events: list[tuple[str, str]] = []
    for name in ("on_participant_joined", "on_first_participant_joined"):
        transport.event_handler(name)(lambda _t, peer_id, name=name: events.append((name, peer_id)))
    transport.event_handler("on_participant_left")(lambda _t, peer_id, reason: events.append(("on_participant_left", peer_id)))
    answerer = Answerer(answers=list(answers))
    worker = PipelineWorker(
        Pipeline([transport.input(), answerer, transport.output()]),
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    call_worker.append(worker)
    try:
        for _ in range(200):
            if transport.track is not None:
                break
            await asyncio.sleep(0.05)
        assert transport.track is not None, "the transport never published its track"
        assert transport.server_playout_events is extensions, "the transport should use playout events when offered"
        caller = await caller_of(server, room, transport.track.id, peers)
        yield Call(transport, answerer, caller.peer, caller.talker, caller.reply, events)
    finally:
        call_worker.remove(worker)
        await runner.cancel()
        await asyncio.wait_for(running, 10)


call_worker: list[PipelineWorker] = []
"""The running call's pipeline worker (for tests that queue frames into it)."""


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_the_pipeline_hears_the_participant_and_the_participant_hears_its_answer(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    async with a_call(server, peers, answers=[1.0]) as call:
        said = call.talker.say(440, 0.8)
        await until(lambda: call.answerer.times("bot stopped"))
        await asyncio.sleep(0.3)
        assert said.started is not None and said.ended is not None
        assert call.answerer.audio_from == {(call.participant.endpoint_id, RATE)}
        assert call.answerer.times("user started")[0] > said.started
        spans = heard_spans(call.reply.recording, ANSWER_HZ, since=said.started)
        assert len(spans) == 1, f"{ANSWER_HZ} Hz reached the participant as {spans}"
        (first, last), = spans
        assert first > said.ended, "the answer started before the participant stopped"
        # aiortc's receiver hands a frame out only with 4 more behind it (its prefetch), so the
        # last 5 frames of a burst stay in its buffer until the next burst: 45 of 50 come out.
        heard_s = 0.02 * sum(1 for at, frame in call.reply.recording.timed_frames() if at >= first and tone_level(frame, ANSWER_HZ) > 1500)
        assert heard_s == pytest.approx(0.9, abs=0.04), "the participant heard a different amount of the answer"
        assert not heard_spans(call.reply.recording, 440, since=said.started), "the bot played the participant back"
        # BotStoppedSpeaking follows the server's playout: it comes as the answer's last packet
        # reaches the participant (whose arrival makes aiortc hand out the last frame seen).
        # Written-out time (no playout events) would be playout_lead_secs (100 ms) earlier.
        stopped = call.answerer.times("bot stopped")[0]
        assert stopped == pytest.approx(last, abs=0.04), f"bot stopped {1000 * (stopped - last):.0f} ms after the last packet arrived"
        started = call.answerer.times("bot started")[0]
        assert started < first + 0.02, "BotStartedSpeaking came after the answer was heard"


async def test_speaking_over_the_bot_stops_its_audio_at_the_participant_within_100_ms(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    async with a_call(server, peers, answers=[3.0, 0.2]) as call:
        said = call.talker.say(440, 0.6)
        assert said is not None
        await until(lambda: heard_spans(call.reply.recording, ANSWER_HZ, since=said.started or 0.0))
        await asyncio.sleep(0.5)
        barge = call.talker.say(880, 0.6)
        await until(lambda: call.answerer.times("interrupt"))
        await asyncio.sleep(1.0)
        spans = heard_spans(call.reply.recording, ANSWER_HZ, since=said.started or 0.0)
        (first, last), *_ = spans
        assert barge.started is not None
        assert last - first < 1.5, "the 3 s answer was not cut short"
        stopped_after = last + 0.02 - barge.started
        print(f"pipecat interruption: the answer ended {1000 * stopped_after:.0f} ms after the participant spoke")
        assert 0 < stopped_after <= 0.1
        interrupt = call.answerer.times("interrupt")[0]
        assert interrupt - barge.started < 0.1


async def test_participants_joining_and_leaving_come_from_the_rooms_notifications(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    async with a_call(server, peers, answers=[]) as call:
        peer_id = call.participant.endpoint_id
        assert ("on_first_participant_joined", peer_id) in call.events
        assert call.events.count(("on_participant_joined", peer_id)) == 1
        assert call.transport.participants == {peer_id}
        await call.participant.close()
        await until(lambda: ("on_participant_left", peer_id) in call.events)
        assert call.transport.participants == set()


async def test_without_the_extensions_bot_speech_is_timed_by_local_pacing(peers: list[WebRTCPeer]) -> None:
    plain = await asyncio.to_thread(start_server, ["--no-agent-extensions"])
    try:
        async with a_call(plain, peers, answers=[], extensions=False) as call:
            said = call.talker.say(440, 0.6)
            await until(lambda: call.answerer.audio_from)
            await asyncio.sleep(1.5)
            assert said.started is not None
            assert call.answerer.audio_from == {(call.participant.endpoint_id, RATE)}
            assert not call.answerer.times("user started"), "VAD frames without voice activity from the server"
            worker = call_worker[0]
            await worker.queue_frames([
                TTSStartedFrame(), TTSAudioRawFrame(audio=tone(ANSWER_HZ, 1.0), sample_rate=RATE, num_channels=1), TTSStoppedFrame(),
            ])
            await until(lambda: call.answerer.times("bot stopped"))
            await asyncio.sleep(0.3)
            spans = heard_spans(call.reply.recording, ANSWER_HZ, since=said.started)
            assert len(spans) == 1, f"{ANSWER_HZ} Hz reached the participant as {spans}"
            (first, last), = spans
            stopped = call.answerer.times("bot stopped")[0]
            assert stopped == pytest.approx(last, abs=0.06), f"bot stopped {1000 * (stopped - last):.0f} ms after the last packet arrived"
    finally:
        await asyncio.to_thread(plain.stop)
