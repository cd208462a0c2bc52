"""WebRTC participants (Python peers over real WebRTC) with agents, against a real server.

Each peer publishes its own tone; the tests check the audio itself (frequency, level,
frame size and timing), who it is attributed to, and the signaling the clients see.
"""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np

from fishjam.events import (
    ServerMessagePeerConnected,
    ServerMessagePeerDisconnected,
    ServerMessagePeerMetadataUpdated,
    ServerMessagePeerType,
    ServerMessageTrackAdded,
    ServerMessageTrackMetadataUpdated,
)
from shoal.testing import RemoteTrack, ToneSource, WebRTCPeer
from tests.support.agent_client import RawAgent, create_room, create_webrtc_peer, rest
from tests.support.audio import rms, tone
from tests.support.notify import collecting, wait_for
from tests.support.peers import SETTLE_S, heard, join, spectrum_of
from tests.support.server import ServerProcess


async def test_two_agents_each_get_each_peers_audio_separately_and_correctly(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    agent16 = await RawAgent.join(server, room, rate=16000)
    agent24 = await RawAgent.join(server, room, rate=24000)
    alice = await join(server, room, "alice")
    bob = await join(server, room, "bob")
    peers += [alice, bob]
    alice_track = await alice.publish_audio(ToneSource(440), metadata={"type": "microphone", "paused": False})
    bob_track = await bob.publish_audio(ToneSource(660), metadata={"type": "microphone", "paused": False})

    for agent, rate in ((agent16, 16000), (agent24, 24000)):
        for track_id, peer, freq in ((alice_track, alice, 440), (bob_track, bob, 660)):
            await agent.wait_samples(track_id, int(rate * (1.5 + SETTLE_S)), timeout=15)
            received = agent.received[track_id]
            assert received.peer_id == peer.endpoint_id
            assert json.loads(received.metadata) == {"type": "microphone", "paused": False}
            got, level = spectrum_of(received.pcm, rate)
            assert abs(got - freq) < 10, f"agent at {rate} Hz heard {got:.0f} Hz on {peer.endpoint_id}'s track"
            assert level > 1000
            # 20 ms per TrackData at the agent's rate (the first frames may be shorter: resampler priming)
            sizes = [len(chunk) for chunk in received.chunks[5:]]
            assert set(sizes) == {rate // 50 * 2}, f"frame sizes {sorted(set(sizes))}"
    # Separate streams, never mixed: alice's track carries no 660 Hz and vice versa.
    for agent, rate in ((agent16, 16000), (agent24, 24000)):
        alice_pcm = agent.received[alice_track].pcm[int(SETTLE_S * rate) :].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(alice_pcm * np.hanning(len(alice_pcm))))
        bin_hz = rate / len(alice_pcm)
        assert spectrum[int(660 / bin_hz)] < spectrum[int(440 / bin_hz)] / 100
    for agent in (agent16, agent24):
        await agent.close()


async def test_peer_audio_reaches_agents_in_real_time(server: ServerProcess, peers: list[WebRTCPeer]) -> None:
    """Frames arrive at the pace they were spoken: 50 per second, not in bursts."""
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    alice = await join(server, room, "alice")
    peers.append(alice)
    track = await alice.publish_audio(ToneSource(440))
    await agent.wait_samples(track, 16000 * 3, timeout=15)
    times = agent.received[track].times[-100:]
    span = times[-1] - times[0]
    # Paced, not a burst; the bounds leave room for a busy machine.
    assert 1.2 < span < 4.0, f"100 frames (2 s of audio) arrived over {span:.2f} s"


async def test_a_peer_hears_the_agent_as_an_ordinary_remote_track(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    alice = await join(server, room, "alice")
    peers.append(alice)
    track_id = await agent.add_track(rate=24000, metadata='{"type":"microphone","voice":"bot"}')
    await agent.send_audio(track_id, tone(880, 3.0, 24000))
    remote = await alice.wait_for_remote_track(endpoint_id=agent.peer_id, timeout=10)
    assert remote.track_id == track_id and remote.kind == "audio"
    assert remote.metadata == {"type": "microphone", "voice": "bot"}
    freq, level = await heard(remote)
    assert abs(freq - 880) < 10 and level > 1000
    assert not alice.protocol_errors, list(alice.protocol_errors)
    await agent.close()


async def test_a_peer_that_joins_late_receives_the_agents_track(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    track_id = await agent.add_track(rate=16000)
    await agent.send_audio(track_id, tone(550, 8.0, 16000))
    early = await join(server, room, "early")
    peers.append(early)
    await (await early.wait_for_remote_track(endpoint_id=agent.peer_id)).recording.wait_for_seconds(0.5, timeout=10)
    late = await join(server, room, "late")
    peers.append(late)
    connected = await late.wait_for_event("connected")
    assert agent.peer_id in connected.details["endpoint_id_to_endpoint"]
    remote = await late.wait_for_remote_track(endpoint_id=agent.peer_id, timeout=10)
    assert remote.track_id == track_id
    freq, level = await heard(remote)
    assert abs(freq - 550) < 10 and level > 1000
    await agent.close()


async def test_manual_agent_receives_only_the_subscribed_peer(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room, mode="manual")
    alice = await join(server, room, "alice")
    bob = await join(server, room, "bob")
    peers += [alice, bob]
    alice_track = await alice.publish_audio(ToneSource(440))
    bob_track = await bob.publish_audio(ToneSource(660))
    await asyncio.sleep(1.0)
    assert agent.received == {}, "a manual agent heard something before subscribing"
    with rest(server) as client:
        response = client.post(f"/room/{room}/peer/{agent.peer_id}/subscribe_peer", params={"peer_id": bob.endpoint_id})
        assert response.status_code == 200, response.text
    await agent.wait_samples(bob_track, 16000 * 2, timeout=15)
    await asyncio.sleep(0.5)
    assert set(agent.received) == {bob_track}
    assert alice_track not in agent.received
    freq, _ = spectrum_of(agent.received[bob_track].pcm, 16000)
    assert abs(freq - 660) < 10
    await agent.close()


async def test_manual_peer_receives_only_the_subscribed_agent_track(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    first = await agent.add_track()
    second = await agent.add_track()
    await agent.send_audio(first, tone(440, 6.0, 16000))
    await agent.send_audio(second, tone(660, 6.0, 16000))
    listener = await join(server, room, "listener", mode="manual")
    peers.append(listener)
    await asyncio.sleep(1.0)
    assert not listener.remote_tracks, "a manual peer was offered tracks before subscribing"
    with rest(server) as client:
        response = client.post(f"/room/{room}/peer/{listener.endpoint_id}/subscribe_tracks", json={"track_ids": [second]})
        assert response.status_code == 200, response.text
    remote = await listener.wait_for_remote_track(endpoint_id=agent.peer_id, timeout=10)
    assert remote.track_id == second
    freq, _ = await heard(remote, 1.0)
    assert abs(freq - 660) < 10
    assert set(listener.remote_tracks) == {second}
    await agent.close()


async def test_interrupt_silences_the_agent_for_peers_at_once(server: ServerProcess, peers: list[WebRTCPeer]) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    alice = await join(server, room, "alice")
    peers.append(alice)
    track_id = await agent.add_track()
    await agent.send_audio(track_id, tone(440, 0.2, 16000))  # opens the track for the peer
    remote = await alice.wait_for_remote_track(endpoint_id=agent.peer_id, timeout=10)
    await asyncio.sleep(0.5)

    before = remote.recording.received_s
    await agent.send_audio(track_id, tone(440, 10.0, 16000))  # a long utterance...
    await remote.recording.wait_for_seconds(before + 1.0, timeout=10)
    await agent.interrupt(track_id)  # ...barged in on after about a second
    interrupted_at = time.monotonic()
    await asyncio.sleep(1.5)
    arrivals = np.array(remote.recording.arrivals)
    loud = [t for t, frame in zip(arrivals, frames_of(remote), strict=False) if rms(frame) > 1000]
    tail = max(loud) - interrupted_at
    # One frame at the server, plus the trip through the client's jitter buffer; the 9 s
    # still queued at the interrupt are dropped (the bound leaves room for a busy machine).
    assert tail < 1.0, f"the agent was still heard {tail:.2f} s after the interrupt"
    await agent.close()


def frames_of(track: RemoteTrack) -> list[np.ndarray]:
    samples = track.recording.samples()
    count = len(track.recording.arrivals)
    per = len(samples) // max(count, 1)
    return [samples[i * per : (i + 1) * per] for i in range(count)]


async def test_clients_see_endpoints_tracks_and_metadata_in_order(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    alice = await join(server, room, "alice")
    bob = await join(server, room, "bob")
    peers += [alice, bob]
    added = await alice.wait_for_event("endpoint_added", lambda e: e.details["endpoint_id"] == bob.endpoint_id)
    assert json.loads(added.details["metadata_json"]) == {"peer": {"name": "bob"}, "server": {}}
    assert alice.self_metadata == {"peer": {"name": "alice"}, "server": {}}

    track = await bob.publish_audio(ToneSource(300), metadata={"type": "microphone", "paused": False})
    remote = await alice.wait_for_remote_track(endpoint_id=bob.endpoint_id, timeout=10)
    assert remote.track_id == track
    freq, _ = await heard(remote, 1.0)
    assert abs(freq - 300) < 10

    mark = alice.next_event_seq
    await bob.update_track_metadata(track, {"type": "microphone", "paused": True})
    updated = await alice.wait_for_event("track_updated", since=mark)
    assert updated.details["track_id"] == track
    assert json.loads(updated.details["metadata_json"]) == {"type": "microphone", "paused": True}
    await bob.update_metadata({"name": "robert"})
    renamed = await alice.wait_for_event("endpoint_updated", since=mark)
    assert json.loads(renamed.details["metadata_json"])["peer"] == {"name": "robert"}

    mark = alice.next_event_seq
    await bob.unpublish(track)
    await alice.wait_for_event("tracks_removed", lambda e: track in e.details["track_ids"], since=mark)

    track = await bob.publish_audio(ToneSource(300))
    await alice.wait_for_remote_track(lambda t: t.track_id == track, timeout=10)
    mark = alice.next_event_seq
    await bob.leave()
    removed = await alice.wait_for_event("endpoint_removed", since=mark)
    tracks_gone = await alice.wait_for_event("tracks_removed", since=mark)
    assert tracks_gone.seq < removed.seq, "tracks_removed must come before endpoint_removed"
    assert not alice.protocol_errors, list(alice.protocol_errors)
    assert not list(alice.protocol_warnings), list(alice.protocol_warnings)


async def test_reconnecting_with_the_same_token_replaces_the_old_session(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    alice = await join(server, room, "alice")
    peers.append(alice)
    alice_track = await alice.publish_audio(ToneSource(500))
    bob_id, bob_token = create_webrtc_peer(server, room)
    first = await WebRTCPeer.join(server.ws_url, bob_token, metadata={"name": "bob"})
    peers.append(first)
    await first.publish_audio(ToneSource(300))
    await alice.wait_for_remote_track(endpoint_id=bob_id, timeout=10)
    await first.wait_for_remote_track(lambda t: t.track_id == alice_track, timeout=10)
    mark = alice.next_event_seq
    second = await WebRTCPeer.join(server.ws_url, bob_token, metadata={"name": "bob again"})
    peers.append(second)
    removed = await alice.wait_for_event("endpoint_removed", since=mark)
    readded = await alice.wait_for_event("endpoint_added", since=mark)
    assert removed.seq < readded.seq
    assert json.loads(readded.details["metadata_json"])["peer"] == {"name": "bob again"}
    track = await second.publish_audio(ToneSource(700))
    remote = await alice.wait_for_remote_track(lambda t: t.track_id == track, timeout=10)
    freq, _ = await heard(remote, 1.0)
    assert abs(freq - 700) < 10
    # The old session is closed, and its teardown leaves the new session's media alone.
    await first.wait_until(lambda: first.close_code is not None, timeout=5)
    hearing = await second.wait_for_remote_track(lambda t: t.track_id == alice_track, timeout=10)
    await asyncio.sleep(0.5)
    before = hearing.recording.received_s
    await hearing.recording.wait_for_seconds(before + 1.5, timeout=10)
    freq, level = spectrum_of(hearing.recording.samples(), 48000)
    assert abs(freq - 500) < 10 and level > 1000


async def test_a_deleted_peer_is_told_it_was_removed(server: ServerProcess, peers: list[WebRTCPeer]) -> None:
    room = create_room(server)
    alice = await join(server, room, "alice")
    bob = await join(server, room, "bob")
    peers += [alice, bob]
    mark = alice.next_event_seq
    with rest(server) as client:
        assert client.delete(f"/room/{room}/peer/{bob.endpoint_id}").status_code == 204
    await bob.wait_for_event("endpoint_removed", lambda e: e.details["endpoint_id"] == bob.endpoint_id, timeout=5)
    await bob.wait_until(lambda: bob.close_code is not None, timeout=5)
    await alice.wait_for_event("endpoint_removed", lambda e: e.details["endpoint_id"] == bob.endpoint_id, since=mark)


async def test_a_peers_life_is_reported_as_notifications_and_agents_see_track_metadata_changes(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    async with collecting(server) as notes:
        alice = await join(server, room, "alice")
        peers.append(alice)
        track = await alice.publish_audio(ToneSource(440), metadata={"type": "microphone", "paused": False})
        await agent.wait_samples(track, 3200, timeout=10)
        await alice.update_track_metadata(track, {"type": "microphone", "paused": True})
        await wait_for(notes, lambda n: isinstance(n, ServerMessageTrackMetadataUpdated) and n.track.id == track)
        count = len(agent.received[track].chunks)
        await agent.wait_samples(track, agent.samples_from(track) + 1600, timeout=10)
        assert json.loads(agent.received[track].metadata_of(count + 2)) == {"type": "microphone", "paused": True}
        await alice.leave()
        await wait_for(notes, lambda n: isinstance(n, ServerMessagePeerDisconnected) and n.peer_id == alice.endpoint_id)

    mine = [n for n in notes if getattr(n, "peer_id", None) == alice.endpoint_id]
    kinds = [type(n).__name__.removeprefix("ServerMessage") for n in mine]
    assert kinds == [
        "PeerAdded", "PeerConnected", "PeerMetadataUpdated", "TrackAdded", "TrackMetadataUpdated", "TrackRemoved", "PeerDisconnected"
    ], kinds
    connected, metadata, added = mine[1], mine[2], mine[3]
    assert isinstance(connected, ServerMessagePeerConnected) and connected.peer_type == ServerMessagePeerType.PEER_TYPE_WEBRTC
    assert isinstance(metadata, ServerMessagePeerMetadataUpdated)
    assert json.loads(metadata.metadata) == {"peer": {"name": "alice"}, "server": {}}
    assert isinstance(added, ServerMessageTrackAdded) and added.track.id == track
    assert json.loads(added.track.metadata) == {"type": "microphone", "paused": False}
    with rest(server) as client:
        body = client.get(f"/room/{room}").json()["data"]
    (listed,) = [p for p in body["peers"] if p["id"] == alice.endpoint_id]
    assert listed["status"] == "disconnected" and listed["tracks"] == []
    await agent.close()
