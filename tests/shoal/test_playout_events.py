"""Playout events (shoal's agent-socket extension) against a real server.

The sender is shoal's SDK with ``connect(playout_events=True)``; the receiver is another
agent in the room, recording when each frame of the sender's tone reaches it. The events
must describe that audio: STARTED with its first frame, FINISHED with its last (± 20 ms),
``queued_duration`` counting down with it, an interrupt acknowledged with what it dropped.
A socket that did not ask gets none of them, and its ``Authenticated`` is the plain ``0a 00``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect

from fishjam import AgentOptions, FishjamClient
from fishjam.agent import AgentSession, IncomingPlayoutEvent, OutgoingAudioTrackOptions, OutgoingTrack
from fishjam.api._options import AgentOutputOptions
from tests.shoal.test_metrics import scrape, value
from tests.support.agent_client import RawAgent, create_room
from tests.support.audio import dominant_frequency, rms, tone
from tests.support.server import ServerProcess

TOLERANCE_S = 0.02
Kind = IncomingPlayoutEvent.Kind


class Events:
    """Every playout event the SDK session yields, with its arrival time."""

    def __init__(self, session: AgentSession) -> None:
        self.items: list[tuple[float, IncomingPlayoutEvent]] = []
        self.others = 0
        self._task = asyncio.create_task(self._read(session))

    async def _read(self, session: AgentSession) -> None:
        async for message in session.receive():
            if isinstance(message, IncomingPlayoutEvent):
                self.items.append((time.monotonic(), message))
            else:
                self.others += 1

    def kinds(self) -> list[int]:
        return [event.kind for _, event in self.items]

    def last(self, kind: int) -> tuple[float, IncomingPlayoutEvent]:
        return next(item for item in reversed(self.items) if item[1].kind == kind)

    def close(self) -> None:
        self._task.cancel()


async def sdk_agent(server: ServerProcess, room_id: str) -> tuple[Any, Any]:
    client = FishjamClient(server.url, server.token)
    options = AgentOptions(output=AgentOutputOptions(audio_sample_rate=16000))
    agent = await asyncio.to_thread(client.create_agent, room_id, options)
    return agent, agent.connect(playout_events=True)


async def test_started_and_finished_arrive_with_the_first_and_last_frame_the_receiver_gets(server: ServerProcess) -> None:
    room = create_room(server)
    receiver = await RawAgent.join(server, room)
    agent, connecting = await sdk_agent(server, room)
    async with connecting as session:
        assert session.playout_events
        events = Events(session)
        track: OutgoingTrack = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
        audio = tone(440, 1.0, 16000)
        for start in range(0, len(audio), 6400):  # five chunks of 200 ms, at once
            await track.send_chunk(audio[start:start + 6400])
        assert track.queued_duration == pytest.approx(1.0, abs=0.05)
        await asyncio.sleep(0.5)
        halfway = track.queued_duration
        await asyncio.wait_for(track.wait_for_playout(), 5)
        done_at = time.monotonic()
        await asyncio.sleep(0.2)
        events.close()
    got = receiver.received[track.id]
    first_frame, last_frame = got.times[0], got.times[-1]

    assert abs(dominant_frequency(got.pcm, 16000) - 440) < 5 and rms(got.pcm) > 4000
    assert len(got.pcm) == 16000
    kinds = events.kinds()
    assert kinds[0] == Kind.KIND_STARTED and kinds[-1] == Kind.KIND_FINISHED
    assert kinds[1:-1] == [Kind.KIND_PROGRESS] * 4, kinds
    started_at, started = events.last(Kind.KIND_STARTED)
    finished_at, finished = events.last(Kind.KIND_FINISHED)
    assert abs(started_at - first_frame) <= TOLERANCE_S, f"STARTED {1000 * (started_at - first_frame):+.1f} ms off"
    assert abs(finished_at - last_frame) <= TOLERANCE_S, f"FINISHED {1000 * (finished_at - last_frame):+.1f} ms off"
    assert abs(done_at - last_frame) <= TOLERANCE_S, "wait_for_playout returned away from the last frame"
    assert (finished.queued_ms, finished.played_ms, finished.chunks_received) == (0, 1000, 5)
    played_by_half = sum(1 for t in got.times if t <= first_frame + 0.5) * 0.02
    assert halfway == pytest.approx(1.0 - played_by_half, abs=0.06)
    for at, event in events.items:  # queued + the chunks the report does not cover yet = what the receiver still gets
        uncovered = 0.2 * (5 - event.chunks_received)
        still_to_come = sum(1 for t in got.times if t > at + TOLERANCE_S) * 0.02
        assert event.queued_ms / 1000 + uncovered == pytest.approx(still_to_come, abs=0.06), (at - first_frame, event)
    await receiver.close()


async def test_an_interrupt_is_acknowledged_with_what_it_dropped_and_the_receiver_hears_no_more(server: ServerProcess) -> None:
    room = create_room(server)
    receiver = await RawAgent.join(server, room)
    agent, connecting = await sdk_agent(server, room)
    async with connecting as session:
        events = Events(session)
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
        await track.send_chunk(tone(523, 5.0, 16000))
        await receiver.wait_samples(track.id, 8000)
        heard_before = len(receiver.received[track.id].times)
        await track.interrupt()
        await asyncio.wait_for(track.wait_for_playout(), 5)
        acked_at = time.monotonic()
        assert track.queued_duration == 0
        await asyncio.sleep(0.5)
        events.close()
    got = receiver.received[track.id]
    _, ack = events.last(Kind.KIND_INTERRUPTED)
    played = ack.played_ms / 1000
    assert ack.queued_ms == 0 and ack.dropped_ms / 1000 == pytest.approx(5.0 - played, abs=0.021)
    assert len(got.pcm) / 16000 == pytest.approx(played, abs=0.021), "the receiver got what the ack says played"
    assert heard_before >= 25, "frames were arriving before the interrupt"
    assert not [t for t in got.times if t > acked_at + TOLERANCE_S], "audio arrived after the acknowledgement"
    assert Kind.KIND_FINISHED not in events.kinds()
    await receiver.close()


async def test_a_socket_that_does_not_ask_gets_no_playout_events(server: ServerProcess) -> None:
    """A raw agent without the opt-in plays and interrupts beside an agent that asked; the
    server's count of events sent equals what the one that asked received."""
    room = create_room(server)
    plain = await RawAgent.join(server, room)
    before = value(scrape(server), "shoal_agent_playout_events_total")
    agent, connecting = await sdk_agent(server, room)
    async with connecting as session:
        events = Events(session)
        asking = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
        quiet = await plain.add_track()
        await asking.send_chunk(tone(440, 0.6, 16000))
        await plain.send_audio(quiet, tone(660, 0.6, 16000))
        await asyncio.sleep(0.3)
        await plain.interrupt(quiet)
        await asyncio.wait_for(asking.wait_for_playout(), 5)
        await asyncio.sleep(0.3)
        events.close()
    sent = value(scrape(server), "shoal_agent_playout_events_total") - before
    assert sent == len(events.items) >= 3
    assert plain.auth_frame == b"\x0a\x00"
    assert set(plain.kinds) == {"track_data"}, "only audio reaches a socket that did not ask"
    await plain.close()


async def test_the_opt_in_is_granted_in_authenticated_and_a_bad_value_closes_with_a_reason(server: ServerProcess) -> None:
    room = create_room(server)
    asking = await RawAgent.join(server, room)
    await asking.close()
    again = RawAgent(server, asking.peer_id, asking.token)
    await again.connect(query="?playout_events=true")
    assert again.auth_frame != b"\x0a\x00" and again.auth_frame.startswith(b"\x0a")
    await again.close()
    async with connect(f"{server.ws_url}/socket/agent/websocket?playout_events=maybe") as ws:
        await ws.wait_closed()
    assert ws.close_code == 1008 and ws.close_reason is not None and "playout_events" in ws.close_reason
