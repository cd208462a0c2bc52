"""Conference rooms: participants' media is forwarded between them (Python peers, real WebRTC).

Checks the media itself — tones by frequency, the exact Opus payloads a publisher sent,
decoded video frames — and the SDP the server answers with (one video codec per room, no
video in audio-only rooms, no simulcast).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import av
import pytest
from aiortc import RTCRtpReceiver
from aiortc.mediastreams import VideoStreamTrack
from aiortc.rtp import RtpPacket

import shoal.testing.peer as peer_module
from fishjam import FishjamClient
from fishjam.agent import IncomingTrackImage
from fishjam.events import ServerMessageTrackAdded
from shoal.testing import (
    OpusPacketSource,
    ToneSource,
    VideoSource,
    WebRTCPeer,
    encode_opus_tone,
    read_frame_index,
)
from tests.support.agent_client import RawAgent, create_room
from tests.support.notify import collecting, wait_for
from tests.support.peers import SETTLE_S, heard, join, spectrum_of
from tests.support.server import ServerProcess


async def two_peers(server: ServerProcess, peers: list[WebRTCPeer], **room_config: Any) -> tuple[WebRTCPeer, WebRTCPeer]:
    """Alice and bob, joined to a new room (``room_config`` as the REST body spells it)."""
    room = create_room(server, **room_config)
    alice = await join(server, room, "alice")
    bob = await join(server, room, "bob")
    peers += [alice, bob]
    return alice, bob


async def frequency_heard(peer: WebRTCPeer, track_id: str) -> float:
    remote = await peer.wait_for_remote_track(lambda t: t.track_id == track_id, timeout=15)
    return (await heard(remote))[0]


def receivers_of(peer: WebRTCPeer, kind: str) -> list[RTCRtpReceiver]:
    assert peer.pc is not None
    return [t.receiver for t in peer.pc.getTransceivers() if t.kind == kind]


def record_payloads(receiver: RTCRtpReceiver, into: list[bytes]) -> None:
    """Keep every RTP payload this receiver gets (after SRTP), then let aiortc handle it."""
    original = receiver._handle_rtp_packet

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        into.append(packet.payload)
        await original(packet, arrival_time_ms)

    setattr(receiver, "_handle_rtp_packet", handle)  # noqa: B010


def answered_codecs(peer: WebRTCPeer, kind: str) -> list[set[str]]:
    """Per m-line of ``kind`` in the server's last answer: the codec names it accepted."""
    assert peer.pc is not None and peer.pc.remoteDescription is not None
    sections = peer.pc.remoteDescription.sdp.split("\r\nm=")[1:]
    result = []
    for section in sections:
        if section.startswith(kind):
            result.append({line.split(" ", 1)[1].split("/")[0].upper() for line in section.split("\r\n")
                           if line.startswith("a=rtpmap:")})
    return result


async def test_participants_hear_each_other_while_an_agent_hears_both(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room, rate=16000)
    alice = await join(server, room, "alice")
    bob = await join(server, room, "bob")
    peers += [alice, bob]  # joined after the agent, which hears them from the start
    alice_track = await alice.publish_audio(ToneSource(440))
    bob_track = await bob.publish_audio(ToneSource(660))

    assert abs(await frequency_heard(bob, alice_track) - 440) < 10
    assert abs(await frequency_heard(alice, bob_track) - 660) < 10
    for track_id, freq in ((alice_track, 440), (bob_track, 660)):
        await agent.wait_samples(track_id, int(16000 * (1.5 + SETTLE_S)), timeout=15)
        assert abs(spectrum_of(agent.received[track_id].pcm, 16000)[0] - freq) < 10
    await agent.close()


