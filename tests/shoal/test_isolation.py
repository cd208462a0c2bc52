"""Room isolation: ids a client chooses reach nothing outside its own room (issue 10, hole 1).

Track ids are chosen by clients (agents' ``AddTrack``, participants' SDP offers), so a
client can name a track with the id of a live track in another room. Each test tries that
through one socket type and checks the audio itself: listeners of the first room keep
hearing that room's tone from that room's publisher — those that listened already, new
ones, and new ones after the intruder has left — while the intruder's own room hears the
intruder (which shows its request was served, so "nothing changed" is not just "nothing
happened"). The notifier socket takes no ids from clients (only its event type), so it
has nothing to reuse.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import av
import pytest

from fishjam._proto.media_events.peer import peer_pb2 as CE
from shoal.testing import ToneSource, VideoSource, WebRTCPeer
from tests.support.agent_client import RawAgent, create_room, rest
from tests.support.audio import dominant_frequency, tone
from tests.support.peers import heard, join
from tests.support.server import ServerProcess

RATE = 16000


async def queue_tone(agent: RawAgent, track_id: str, freq: float, seconds: int) -> None:
    """Queue ``seconds`` of a tone on an agent's track, in 10 s frames (under the frame size limit)."""
    for _ in range(0, seconds, 10):
        await agent.send_audio(track_id, tone(freq, 10.0, RATE))


