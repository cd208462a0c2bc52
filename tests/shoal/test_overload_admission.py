"""Past capacity, the newest senders are paused whole and the oldest keep all their audio.

Real servers, a forced overload: ``--debug-media-cost-ms 3.5`` blocks the server's loop 3.5 ms
per SRTP datagram it reads, so it can read about 285 a second and eight participants send
400 (each alone in a room with a 16 kHz agent, each at its own tone). With the admission
(the default) the oldest participants' agents get all their audio at the right pitch and on
time while the newest are paused at the ICE socket — counted, logged, their connections up;
when the oldest leave, the paused ones are read again. A paused participant is on hold both
ways: its agent's answer is played out but not encoded for it, and heard again after. A second server started with
``--overload-pause-after 0`` shows what happens without it: every stream is thinned, the
newest participant's agent hears it too, and nobody gets all its audio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from shoal.testing import ToneSource, WebRTCPeer
from tests.shoal.ice_support import rtc_stats
from tests.shoal.test_metrics import scrape, value
from tests.support.agent_client import RawAgent, create_room
from tests.support.audio import dominant_frequency, tone
from tests.support.peers import join
from tests.support.server import ServerProcess, start_server

SENDERS = 8
COST_MS = "3.5"
RATE = 16000
WINDOW_S = 3.0
ANSWER_HZ = 1250


@pytest.fixture(scope="module")
def admitting() -> Iterator[ServerProcess]:
    proc = start_server(["--debug-media-cost-ms", COST_MS])
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def thinning() -> Iterator[ServerProcess]:
    proc = start_server(["--debug-media-cost-ms", COST_MS, "--overload-pause-after", "0"])
    try:
        yield proc
    finally:
        proc.stop()


@dataclass
class Call:
    agent: RawAgent
    peer: WebRTCPeer
    track: str
    tone: int

    def frames(self) -> int:
        received = self.agent.received.get(self.track)
        return len(received.chunks) if received is not None else 0

    def pitch(self, since: int) -> float:
        pcm = np.frombuffer(b"".join(self.agent.received[self.track].chunks[since:]), dtype="<i2")
        return dominant_frequency(pcm, RATE)


async def calls(server: ServerProcess, peers: list[WebRTCPeer]) -> list[Call]:
    """SENDERS participants, oldest first, each heard by its own agent."""
    made = []
    for n in range(SENDERS):
        room = create_room(server)
        agent = await RawAgent.join(server, room, rate=RATE)
        peer = await join(server, room, f"p{n}")
        peers.append(peer)
        tone = 300 + 100 * n
        made.append(Call(agent, peer, await peer.publish_audio(ToneSource(tone)), tone))
        await asyncio.sleep(0.3)  # joined in order: the first is the oldest
    return made


async def window(made: list[Call]) -> list[int]:
    before = [call.frames() for call in made]
    await asyncio.sleep(WINDOW_S)
    return [call.frames() - b for call, b in zip(made, before, strict=True)]


async def test_the_oldest_senders_stay_whole_the_newest_are_paused_and_come_back_when_others_leave(
    admitting: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    made = await calls(admitting, peers)
    for _ in range(300):
        if rtc_stats(admitting)["admission"]["paused"] >= 2:
            break
        await asyncio.sleep(0.1)
    stats = rtc_stats(admitting)["admission"]
    assert stats["paused"] >= 2, f"nobody was paused under a forced overload: {stats}"
    await asyncio.sleep(2.0)  # the ICE age check's leftovers are gone
    shed_before = value(scrape(admitting), "shoal_dropped_total", where="ice_receive", reason="shed")
    got = await window(made)
    shed = value(scrape(admitting), "shoal_dropped_total", where="ice_receive", reason="shed") - shed_before
    expected = WINDOW_S * 50
    oldest, newest = made[:4], made[-1]
    for call, frames in zip(oldest, got, strict=False):
        assert frames >= 0.9 * expected, f"an old sender lost audio while admitted: {got}"
        assert abs(call.pitch(-int(expected)) - call.tone) < 10
    assert got[-1] == 0, f"the newest sender was read: {got}"
    assert shed >= 0.8 * expected, f"its datagrams arrived and were dropped on receipt: {shed} counted"
    assert value(scrape(admitting), "shoal_webrtc_peers_paused") >= 1
    assert all(call.peer.pc is not None and call.peer.pc.connectionState == "connected" for call in made)
    log = admitting.log_text()
    assert "overload: the event loop stayed behind" in log
    assert f"peer {newest.peer.endpoint_id} in room " in log and "inbound media paused (overload)" in log

    # On hold both ways: the agent's answer to the paused participant is not even encoded.
    answer = await newest.agent.add_track(rate=RATE)
    for _ in range(40):
        await newest.agent.send_audio(answer, tone(ANSWER_HZ, 1.0, RATE))
    heard = await newest.peer.wait_for_remote_track(lambda t: t.track_id == answer, ready=False, timeout=10)
    for _ in range(100):  # until the renegotiated sender is attached and its frames are withheld
        if value(scrape(admitting), "shoal_dropped_total", where="agent_playout", reason="paused") > 0:
            break
        await asyncio.sleep(0.1)
    withheld_before = value(scrape(admitting), "shoal_dropped_total", where="agent_playout", reason="paused")
    samples_before = heard.recording.received_samples
    await asyncio.sleep(WINDOW_S)
    withheld = value(scrape(admitting), "shoal_dropped_total", where="agent_playout", reason="paused") - withheld_before
    assert heard.recording.received_samples == samples_before, "a paused participant hears nothing"
    assert withheld >= 0.8 * expected, f"the agent's frames were played out and withheld: {withheld}"

    # The four oldest leave: the newest, which kept sending all along, is heard again, and hears its agent.
    for call in oldest:
        await call.peer.leave()
        await call.agent.close()
    since = newest.frames()
    await newest.agent.wait_samples(newest.track, (since + 100) * RATE // 50, timeout=20)
    assert abs(newest.pitch(since + 25) - newest.tone) < 10
    assert "inbound media resumed after" in admitting.log_text()
    await heard.recording.wait_for_seconds(samples_before / heard.recording.rate + 1.5, timeout=20)
    tail = heard.recording.samples()[-heard.recording.rate :]
    assert abs(dominant_frequency(tail, heard.recording.rate) - ANSWER_HZ) < 10, "and hears its agent again"
    for call in made[4:]:
        await call.peer.leave()
        await call.agent.close()
    for _ in range(100):
        if rtc_stats(admitting)["admission"]["streams"] == 0:
            break
        await asyncio.sleep(0.1)
    assert rtc_stats(admitting)["admission"]["streams"] == 0, "closed connections leave the admission"


async def test_without_the_admission_every_stream_is_thinned_and_nobody_stays_whole(
    thinning: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    made = await calls(thinning, peers)
    await asyncio.sleep(4.0)
    got = await window(made)
    expected = WINDOW_S * 50
    assert got[-1] >= 5, f"the newest sender is read too: {got}"
    assert sum(got) < 0.9 * SENDERS * expected and min(got) < 0.9 * expected, f"the overload thinned them: {got}"
    assert rtc_stats(thinning)["admission"]["paused"] == 0
    for call in made:
        await call.agent.close()
