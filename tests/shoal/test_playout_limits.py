"""Queued agent audio against a real server (issue 10: memory per agent and server, stalls).

* Queued playout is bounded in bytes per track, per agent and per server; a chunk over a bound
  is dropped, counted per cause in ``GET /limits/stats`` (``refused`` and ``playout``),
  logged once per cause, and every byte is returned when the agents leave.
* An Opus packet larger than RFC 6716 allows, or one ``AddTrack`` beyond
  ``--max-tracks-per-agent``, closes the agent socket with 1008 and a reason.
* A forced 2 s stall of the server's event loop (``--debug-stall-marker``) costs the audio
  of the stall, which is dropped and counted, not a permanent 2 s delay of the track.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.support.agent_client import OPUS, RawAgent, create_room, rest
from tests.support.server import ServerProcess, start_server

CHUNK = 600_000
"""18.75 s of 16 kHz mono: what plays out while a test runs is small beside it."""
TRACK_BYTES, AGENT_BYTES, SERVER_BYTES = 640 << 10, 1280 << 10, 1920 << 10
STALL_MARKER = "shoal-test-stall:"


@pytest.fixture(scope="module")
def small() -> Iterator[ServerProcess]:
    server = start_server([
        "--playout-max-track-bytes", str(TRACK_BYTES),
        "--playout-max-agent-bytes", str(AGENT_BYTES),
        "--playout-max-server-bytes", str(SERVER_BYTES),
        "--max-tracks-per-agent", "3",
        "--debug-stall-marker", STALL_MARKER,
        "--playout-max-lag", "0.2",  # the default (test servers otherwise tolerate 2 s: tests/support/server.py)
    ])
    try:
        yield server
    finally:
        server.stop()


def stats(server: ServerProcess) -> dict[str, Any]:
    with rest(server) as client:
        data: dict[str, Any] = client.get("/limits/stats").json()
        return data


async def wait_for(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_queued_audio_is_bounded_per_track_agent_and_server_and_returned_at_the_end(small: ServerProcess) -> None:
    room = create_room(small)
    alice, bob = await RawAgent.join(small, room), await RawAgent.join(small, room)
    a1, a2, a3 = [await alice.add_track() for _ in range(3)]
    b1, b2 = [await bob.add_track() for _ in range(2)]
    chunk = bytes(CHUNK)
    for track in (a1, a1, a2, a3):  # a1's second chunk goes over its track, a3's over alice's bound
        await alice.send_audio(track, chunk)
    await wait_for(lambda: stats(small)["playout"]["dropped_chunks"] == 2, "alice's two drops")
    for track in (b1, b2):  # b2's chunk goes over the server's bound
        await bob.send_audio(track, chunk)
    await wait_for(lambda: stats(small)["playout"]["dropped_chunks"] == 3, "bob's drop")
    await alice.send_audio(a1, chunk)  # counted again, not logged again
    await wait_for(lambda: stats(small)["playout"]["dropped_chunks"] == 4, "the repeated drop")

    now = stats(small)
    assert {cause: now["refused"].get(f"playout.{cause}") for cause in ("track_bytes", "agent_bytes", "server_bytes")} == {
        "track_bytes": 2, "agent_bytes": 1, "server_bytes": 1,
    }
    assert 2 * CHUNK < now["playout"]["queued_bytes"] <= 3 * CHUNK <= SERVER_BYTES
    assert now["playout"]["dropped_bytes"] >= 4 * CHUNK
    assert small.log_text().count("playout queue full") == 3, "one log line per cause"
    assert alice.closed is None and bob.closed is None, "a full queue drops audio; it does not close the socket"

    await alice.close()
    await bob.close()
    await wait_for(lambda: stats(small)["playout"]["queued_bytes"] == 0, "the budget to return to 0")
    assert stats(small)["playout"]["queued_seconds"] == 0


async def test_one_track_more_than_max_tracks_per_agent_closes_with_1008(small: ServerProcess) -> None:
    room = create_room(small)
    agent = await RawAgent.join(small, room)
    tracks = [await agent.add_track() for _ in range(3)]
    await agent.remove_track(tracks[0])  # nothing queued: it ends at once and frees its slot
    await agent.add_track()
    await agent.add_track()
    code, reason = await agent.wait_closed()
    assert (code, reason) == (1008, "AddTrack: an agent may publish at most 3 tracks at once")
    assert stats(small)["refused"]["playout.agent_tracks"] == 1


async def test_the_default_is_16_tracks_per_agent(server: ServerProcess) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    for _ in range(17):
        await agent.add_track()
    code, reason = await agent.wait_closed()
    assert (code, reason) == (1008, "AddTrack: an agent may publish at most 16 tracks at once")

    def tracks_left() -> int:
        with rest(server) as client:
            return len(client.get(f"/room/{room}").json()["data"]["peers"][0]["tracks"])

    await wait_for(lambda: tracks_left() == 0, "its 16 tracks to end with it")


async def test_an_opus_packet_bigger_than_rfc_6716_allows_closes_with_1008(server: ServerProcess) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    track = await agent.add_track(rate=48000, encoding=OPUS)
    await agent.send_audio(track, bytes([0xF8]).ljust(1279, b"\0"))  # one 20 ms frame: at the bound, accepted
    await agent.send_audio(track, bytes([0xF8]).ljust(1_000_000, b"\0"))  # 20 ms declared, 1 MB held
    code, reason = await agent.wait_closed()
    assert code == 1008
    assert reason.startswith(f"TrackData on track {track}: Opus packet of 1000000 bytes exceeds RFC 6716")


def indexed_frames(count: int) -> bytes:
    """``count`` 20 ms frames of 16 kHz mono whose samples are all the frame's index."""
    return np.repeat(np.arange(count, dtype="<i2"), 320).tobytes()


async def test_a_stall_of_the_server_drops_the_late_audio_instead_of_delaying_the_rest(small: ServerProcess) -> None:
    """10 s queued at once; 1 s in the server's event loop blocks for 2 s. The frames of the
    stall are dropped (the receiver sees the frame numbers jump by as many as the server
    counts in ``late_dropped_frames``, at least 90) and the rest plays on schedule; a clock
    that re-anchored played every frame, 2 s late (a jump of 0)."""
    room = create_room(small)
    sender, receiver = await RawAgent.join(small, room), await RawAgent.join(small, room)
    before = stats(small)["playout"]
    track = await sender.add_track()
    await sender.send_audio(track, indexed_frames(500))
    await receiver.wait_samples(track, 50 * 320)
    assert sender.ws is not None
    await sender.ws.send((STALL_MARKER + "2000").encode())

    def indices() -> list[int]:
        return [int(np.frombuffer(chunk, dtype="<i2")[0]) for chunk in receiver.received[track].chunks]

    await wait_for(lambda: indices() and indices()[-1] == 499, "the last frame", timeout=20)
    got = indices()
    assert got == sorted(set(got)), "frames arrive in order, none twice"
    gaps = [later - earlier - 1 for earlier, later in zip(got, got[1:], strict=False) if later != earlier + 1]
    after = stats(small)["playout"]
    dropped = after["late_dropped_frames"] - before["late_dropped_frames"]
    assert gaps and max(gaps) >= 90, f"the frames of the 2 s stall were played late instead of dropped: gaps {gaps}"
    assert sum(gaps) == dropped == 500 - len(got)
    assert after["catchups"] > before["catchups"]
    assert "playout clock fell" in small.log_text()
    await sender.close()
    await receiver.close()