async def test_audio_reaches_other_participants_as_the_opus_packets_the_publisher_sent(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    """Forwarding, not transcoding: every payload a listener gets is one the publisher encoded."""
    alice, bob = await two_peers(server, peers)
    sent = encode_opus_tone(523.0, 2.0, bitrate=24000)
    track_id = await alice.publish_audio(OpusPacketSource(sent))
    remote = await bob.wait_for_remote_track(lambda t: t.track_id == track_id, timeout=15)
    await remote.recording.wait_for_seconds(0.2, timeout=15)
    received: list[bytes] = []
    for receiver in receivers_of(bob, "audio"):
        record_payloads(receiver, received)
    await remote.recording.wait_for_seconds(2.0, timeout=15)

    assert len(received) >= 50
    assert set(received) <= set(sent), "a payload that the publisher never sent reached the listener"
    assert abs(await frequency_heard(bob, track_id) - 523) < 10


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_video_is_forwarded_in_the_rooms_codec(server: ServerProcess, peers: list[WebRTCPeer], codec: str) -> None:
    alice, bob = await two_peers(server, peers, videoCodec=codec)
    track_id = await alice.publish(VideoStreamTrack(), {"type": "camera", "paused": False})
    remote = await bob.wait_for_remote_track(lambda t: t.track_id == track_id, timeout=15)
    await remote.video.wait_for_frames(30, timeout=20)

    assert remote.kind == "video"
    for peer in (alice, bob):  # publisher's and receiver's m-lines alike
        assert answered_codecs(peer, "video") == [{codec.upper(), "RTX"}]
        assert answered_codecs(peer, "audio") in ([], [{"OPUS"}])


async def test_audio_only_rooms_answer_video_inactive_and_never_publish_it(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    alice, bob = await two_peers(server, peers, roomType="audio_only")
    assert alice.room_type == peer_module.PeerMessage.ROOM_TYPE_AUDIO_ONLY
    alice.room_type = peer_module.PeerMessage.ROOM_TYPE_CONFERENCE  # act like a client that does not check
    async with collecting(server) as notifications:
        await alice.publish(VideoStreamTrack(), {"type": "camera"})
        audio_id = await alice.publish_audio(ToneSource(440))
        assert abs(await frequency_heard(bob, audio_id) - 440) < 10
        await wait_for(notifications, lambda n: isinstance(n, ServerMessageTrackAdded))
        await asyncio.sleep(0.5)  # a video TrackAdded would have come first

    assert alice.pc is not None and alice.pc.remoteDescription is not None
    video_sections = [s for s in alice.pc.remoteDescription.sdp.split("\r\nm=")[1:] if s.startswith("video")]
    assert len(video_sections) == 1 and "a=inactive" in video_sections[0]
    assert list(bob.remote_tracks) == [audio_id]
    added = [n for n in notifications if isinstance(n, ServerMessageTrackAdded)]
    assert [n.track.id for n in added] == [audio_id]
    assert not alice.protocol_errors and not bob.protocol_errors


def add_simulcast(sdp: str) -> str:
    """What ts-client 0.26+ offers for a camera with three layers (peer-signaling.md §4.7)."""
    lines = sdp.split("\r\n")
    out: list[str] = []
    in_video = False
    for line in lines:
        if line.startswith("m="):
            if in_video:
                out += ["a=rid:l send", "a=rid:m send", "a=rid:h send", "a=simulcast:send l;m;h"]
            in_video = line.startswith("m=video")
            out.append(line)
            if in_video:
                out.append("a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id")
                out.append("a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id")
            continue
        if in_video and line == "":
            out += ["a=rid:l send", "a=rid:m send", "a=rid:h send", "a=simulcast:send l;m;h"]
            in_video = False
        out.append(line)
    return "\r\n".join(out)


async def test_a_simulcast_offer_is_answered_without_simulcast_and_one_encoding_is_forwarded(
    server: ServerProcess, peers: list[WebRTCPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    original: Callable[..., Any] = peer_module.sdp_offer_event
    offered: list[str] = []

    def simulcast_offer(sdp: str, *args: Any) -> Any:
        if "m=video" in sdp:
            sdp = add_simulcast(sdp)
            offered.append(sdp)
        return original(sdp, *args)

    monkeypatch.setattr(peer_module, "sdp_offer_event", simulcast_offer)
    alice, bob = await two_peers(server, peers, videoCodec="vp8")
    track_id = await alice.publish(VideoStreamTrack(), {"type": "camera", "paused": False})
    remote = await bob.wait_for_remote_track(lambda t: t.track_id == track_id, timeout=15)
    await remote.video.wait_for_frames(30, timeout=20)

    assert offered and "a=simulcast:send l;m;h" in offered[0]
    assert alice.pc is not None and alice.pc.remoteDescription is not None
    answer = alice.pc.remoteDescription.sdp
    assert "a=simulcast" not in answer and "a=rid:" not in answer and "rtp-stream-id" not in answer
    assert answered_codecs(alice, "video") == [{"VP8", "RTX"}]


def decode_jpeg(data: bytes) -> av.VideoFrame:
    frames = av.CodecContext.create("mjpeg", "r").decode(av.Packet(data))
    assert frames, "the image is not a decodable JPEG"
    frame = frames[0]
    assert isinstance(frame, av.VideoFrame)
    return frame


async def test_an_agent_captures_a_participants_video_as_a_recent_jpeg_at_most_once_per_second(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server, videoCodec="vp8")
    alice = await join(server, room, "alice")
    peers.append(alice)
    source = VideoSource(width=640, height=360, fps=15)
    video_id = await alice.publish_video(source)
    audio_id = await alice.publish_audio(ToneSource(440))
    api = FishjamClient(fishjam_id=server.url, management_token=server.token)
    agent = api.create_agent(room)
    images: list[tuple[float, IncomingTrackImage]] = []  # (arrival, image)
    arrived = asyncio.Event()

    async def images_received(count: int) -> None:
        async with asyncio.timeout(10):
            while len(images) < count:
                arrived.clear()
                await arrived.wait()

    async with agent.connect() as session:

        async def read() -> None:
            async for message in session.receive():
                if isinstance(message, IncomingTrackImage):
                    images.append((time.monotonic(), message))
                    arrived.set()

        reader = asyncio.create_task(read())
        await asyncio.sleep(1.0)  # the video is flowing (forwarded, not decoded) by now
        sent_before = source.frames_sent
        await session.capture_image(video_id)
        await session.capture_image(audio_id)  # not a video track: never answered
        await images_received(1)
        await session.capture_image(video_id)  # right away: served no sooner than 1 s after the first
        await images_received(2)
        await asyncio.sleep(1.0)
        reader.cancel()

    assert [image.track_id for _, image in images] == [video_id, video_id]
    shown = []
    for _, image in images:
        assert image.content_type == "image/jpeg"
        frame = decode_jpeg(image.data)
        assert (frame.width, frame.height) == (640, 360)
        index = read_frame_index(frame)
        assert index is not None and index >= sent_before, "the image must show a frame from after the request"
        shown.append(index)
    # Captured at least ~1 s apart, measured by the publisher's own frame numbers (15 fps),
    # whatever the delays on the way to the agent.
    assert shown[1] - shown[0] >= 12, shown


def every_fifth(seq: int) -> bool:
    return seq % 5 == 3


async def test_video_lost_between_publisher_and_server_is_recovered_by_nack(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    alice, bob = await two_peers(server, peers, videoCodec="vp8")
    alice.drop_sent_rtp("video", every_fifth)  # 20% of first transmissions never reach the server
    bob.rtp_tap("video")  # count from the first packet
    track_id = await alice.publish_video(VideoSource(width=640, height=480, fps=15))
    remote = await bob.wait_for_remote_track(lambda t: t.track_id == track_id, timeout=15)
    await remote.video.wait_for_frames(60, timeout=30)

    sent, got = alice.rtp_stats("video"), bob.rtp_stats("video")
    assert sent.dropped_sent >= 10
    assert sent.nacks_received >= sent.dropped_sent // 2, "the server must NACK what it did not get"
    assert sent.rtx_sent + sent.resent_sent >= sent.dropped_sent // 2
    assert got.received and all(not missing for missing in got.missing_received(recent=30).values()), (
        "the listener has permanent gaps: lost packets were not recovered"
    )
    indexes = remote.video.indexes
    assert len(indexes) >= 30 and indexes == sorted(indexes)
    assert len(set(indexes)) >= 0.9 * (max(indexes) - min(indexes) + 1), "frames were lost for good"


async def test_video_lost_between_server_and_listener_is_retransmitted_by_the_server(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    alice, bob = await two_peers(server, peers, videoCodec="vp8")
    bob.drop_received_rtp("video", every_fifth)  # 20% of what the server sends bob is lost
    alice.rtp_tap("video")  # count from the first packet
    track_id = await alice.publish_video(VideoSource(width=640, height=480, fps=15))
    remote = await bob.wait_for_remote_track(lambda t: t.track_id == track_id, timeout=15)
    await remote.video.wait_for_frames(60, timeout=30)

    sent, got = alice.rtp_stats("video"), bob.rtp_stats("video")
    assert got.dropped_received >= 10
    assert got.nacks_sent >= got.dropped_received // 2
    assert got.rtx_received + got.resent_received >= got.dropped_received // 2
    assert all(not missing for missing in got.missing_received(recent=30).values())
    assert sent.nacks_received == 0, "the server answers from its own history, not by asking the publisher"
    indexes = remote.video.indexes
    assert len(set(indexes)) >= 0.9 * (max(indexes) - min(indexes) + 1)


async def test_a_late_joiner_gets_a_keyframe_requested_for_it(
    server: ServerProcess, peers: list[WebRTCPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The publisher's encoder makes keyframes only when asked (aiortc: GOP of 3000 frames).

    aiortc also restarts its VP8 encoder, with a keyframe, whenever the bitrate estimate moves
    by more than 10 %; one such keyframe arriving as carol joins made her need no request
    (the test failed about one run in three). Alice's encoder keeps its first bitrate here.
    """
    from aiortc.codecs.vpx import Vp8Encoder

    monkeypatch.setattr(Vp8Encoder, "target_bitrate", property(Vp8Encoder.target_bitrate.fget, lambda self, value: None))
    room = create_room(server, videoCodec="vp8")
    alice = await join(server, room, "alice")
    peers.append(alice)
    source = VideoSource(width=320, height=240, fps=15)
    track_id = await alice.publish_video(source)
    # The first keyframe is long gone: 3 s of frames went to the encoder after it (counted, not
    # slept: on a loaded machine the sender may start late, and its first keyframe with it).
    async with asyncio.timeout(60):
        while source.frames_sent < 45:  # noqa: ASYNC110 - a plain counter, no event to wait on
            await asyncio.sleep(0.1)
    stats = alice.rtp_stats("video")
    requests_before, keyframes_before, joined_at_frame = (
        stats.keyframe_requests_received, stats.keyframes_sent, source.frames_sent
    )

    carol = await join(server, room, "carol")
    peers.append(carol)
    carol.rtp_tap("video")  # counting from the first packet (media has not started yet)
    remote = await carol.wait_for_remote_track(lambda t: t.track_id == track_id, timeout=15)
    await remote.video.wait_for_frames(15, timeout=20)

    assert stats.keyframe_requests_received > requests_before
    assert stats.keyframes_sent > keyframes_before
    assert carol.rtp_stats("video").keyframes_received >= 1
    indexes = remote.video.indexes
    assert indexes and indexes[0] >= joined_at_frame, "the late joiner started on a fresh keyframe"
    assert len(set(indexes)) >= 0.9 * (max(indexes) - min(indexes) + 1)
