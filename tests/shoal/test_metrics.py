"""GET /metrics against real servers: who may read it, that it parses, and that its figures follow traffic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shoal.config import ShoalConfig
from shoal.server import Shoal
from shoal.testing import ToneSource, WebRTCPeer
from tests.support.agent_client import RawAgent, create_agent, create_room, rest
from tests.support.audio import tone
from tests.support.peers import join
from tests.support.server import ServerProcess, start_server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

EXPECTED = {
    "shoal_rooms", "shoal_peers", "shoal_tracks",
    "shoal_rtp_packets_received", "shoal_rtp_packets_fast_path", "shoal_rtp_packets_forwarded", "shoal_rtp_retransmissions",
    "shoal_keyframe_requests", "shoal_participant_audio_frames_decoded", "shoal_agent_frames_delivered", "shoal_agent_frames_played",
    "shoal_agent_frames_written_directly", "shoal_webrtc_peers_paused",
    "shoal_agent_playout_queue_seconds", "shoal_dropped", "shoal_refusals",
    "shoal_webhook_deliveries", "shoal_webhook_failures", "shoal_event_loop_lag_seconds",
    "process_cpu_seconds", "process_resident_memory_bytes",
}


@pytest.fixture(scope="module")
def metered() -> Iterator[ServerProcess]:
    """A server of this module's own, so gauges and counters move only with these tests' traffic."""
    proc = start_server(["--playout-max-seconds", "1"])
    try:
        yield proc
    finally:
        proc.stop()


def scrape(server: ServerProcess) -> Samples:
    with rest(server) as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def wait_for_value(server: ServerProcess, name: str, at_least: float, timeout: float = 10.0, **labels: str) -> float:
    deadline = time.monotonic() + timeout
    while True:
        got = value(scrape(server), name, **labels)
        if got >= at_least or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.1)


def test_metrics_need_the_management_token(metered: ServerProcess) -> None:
    missing = httpx.get(f"{metered.url}/metrics", timeout=10)
    wrong = httpx.get(f"{metered.url}/metrics", headers={"authorization": "Bearer nope"}, timeout=10)
    assert (missing.status_code, missing.json()) == (401, {"errors": "Missing token"})
    assert (wrong.status_code, wrong.json()) == (401, {"errors": "Invalid token"})
    assert value(scrape(metered), "shoal_rooms") >= 0


def test_metrics_public_opens_metrics_and_nothing_else() -> None:
    public = start_server(["--metrics-public"])
    try:
        response = httpx.get(f"{public.url}/metrics", timeout=10)
        assert response.status_code == 200
        assert "shoal_rooms " in response.text
        assert httpx.get(f"{public.url}/room", timeout=10).status_code == 401
    finally:
        public.stop()


async def test_the_text_parses_with_every_metric_and_a_lag_histogram_that_fills(metered: ServerProcess) -> None:
    with rest(metered) as client:
        text = client.get("/metrics").text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert EXPECTED <= names, f"missing: {sorted(EXPECTED - names)}"
    samples = scrape(metered)
    assert value(samples, "process_resident_memory_bytes") > 10 * 1024 * 1024
    # The monitor wakes every 0.1 s from start-up on; a few observations within seconds.
    assert await wait_for_value(metered, "shoal_event_loop_lag_seconds_count", 3) >= 3
    assert value(scrape(metered), "shoal_event_loop_lag_seconds_bucket", le="+Inf") >= 3


async def test_rooms_peers_and_tracks_follow_creation_and_deletion(metered: ServerProcess) -> None:
    before = scrape(metered)
    room = create_room(metered)
    create_agent(metered, room)  # created, never connected
    agent = await RawAgent.join(metered, room)
    await agent.add_track()
    await wait_for_value(metered, "shoal_tracks", value(before, "shoal_tracks", kind="audio") + 1, kind="audio")
    during = scrape(metered)
    for name, labels, delta in (
        ("shoal_rooms", {}, 1),
        ("shoal_peers", {"type": "agent", "status": "connected"}, 1),
        ("shoal_peers", {"type": "agent", "status": "disconnected"}, 1),
        ("shoal_peers", {"type": "webrtc", "status": "connected"}, 0),
        ("shoal_tracks", {"kind": "audio"}, 1),
        ("shoal_tracks", {"kind": "video"}, 0),
    ):
        assert value(during, name, **labels) - value(before, name, **labels) == delta, (name, labels)
    with rest(metered) as client:
        assert client.delete(f"/room/{room}").status_code == 204
    after = scrape(metered)
    for name, labels in (("shoal_rooms", {}), ("shoal_peers", {"type": "agent", "status": "connected"}),
                         ("shoal_peers", {"type": "agent", "status": "disconnected"}), ("shoal_tracks", {"kind": "audio"})):
        assert value(after, name, **labels) == value(before, name, **labels), (name, labels)
    await agent.close()


async def settled(agent: RawAgent, track: str) -> int:
    """Frames the agent received once no more arrive (0.5 s quiet)."""
    count = -1
    while count != len(agent.received[track].chunks):
        count = len(agent.received[track].chunks)
        await asyncio.sleep(0.5)
    return count


async def test_participant_audio_to_an_agent_counts_the_frames_it_received(
    metered: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    before = scrape(metered)
    room = create_room(metered)
    agent = await RawAgent.join(metered, room)
    alice = await join(metered, room, "alice")
    peers.append(alice)
    track = await alice.publish_audio(ToneSource(440))
    await agent.wait_samples(track, 16000, timeout=15)
    await alice.close()
    received = await settled(agent, track)
    after = scrape(metered)
    delivered = value(after, "shoal_agent_frames_delivered_total") - value(before, "shoal_agent_frames_delivered_total")
    assert received >= 50
    assert abs(delivered - received) <= 2, f"{delivered} frames counted, the agent received {received}"
    rtp = value(after, "shoal_rtp_packets_received_total") - value(before, "shoal_rtp_packets_received_total")
    assert rtp >= received * 0.9, f"{rtp} RTP packets for {received} 20 ms frames"
    decoded = value(after, "shoal_participant_audio_frames_decoded_total") - value(
        before, "shoal_participant_audio_frames_decoded_total"
    )
    assert abs(decoded - received) <= 2, f"{decoded} frames decoded, the agent received {received}"
    await agent.close()


async def test_agent_playout_counts_played_frames_queued_seconds_and_tail_drops(metered: ServerProcess) -> None:
    """The module's server queues at most 1 s per track: the second 0.8 s chunk is dropped whole."""
    before = scrape(metered)
    room = create_room(metered)
    sender = await RawAgent.join(metered, room)
    receiver = await RawAgent.join(metered, room)
    track = await sender.add_track()
    await sender.send_audio(track, tone(440, 0.8, 16000))
    await sender.send_audio(track, tone(440, 0.8, 16000))  # does not fit: dropped
    queued = value(scrape(metered), "shoal_agent_playout_queue_seconds")
    assert 0.2 < queued <= 0.8, f"{queued} s queued"
    await receiver.wait_samples(track, 12800)
    received = await settled(receiver, track)
    after = scrape(metered)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert received == 40
    assert delta("shoal_agent_frames_played_total") == 40
    assert delta("shoal_agent_frames_delivered_total") == 40
    assert delta("shoal_dropped_total", where="agent_playout", reason="queue_full") == 1
    assert delta("shoal_dropped_total", where="agent_outbox", reason="queue_full") == 0
    assert value(after, "shoal_agent_playout_queue_seconds") == 0
    for agent in (sender, receiver):
        await agent.close()