async def assert_hears(listener: RawAgent, track_id: str, freq: float, publisher: str | None = None) -> None:
    """Fresh audio of ``track_id`` keeps arriving at ``listener`` with the dominant frequency ``freq``."""
    before = listener.samples_from(track_id)
    await listener.wait_samples(track_id, before + RATE // 2, timeout=10)
    fresh = listener.received[track_id].pcm[before + 1600 :]
    assert abs(dominant_frequency(fresh, RATE) - freq) < 10, f"heard {dominant_frequency(fresh, RATE):.0f} Hz"
    if publisher is not None:
        assert listener.received[track_id].peer_id == publisher


def room_tracks(server: ServerProcess, room_id: str) -> dict[str, dict[str, Any]]:
    """Track id → {owner, metadata} of a room, as REST reports it."""
    with rest(server) as client:
        peers = client.get(f"/room/{room_id}").json()["data"]["peers"]
    return {t["id"]: {"owner": p["id"], "metadata": t["metadata"]} for p in peers for t in p["tracks"]}


async def wait_disconnected(server: ServerProcess, room_id: str, peer_id: str) -> None:
    async with asyncio.timeout(10):
        while True:
            with rest(server) as client:
                peers = client.get(f"/room/{room_id}").json()["data"]["peers"]
            if all(p["status"] == "disconnected" for p in peers if p["id"] == peer_id):
                return
            await asyncio.sleep(0.05)


async def test_an_agent_reusing_a_track_id_of_another_room_cannot_touch_that_track(server: ServerProcess) -> None:
    room_a, room_b = create_room(server), create_room(server)
    speaker = await RawAgent.join(server, room_a)
    early = await RawAgent.join(server, room_a)
    track = await speaker.add_track()
    await queue_tone(speaker, track, 440, 60)
    await assert_hears(early, track, 440, speaker.peer_id)

    # Room B: one agent publishes under the same id (allowed: ids are unique per room) ...
    intruder = await RawAgent.join(server, room_b)
    b_listener = await RawAgent.join(server, room_b)
    await intruder.add_track(track_id=track)
    await queue_tone(intruder, track, 880, 30)
    await assert_hears(b_listener, track, 880, intruder.peer_id)
    # ... another guesses the id for everything else an agent can do to a track.
    prober = await RawAgent.join(server, room_b)
    await prober.interrupt(track)
    await prober.remove_track(track)
    await prober.capture_image(track)
    await prober.send_audio(track, tone(660, 0.1, RATE))
    code, reason = await prober.wait_closed()
    assert code == 1008 and "unknown track" in reason

    late = await RawAgent.join(server, room_a)
    await assert_hears(late, track, 440, speaker.peer_id)
    await assert_hears(early, track, 440)
    assert room_tracks(server, room_a)[track]["owner"] == speaker.peer_id
    assert room_tracks(server, room_b)[track]["owner"] == intruder.peer_id

    await intruder.close()
    await wait_disconnected(server, room_b, intruder.peer_id)
    after = await RawAgent.join(server, room_a)
    await assert_hears(after, track, 440, speaker.peer_id)
    await assert_hears(early, track, 440)
    for agent in (speaker, early, b_listener, late, after):
        await agent.close()


async def test_a_duplicate_add_track_in_the_same_room_is_refused_and_the_original_keeps_playing(
    server: ServerProcess,
) -> None:
    room = create_room(server)
    speaker = await RawAgent.join(server, room)
    early = await RawAgent.join(server, room)
    track = await speaker.add_track()
    await queue_tone(speaker, track, 440, 60)
    await assert_hears(early, track, 440, speaker.peer_id)

    duplicate = await RawAgent.join(server, room)
    await duplicate.add_track(track_id=track)
    code, reason = await duplicate.wait_closed()
    assert code == 1008 and "already in use in this room" in reason

    await assert_hears(early, track, 440)
    late = await RawAgent.join(server, room)
    await assert_hears(late, track, 440, speaker.peer_id)
    assert room_tracks(server, room)[track]["owner"] == speaker.peer_id
    for agent in (speaker, early, late):
        await agent.close()


async def test_a_participant_reusing_track_ids_of_another_room_cannot_touch_those_tracks(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room_a, room_b = create_room(server), create_room(server)
    speaker = await RawAgent.join(server, room_a)
    agent_track = await speaker.add_track(metadata='{"who":"speaker"}')
    await queue_tone(speaker, agent_track, 440, 60)
    alice = await join(server, room_a, "alice")
    peers.append(alice)
    alice_track = await alice.publish_audio(ToneSource(660), {"who": "alice"})
    early = await RawAgent.join(server, room_a)
    await assert_hears(early, agent_track, 440, speaker.peer_id)
    await assert_hears(early, alice_track, 660, alice.endpoint_id)

    # Room B: bob publishes under the id of the agent's track in room A, and sends what a
    # participant can send about a track for alice's track id, which he does not have.
    bob = await join(server, room_b, "bob")
    peers.append(bob)
    b_listener = await RawAgent.join(server, room_b)
    await bob.publish_audio(ToneSource(880), {"who": "bob"}, track_id=agent_track)
    await assert_hears(b_listener, agent_track, 880, bob.endpoint_id)
    await bob._send_media_event(CE.MediaEvent(update_track_metadata=CE.MediaEvent.UpdateTrackMetadata(
        track_id=alice_track, metadata_json=json.dumps({"who": "bob"}),
    )))
    await bob._send_media_event(CE.MediaEvent(unmute_track=CE.MediaEvent.UnmuteTrack(track_id=alice_track)))

    late = await RawAgent.join(server, room_a)
    await assert_hears(late, agent_track, 440, speaker.peer_id)
    await assert_hears(late, alice_track, 660, alice.endpoint_id)
    carol = await join(server, room_a, "carol")
    peers.append(carol)
    remote = await carol.wait_for_remote_track(lambda t: t.track_id == agent_track, timeout=15)
    assert remote.endpoint_id == speaker.peer_id
    assert abs((await heard(remote))[0] - 440) < 10
    tracks = room_tracks(server, room_a)
    assert tracks[alice_track] == {"owner": alice.endpoint_id, "metadata": {"who": "alice"}}
    assert tracks[agent_track] == {"owner": speaker.peer_id, "metadata": {"who": "speaker"}}
    assert not bob.disconnected, "requests about unknown tracks are ignored, not errors"

    await bob.close()
    await wait_disconnected(server, room_b, bob.endpoint_id or "")
    after = await RawAgent.join(server, room_a)
    await assert_hears(after, agent_track, 440, speaker.peer_id)
    await assert_hears(early, agent_track, 440)
    for agent in (speaker, early, b_listener, late, after):
        await agent.close()


def image_size(data: bytes) -> tuple[int, int]:
    frames = av.CodecContext.create("mjpeg", "r").decode(av.Packet(data))
    assert frames, "the image is not a decodable JPEG"
    frame = frames[0]
    assert isinstance(frame, av.VideoFrame)
    return frame.width, frame.height


async def wait_image(agent: RawAgent, count: int, timeout: float = 15.0) -> bytes:
    deadline = time.monotonic() + timeout
    while len(agent.images) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(agent.images)} of {count} images arrived")
        await asyncio.sleep(0.02)
    return bytes(agent.images[count - 1].data)


@pytest.mark.parametrize("order", ["a_first", "b_first"])
async def test_an_agent_captures_only_its_own_rooms_video_whatever_id_it_names(
    server: ServerProcess, peers: list[WebRTCPeer], order: str
) -> None:
    room_a, room_b, room_c = (create_room(server, videoCodec="vp8") for _ in range(3))
    alice = await join(server, room_a, "alice")
    bob = await join(server, room_b, "bob")
    peers += [alice, bob]
    # Either room may publish the id first: neither may take the other's capture.
    if order == "a_first":
        video = await alice.publish_video(VideoSource(width=640, height=360))
        await bob.publish_video(VideoSource(width=320, height=240), track_id=video)
    else:
        video = f"{alice.endpoint_id}:shared-video-id"
        await bob.publish_video(VideoSource(width=320, height=240), track_id=video)
        await alice.publish_video(VideoSource(width=640, height=360), track_id=video)
    a_agent = await RawAgent.join(server, room_a)
    b_agent = await RawAgent.join(server, room_b)
    c_agent = await RawAgent.join(server, room_c)

    await c_agent.capture_image(video)  # no such track in room C: never answered
    await a_agent.capture_image(video)
    await b_agent.capture_image(video)
    assert image_size(await wait_image(a_agent, 1)) == (640, 360)
    assert image_size(await wait_image(b_agent, 1)) == (320, 240)
    await asyncio.sleep(1.0)
    assert c_agent.images == []
    for agent in (a_agent, b_agent, c_agent):
        await agent.close()
