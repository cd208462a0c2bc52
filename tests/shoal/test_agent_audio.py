"""Agent-to-agent audio through a real server: content, format, pacing, interrupt, lifecycle."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from shoal.media.opus import OpusEncoder
from tests.support.agent_client import OPUS, RawAgent, create_room, rest
from tests.support.audio import dominant_frequency, rms, tone
from tests.support.server import ServerProcess, start_server

FRAME_S = 0.02


async def test_a_tone_arrives_at_each_receivers_own_rate_with_the_right_frequency(server: ServerProcess) -> None:
    room = create_room(server)
    sender = await RawAgent.join(server, room)
    at16 = await RawAgent.join(server, room, rate=16000)
    at24 = await RawAgent.join(server, room, rate=24000)
    track = await sender.add_track(rate=16000, metadata='{"type": "microphone"}')
    await sender.send_audio(track, tone(440, 1.0, 16000))

    await at16.wait_samples(track, 16000)
    await at24.wait_samples(track, 24000 - 480)
    for receiver, rate in ((at16, 16000), (at24, 24000)):
        got = receiver.received[track]
        assert got.peer_id == sender.peer_id
        assert got.metadata == '{"type":"microphone"}'
        assert abs(dominant_frequency(got.pcm, rate) - 440) < 5
        assert 0.8 < rms(got.pcm[rate // 10 :]) / (8000 / np.sqrt(2)) < 1.2
    # Each TrackData carries one 20 ms frame in the receiver's format.
    assert {len(c) for c in at16.received[track].chunks} == {640}
    assert all(abs(len(c) - 960) <= 64 for c in at24.received[track].chunks)
    assert track not in sender.received, "an agent must never hear its own track"
    for agent in (sender, at16, at24):
        await agent.close()


async def test_audio_sent_in_a_burst_is_played_out_in_real_time(server: ServerProcess) -> None:
    room = create_room(server)
    sender = await RawAgent.join(server, room)
    receiver = await RawAgent.join(server, room)
    track = await sender.add_track()
    start = time.monotonic()
    await sender.send_audio(track, tone(300, 2.0, 16000))
    await receiver.wait_samples(track, 32000)
    got = receiver.received[track]
    # 2 s of audio may not arrive faster than 2 s of wall clock, minus one frame.
    assert got.times[-1] - got.times[0] >= 2.0 - 2 * FRAME_S
    # At no point is more audio delivered than has had time to play since the first frame.
    delivered = np.cumsum([len(c) / 2 / 16000 for c in got.chunks])
    elapsed = np.array(got.times) - got.times[0]
    assert np.all(delivered <= elapsed + 2 * FRAME_S)
    # The first frame starts promptly: no pre-roll accumulation.
    assert got.times[0] - start < 0.2
    await sender.close()
    await receiver.close()


async def test_interrupt_drops_queued_audio_within_one_frame_and_later_audio_plays(server: ServerProcess) -> None:
    room = create_room(server)
    sender = await RawAgent.join(server, room)
    receiver = await RawAgent.join(server, room)
    track = await sender.add_track()
    await sender.send_audio(track, tone(440, 10.0, 16000))
    await receiver.wait_samples(track, 16000)
    interrupted_at = time.monotonic()
    await sender.interrupt(track)
    await asyncio.sleep(0.5)
    got = receiver.received[track]
    after = sum(len(c) // 2 for c, t in zip(got.chunks, got.times, strict=True) if t > interrupted_at)
    # One frame may already be on its way when the interrupt arrives; one more may be
    # being played by the tick that is running at that moment.
    assert after <= 2 * 320, f"{after} samples arrived after the interrupt"
    assert len(got.pcm) < 16000 * 3

    before = len(got.pcm)
    await sender.send_audio(track, tone(880, 0.5, 16000))
    await receiver.wait_samples(track, before + 8000)
    fresh = got.pcm[before:]
    assert abs(dominant_frequency(fresh, 16000) - 880) < 5
    await sender.close()
    await receiver.close()


async def test_stereo_24k_input_is_downmixed_and_resampled_for_a_16k_receiver(server: ServerProcess) -> None:
    room = create_room(server)
    sender = await RawAgent.join(server, room)
    receiver = await RawAgent.join(server, room, rate=16000)
    track = await sender.add_track(rate=24000, channels=2)
    await sender.send_audio(track, tone(1000, 1.0, 24000, channels=2))
    await receiver.wait_samples(track, 16000 - 320)
    got = receiver.received[track].pcm
    assert abs(dominant_frequency(got, 16000) - 1000) < 5
    assert 0.8 < rms(got[1600:]) / (8000 / np.sqrt(2)) < 1.2
    await sender.close()
    await receiver.close()


async def test_an_opus_track_is_decoded_once_and_heard_as_pcm(server: ServerProcess) -> None:
    room = create_room(server)
    sender = await RawAgent.join(server, room)
    receiver = await RawAgent.join(server, room, rate=24000)
    track = await sender.add_track(encoding=OPUS, rate=48000)
    encoder = OpusEncoder()
    samples = np.frombuffer(tone(600, 1.0, 48000), dtype="<i2")
    for start in range(0, len(samples), 960):
        for packet in encoder.encode(samples[start : start + 960]):
            await sender.send_audio(track, packet)
    await receiver.wait_samples(track, 24000 - 2400)
    got = receiver.received[track].pcm
    assert abs(dominant_frequency(got[2400:], 24000) - 600) < 5
    await sender.close()
    await receiver.close()


async def test_chunks_split_at_odd_byte_boundaries_arrive_bit_exact(server: ServerProcess) -> None:
    room = create_room(server)
    sender = await RawAgent.join(server, room)
    receiver = await RawAgent.join(server, room)
    track = await sender.add_track()
    audio = tone(523, 0.5, 16000)
    position, size = 0, 1
    while position < len(audio):
        await sender.send_audio(track, audio[position : position + size])
        position += size
        size = size + 2 if size < 301 else 1  # odd sizes only: 1, 3, 5, ...
    await receiver.wait_samples(track, 8000)
    assert receiver.received[track].pcm[:8000].tobytes() == audio
    await sender.close()
    await receiver.close()


async def test_remove_track_plays_what_is_queued_then_ends_the_track(server: ServerProcess) -> None:
    room = create_room(server)
    sender = await RawAgent.join(server, room)
    receiver = await RawAgent.join(server, room)
    track = await sender.add_track()
    await sender.send_audio(track, tone(440, 0.6, 16000))
    await sender.remove_track(track)
    await receiver.wait_samples(track, 9600)
    await asyncio.sleep(0.2)
    with rest(server) as client:
        peers = client.get(f"/room/{room}").json()["data"]["peers"]
    assert [p["tracks"] for p in peers if p["id"] == sender.peer_id] == [[]]
    assert receiver.samples_from(track) == 9600
    await sender.close()
    await receiver.close()


async def test_manual_agents_hear_only_what_they_subscribed_to(server: ServerProcess) -> None:
    room = create_room(server)
    alice = await RawAgent.join(server, room)
    bob = await RawAgent.join(server, room)
    listener = await RawAgent.join(server, room, mode="manual")
    alice_track = await alice.add_track()
    bob_track = await bob.add_track()
    await asyncio.sleep(0.1)
    await alice.send_audio(alice_track, tone(440, 0.3, 16000))
    await bob.send_audio(bob_track, tone(660, 0.3, 16000))
    await asyncio.sleep(0.5)
    assert listener.received == {}

    with rest(server) as client:
        assert client.post(f"/room/{room}/peer/{listener.peer_id}/subscribe_peer", params={"peer_id": alice.peer_id}).status_code == 200
    await alice.send_audio(alice_track, tone(440, 0.3, 16000))
    await bob.send_audio(bob_track, tone(660, 0.3, 16000))
    await listener.wait_samples(alice_track, 4800)
    await asyncio.sleep(0.2)
    assert set(listener.received) == {alice_track}

    with rest(server) as client:
        response = client.post(f"/room/{room}/peer/{listener.peer_id}/subscribe_tracks", json={"track_ids": [bob_track]})
        assert response.status_code == 200
        subs = [p["subscriptions"] for p in client.get(f"/room/{room}").json()["data"]["peers"] if p["id"] == listener.peer_id]
    assert subs == [{"peers": [alice.peer_id], "tracks": [bob_track]}]
    await bob.send_audio(bob_track, tone(660, 0.3, 16000))
    await listener.wait_samples(bob_track, 4800)
    assert abs(dominant_frequency(listener.received[bob_track].pcm, 16000) - 660) < 5
    for agent in (alice, bob, listener):
        await agent.close()


async def test_a_full_playout_queue_drops_the_excess_and_says_so() -> None:
    small = start_server(["--playout-max-seconds", "1"])
    try:
        room = create_room(small)
        sender = await RawAgent.join(small, room)
        receiver = await RawAgent.join(small, room)
        track = await sender.add_track()
        await sender.send_audio(track, tone(440, 0.8, 16000))
        await sender.send_audio(track, tone(440, 0.8, 16000))  # does not fit: dropped whole
        await sender.send_audio(track, tone(440, 0.1, 16000))  # fits again
        await receiver.wait_samples(track, 14400)
        await asyncio.sleep(0.3)
        assert receiver.samples_from(track) == 14400
        assert "playout queue full" in small.log_text()
        await sender.close()
        await receiver.close()
    finally:
        small.stop()


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_late_joiner_hears_a_track_that_is_already_playing(server: ServerProcess, rate: int) -> None:
    room = create_room(server)
    sender = await RawAgent.join(server, room)
    track = await sender.add_track()
    await sender.send_audio(track, tone(440, 2.0, 16000))
    await asyncio.sleep(0.5)
    late = await RawAgent.join(server, room, rate=rate)
    await late.wait_samples(track, rate // 2)
    assert abs(dominant_frequency(late.received[track].pcm, rate) - 440) < 5
    await sender.close()
    await late.close()
