"""What shoal's SDK makes of playout events, and its local estimate without them (no sockets).

* With events: the last report's queue, counted down while the track plays, plus the chunks
  sent since that the report does not cover; ``wait()`` ends only at a FINISHED or
  INTERRUPTED that covers every chunk sent.
* Without (Fishjam cloud): real-time pacing from the first chunk of a burst; an interrupt
  empties it. Opus chunk durations come from the packet's TOC byte.
"""

from __future__ import annotations

import asyncio

import pytest

from fishjam._proto.agent_notifications_pb2 import AgentResponse
from fishjam.agent._playout import PlayoutState
from shoal.protocol.agent import playout_event
from tests.shoal.test_long_call_units import FakeTime


def event(kind: str, queued_ms: int, chunks: int) -> AgentResponse.PlayoutEvent:
    response = AgentResponse()
    response.ParseFromString(playout_event("t", kind, queued_ms / 1000, 0.0, 0.0, chunks))
    return response.playout_event


async def test_the_sdk_adds_chunks_in_flight_to_the_last_report_and_counts_down_while_playing() -> None:
    clock = FakeTime(50.0)
    state = PlayoutState(32000, server_events=True, clock=clock)
    state.sent(b"\0" * 32000)  # 1 s
    assert state.queued == pytest.approx(1.0)
    state.report(event("started", 980, 1))
    state.sent(b"\0" * 16000)  # 0.5 s more, not yet seen by the server
    clock.now += 0.3
    assert state.queued == pytest.approx(0.98 - 0.3 + 0.5)
    state.report(event("progress", 1180, 2))
    assert state.queued == pytest.approx(1.18)
    waiter = asyncio.create_task(state.wait())
    state.report(event("finished", 0, 1))  # a report from before the second chunk arrived: not done
    await asyncio.sleep(0)
    assert not waiter.done()
    state.report(event("finished", 0, 2))
    await asyncio.wait_for(waiter, 1)
    assert state.queued == 0


async def test_without_server_events_the_sdk_paces_locally_and_an_interrupt_empties_it() -> None:
    clock = FakeTime(50.0)
    state = PlayoutState(48000, server_events=False, clock=clock)
    state.sent(b"\0" * 48000)  # 1 s at 24 kHz
    clock.now += 0.4
    state.sent(b"\0" * 24000)
    assert state.queued == pytest.approx(1.1)
    clock.now += 2.0
    assert state.queued == 0
    state.sent(b"\0" * 48000)
    state.interrupted()
    assert state.queued == 0


def test_the_sdk_reads_an_opus_packets_duration_from_its_toc() -> None:
    state = PlayoutState(None, server_events=False)
    assert state.duration(bytes([0xFC, 0, 0])) == pytest.approx(0.02)  # CELT fullband, 20 ms, one frame
    assert state.duration(bytes([0xFD, 0, 0])) == pytest.approx(0.04)  # two frames
    assert state.duration(b"") == 0