def test_a_refused_request_is_counted_by_cause(metered: ServerProcess) -> None:
    before = value(scrape(metered), "shoal_refusals_total", cause="metadata.depth")
    room = create_room(metered)
    deep: object = "x"
    for _ in range(200):
        deep = [deep]
    with rest(metered) as client:
        response = client.post(f"/room/{room}/peer", json={"type": "webrtc", "options": {"metadata": {"a": deep}}})
    assert response.status_code == 400, response.text
    assert value(scrape(metered), "shoal_refusals_total", cause="metadata.depth") == before + 1


async def test_participant_to_participant_audio_counts_forwarded_rtp(
    metered: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    before = scrape(metered)
    room = create_room(metered)
    alice = await join(metered, room, "alice")
    bob = await join(metered, room, "bob")
    peers += [alice, bob]
    track = await alice.publish_audio(ToneSource(440))
    remote = await bob.wait_for_remote_track(lambda t: t.track_id == track, timeout=15)
    await remote.recording.wait_for_seconds(1.0, timeout=15)
    heard_s = remote.recording.received_s
    forwarded = value(scrape(metered), "shoal_rtp_packets_forwarded_total") - value(
        before, "shoal_rtp_packets_forwarded_total"
    )
    # Every 20 ms packet bob heard was forwarded to him (and some more are on their way).
    assert forwarded >= heard_s * 50 * 0.9, f"{forwarded} packets forwarded, bob heard {heard_s:.2f} s"


def test_two_servers_in_one_process_have_their_own_registries() -> None:
    """No module-level registry: a second server would otherwise collide on every metric name."""
    first, second = Shoal(ShoalConfig(management_token="a")), Shoal(ShoalConfig(management_token="b"))
    first.tally.agent_frames_delivered = 7
    texts = [server.metrics.exposition().decode() for server in (first, second)]
    assert "shoal_agent_frames_delivered_total 7.0" in texts[0]
    assert "shoal_agent_frames_delivered_total 0.0" in texts[1]
