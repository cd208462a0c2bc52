"""Test video and RTP instruments: VideoSource, read_frame_index, VideoRecording, drops and counters.

Most tests need no server: two aiortc connections talk directly over loopback (one sends, one
receives), so the NACK/RTX/PLI behaviour checked there is aiortc's own; then a WebRTCPeer is
driven the way test_peer_client_units does, with an aiortc answerer playing the server. The
last tests go through a real server, whose SFU forwards video, NACKs and keyframe requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import av
import numpy as np
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.codecs import depayload, get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from fishjam._proto import peer_notifications_pb2 as pn
from fishjam._proto.media_events.peer import peer_pb2
from fishjam._proto.media_events.server import server_pb2
from shoal.media.keyframes import keyframe_start
from shoal.testing import (
    SeqLog,
    ToneSource,
    VideoRecording,
    VideoSource,
    WebRTCPeer,
    drop_received_rtp,
    drop_sent_rtp,
    read_frame_index,
    route_announced_ssrcs,
    rtp_stats,
)
from shoal.testing.rtp import rtp_payload
from tests.support.agent_client import create_room, create_webrtc_peer
from tests.support.server import ServerProcess

SE = server_pb2.MediaEvent
CE = peer_pb2.MediaEvent
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


async def until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` every 20 ms; fail the test with ``what`` if it does not hold in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def consecutive(indexes: list[int]) -> bool:
    return bool(indexes) and indexes == list(range(indexes[0], indexes[0] + len(indexes)))


def every(n: int, after: int = 10) -> Callable[[int], bool]:
    """Select every ``n``-th sequence number, once ``after`` packets went by.

    A receiver cannot NACK what precedes its first packet, so losing the stream's very first
    packet (one start in ``n``) would be a different test.
    """
    seen = 0

    def select(seq: int) -> bool:
        nonlocal seen
        seen += 1
        return seen > after and seq % n == 0

    return select


# ---- the source and reading the index back ----------------------------------------------------


async def test_video_source_frames_carry_their_index_and_change_every_frame() -> None:
    source = VideoSource(320, 240, fps=15, realtime=False)
    frames = [await source.recv() for _ in range(20)]
    assert source.kind == "video" and source.frames_sent == 20
    assert all(f.format.name == "yuv420p" and (f.width, f.height) == (320, 240) for f in frames)
    assert [f.pts for f in frames[:3]] == [0, 6000, 12000]  # 90 kHz clock at 15 fps
    assert frames[0].time_base.denominator == 90000
    assert [read_frame_index(f) for f in frames] == list(range(20))
    pictures = [f.to_ndarray() for f in frames]
    below = 2 * 240 // 8  # under the index bands: only the square moves there
    assert all(
        not np.array_equal(a[below:240], b[below:240]) for a, b in zip(pictures, pictures[1:], strict=False)
    )


def test_frame_index_is_16_bits_and_foreign_pictures_are_unreadable() -> None:
    source = VideoSource(realtime=False)
    for index in (0, 1, 0xA5A5, 65535, 65536 + 7):
        frame = av.VideoFrame.from_ndarray(source.picture(index), format="yuv420p")
        assert read_frame_index(frame) == index % 65536
    grey = av.VideoFrame.from_ndarray(np.full((360, 320), 128, np.uint8), format="yuv420p")
    assert read_frame_index(grey) is None
    white = av.VideoFrame.from_ndarray(np.full((360, 320), 235, np.uint8), format="yuv420p")
    assert read_frame_index(white) is None  # the check row is not the inverse of the bits
    with pytest.raises(ValueError):
        VideoSource(63, 48)


async def test_index_survives_vp8_coding_scaling_and_other_pixel_formats() -> None:
    source = VideoSource(realtime=False)
    encoder, decoder = get_encoder(VP8), get_decoder(VP8)
    decoded: list[av.VideoFrame] = []
    for _ in range(30):
        payloads, timestamp = encoder.encode(await source.recv(), False)
        data = b"".join(depayload(VP8, p) for p in payloads)
        decoded += decoder.decode(JitterFrame(data, timestamp))
    assert [read_frame_index(f) for f in decoded] == list(range(30))
    last = decoded[-1]
    assert read_frame_index(last.reformat(width=160, height=120)) == 29
    assert read_frame_index(last.reformat(width=640, height=480, format="rgb24")) == 29
    assert read_frame_index(last.reformat(format="nv12")) == 29


async def test_video_source_is_paced_in_real_time() -> None:
    source = VideoSource(fps=30)
    start = time.monotonic()
    for _ in range(7):
        await source.recv()
    elapsed = time.monotonic() - start
    assert 0.18 <= elapsed < 0.6  # the first frame is immediate, then one every 33 ms


async def test_video_recording_is_bounded_and_waits_for_frames() -> None:
    source = VideoSource(realtime=False)
    recording = VideoRecording(max_seconds=0.1)  # 6 entries at VideoRecording.MAX_FPS
    for i in range(10):
        recording.append(await source.recv(), float(i))
    recording.append(av.VideoFrame.from_ndarray(np.full((360, 320), 128, np.uint8), format="yuv420p"), 10.0)
    assert recording.frames == 11 and recording.unreadable == 1
    assert recording.indexes == [4, 5, 6, 7, 8, 9]  # the last 6 readable ones
    assert recording.arrivals == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert recording.first_frame_at == 0.0 and recording.last_size == (320, 240)
    assert recording.last_frame is not None
    waiting = asyncio.create_task(recording.wait_for_frames(13, timeout=1))
    await asyncio.sleep(0)
    recording.append(await source.recv())
    assert not waiting.done()
    recording.append(await source.recv())
    await waiting
    with pytest.raises(TimeoutError):
        await recording.wait_for_frames(100, timeout=0.05)


# ---- pure helpers of the instruments ------------------------------------------------------------


def test_seq_log_unwraps_sequence_numbers_and_reports_gaps() -> None:
    log = SeqLog()
    for seq in (65530, 65531, 65533, 65535, 0, 1, 3):
        log.add(seq)
    assert log.missing() == [65532, 65534, 2]
    assert log.missing(recent=2) == [65532, 65534]  # 2 and 3 may still be on their way
    log.add(65532)  # late (a retransmission) and before the wrap
    log.add(2)
    log.add(65534)
    assert log.missing() == [] and 65534 in log and 4 not in log
    assert log.first == 65530 and log.highest == 65536 + 3 and log.received == 10


async def test_keyframe_starts_are_recognised_in_vp8_and_h264_payloads() -> None:
    source = VideoSource(realtime=False)
    encoder = get_encoder(VP8)
    first, _ = encoder.encode(await source.recv(), False)
    second, _ = encoder.encode(await source.recv(), False)
    forced, _ = encoder.encode(await source.recv(), True)
    assert keyframe_start("VP8", first[0]) and keyframe_start("VP8", forced[0])
    assert not keyframe_start("VP8", second[0])
    assert not any(keyframe_start("VP8", p) for p in first[1:])  # only the start of the frame
    assert keyframe_start("H264", bytes([0x65, 0x88]))  # IDR slice
    assert keyframe_start("H264", bytes([0x7C, 0x85, 0x00]))  # FU-A start of an IDR
    assert not keyframe_start("H264", bytes([0x7C, 0x05, 0x00]))  # FU-A middle of an IDR
    assert keyframe_start(
        "H264", bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE])
    )  # STAP-A SPS
    assert not keyframe_start("H264", bytes([0x41, 0x9A]))  # non-IDR slice
    # RTP header with one CSRC and a one-word header extension, then the payload
    header = bytes([0x91, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0xBE, 0xDE, 0, 1, 0x10, 0x30, 0, 0])
    assert rtp_payload(header + b"\x10abc") == b"\x10abc"
    assert rtp_payload(bytes([0x80, 0x60]) + bytes(10) + b"xyz") == b"xyz"


# ---- two aiortc connections, directly ------------------------------------------------------------


class Link:
    """A sending and a receiving aiortc connection over loopback, with the receiver's tracks read."""

    def __init__(self) -> None:
        self.sender = RTCPeerConnection()
        self.receiver = RTCPeerConnection()
        self.recordings: list[VideoRecording] = []
        self._readers: list[asyncio.Task[None]] = []
        self.receiver.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        recording = VideoRecording()
        self.recordings.append(recording)
        self._readers.append(asyncio.create_task(self._read(track, recording)))

    @staticmethod
    async def _read(track: MediaStreamTrack, recording: VideoRecording) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            recording.append(frame)

    def send(self, source: MediaStreamTrack) -> RTCRtpTransceiver:
        return self.sender.addTransceiver(source, direction="sendonly")

    async def connect(self) -> None:
        await self.sender.setLocalDescription(await self.sender.createOffer())
        await self.receiver.setRemoteDescription(self.sender.localDescription)
        await self.receiver.setLocalDescription(await self.receiver.createAnswer())
        await self.sender.setRemoteDescription(self.receiver.localDescription)

    async def close(self) -> None:
        await self.sender.close()
        await self.receiver.close()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    made = Link()
    yield made
    await made.close()


async def test_video_frames_arrive_in_order_with_their_indexes(link: Link) -> None:
    received, sent = rtp_stats(link.receiver, "video"), rtp_stats(link.sender, "video")
    link.send(VideoSource(fps=30))
    await link.connect()
    await until(lambda: len(link.recordings) == 1, what="the remote track")
    recording = link.recordings[0]
    await recording.wait_for_frames(30, timeout=15)
    assert recording.unreadable == 0 and recording.last_size == (320, 240)
    assert recording.indexes[0] == 0 and consecutive(recording.indexes)
    assert recording.first_frame_at is not None and len(recording.arrivals) == recording.frames
    # aiortc's VP8 encoder also restarts, with a keyframe, when the receiver's REMB moves the bitrate 10 %
    assert received.rtp_received > 0 and 1 <= received.keyframes_received <= sent.keyframes_sent
    assert sent.rtp_sent >= received.rtp_received and sent.dropped_sent == sent.nacks_received == 0


async def test_packets_dropped_on_the_way_out_are_nacked_and_recovered_by_rtx(link: Link) -> None:
    sent = drop_sent_rtp(link.sender, "video", every(10)).stats  # before negotiation
    received = rtp_stats(link.receiver, "video")
    link.send(VideoSource(fps=30))
    await link.connect()
    await until(lambda: sent.dropped_sent >= 6, timeout=15, what="six dropped packets")
    await until(lambda: received.rtx_received >= 5, timeout=5, what="retransmissions")
    assert all(seq % 10 == 0 for seq in sent.dropped_sent_seqs)
    assert sent.nacks_received >= 5 and set(sent.nacked_seqs) <= set(sent.dropped_sent_seqs)
    assert sent.rtx_sent >= 5 and received.nacks_sent >= 5
    dropped = list(sent.dropped_sent_seqs)[:-1]  # the last may still be on its way
    ((ssrc, log),) = received.received.items()
    assert all(seq in log for seq in dropped), "a dropped packet never arrived"
    assert log.missing(recent=3) == []
    recording = link.recordings[0]
    await recording.wait_for_frames(recording.frames + 5, timeout=5)
    assert consecutive(recording.indexes) and recording.unreadable == 0  # no frame lost


async def test_packets_dropped_on_arrival_are_nacked_and_recovered(link: Link) -> None:
    link.send(VideoSource(fps=30))
    await link.connect()
    await until(lambda: bool(link.recordings) and link.recordings[0].frames >= 5, what="first frames")
    received = drop_received_rtp(link.receiver, "video", lambda seq: seq % 7 == 0).stats  # media flows
    sent = rtp_stats(link.sender, "video")
    await until(lambda: received.dropped_received >= 6, timeout=15, what="six dropped arrivals")
    await until(lambda: received.rtx_received >= 5, timeout=5, what="retransmissions")
    assert received.nacks_sent >= 5 and sent.nacks_received >= 5 and received.rtx_unmapped == 0
    ((ssrc, log),) = received.received.items()
    assert all(seq in log for seq in list(received.dropped_received_seqs)[:-1])
    assert log.missing(recent=3) == []
    recording = link.recordings[0]
    await recording.wait_for_frames(recording.frames + 5, timeout=5)
    assert consecutive(recording.indexes)


async def test_without_rtx_resends_on_the_media_ssrc_pass_the_second_time(link: Link) -> None:
    transceiver = link.send(VideoSource(fps=30))
    vp8_only = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
    transceiver.setCodecPreferences(vp8_only)  # no RTX negotiated: aiortc resends the packet as it was
    sent = drop_sent_rtp(link.sender, "video", every(10)).stats
    received = drop_received_rtp(link.receiver, "video", every(7)).stats
    await link.connect()
    await until(lambda: sent.resent_sent >= 4 and received.resent_received >= 4, timeout=15, what="resends")
    assert sent.rtx_sent == 0 and received.rtx_received == 0
    ((ssrc, log),) = received.received.items()
    assert log.missing(recent=3) == []
    recording = link.recordings[0]
    await recording.wait_for_frames(recording.frames + 5, timeout=5)
    assert consecutive(recording.indexes)


async def test_a_picture_loss_indication_is_answered_with_a_keyframe(link: Link) -> None:
    sent, received = rtp_stats(link.sender, "video"), rtp_stats(link.receiver, "video")
    transceiver = link.send(VideoSource(fps=30))
    await link.connect()
    await until(lambda: bool(link.recordings) and link.recordings[0].frames >= 5, what="first frames")
    assert received.keyframes_received >= 1 and sent.keyframe_requests_received == 0
    before_sent, before_received = sent.keyframes_sent, received.keyframes_received
    (remote,) = link.receiver.getTransceivers()
    asked = time.monotonic()
    await remote.receiver._send_rtcp_pli(transceiver.sender._ssrc)
    await until(lambda: received.keyframes_received > before_received, timeout=5, what="a keyframe")
    assert time.monotonic() - asked < 0.5  # the next frame (33 ms), not a later bitrate change
    assert (
        received.plis_sent == 1 and sent.keyframe_requests_received == 1 and sent.keyframes_sent > before_sent
    )


async def test_aiortc_cannot_route_rtx_when_two_video_tracks_share_a_bundle(link: Link) -> None:
    """aiortc routes by SSRC or an unambiguous payload type, never by MID: RTX for 2 tracks is lost."""
    link.send(VideoSource(fps=30))
    link.send(VideoSource(fps=30))
    sent = drop_sent_rtp(link.sender, "video", every(10)).stats
    received = rtp_stats(link.receiver, "video")
    await link.connect()
    await until(lambda: sent.rtx_sent >= 4, timeout=15, what="retransmissions")
    await asyncio.sleep(0.2)
    assert received.unrouted_received >= 4 and received.rtx_received == 0
    assert any(received.missing_received(recent=3).values())  # the gaps stay


async def test_routing_by_the_announced_ssrcs_lets_rtx_reach_every_video_receiver(link: Link) -> None:
    link.send(VideoSource(fps=30))
    link.send(VideoSource(fps=30))
    sent = drop_sent_rtp(link.sender, "video", every(10)).stats
    received = rtp_stats(link.receiver, "video")
    await link.connect()
    assert route_announced_ssrcs(link.receiver) == 4  # two media SSRCs and their RTX SSRCs
    await until(lambda: sent.dropped_sent >= 8 and received.rtx_received >= 6, timeout=15, what="RTX")
    assert received.unrouted_received == 0 and received.rtx_unmapped == 0
    assert len(received.received) == 2
    assert all(missing == [] for missing in received.missing_received(recent=3).values())
    await until(lambda: min(r.frames for r in link.recordings) >= 20, timeout=10, what="frames on both")
    assert all(consecutive(r.indexes) for r in link.recordings)


# ---- a WebRTCPeer, with an aiortc answerer as the server -----------------------------------------


class FakeServer:
    """Feeds server events to a WebRTCPeer and answers its offers with an aiortc connection."""

    def __init__(self) -> None:
        self.peer = WebRTCPeer("ws://127.0.0.1:1", "tok", send_stats=False)
        self.pc = RTCPeerConnection()
        self.sent: list[pn.PeerMessage] = []
        self.recordings: list[VideoRecording] = []
        self._readers: list[asyncio.Task[None]] = []
        self.peer._send_frame = self._capture
        self.pc.on("track", self._on_track)

    async def _capture(self, data: bytes) -> None:
        message = pn.PeerMessage()
        message.ParseFromString(data)
        self.sent.append(message)

    def _on_track(self, track: MediaStreamTrack) -> None:
        recording = VideoRecording()
        self.recordings.append(recording)
        self._readers.append(asyncio.create_task(Link._read(track, recording)))

    def offers(self) -> list[CE.SdpOffer]:
        return [
            m.peer_media_event.sdp_offer
            for m in self.sent
            if m.HasField("peer_media_event") and m.peer_media_event.HasField("sdp_offer")
        ]

    async def feed(self, **event: object) -> None:
        await self.peer.handle_server_event(SE(**event))  # type: ignore[arg-type]

    async def connect(self) -> None:
        self.peer.state = "joining"
        endpoints = {
            "p1": SE.Endpoint(metadata_json='{"peer":{},"server":{}}'),
            "agent": SE.Endpoint(endpoint_type="agent", metadata_json='{"peer":{},"server":{}}'),
        }
        await self.feed(connected=SE.Connected(endpoint_id="p1", endpoint_id_to_endpoint=endpoints))

    async def answer(self, send_on: dict[str, tuple[str, MediaStreamTrack]] | None = None) -> None:
        """Answer the last offer, sending ``send_on[mid] = (track_id, source)`` on the peer's recv slots."""
        offer = self.offers()[-1]
        await self.pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        mids = dict(offer.mid_to_track_id)
        for mid, (track_id, source) in (send_on or {}).items():
            transceiver = next(t for t in self.pc.getTransceivers() if t.mid == mid)
            transceiver.sender.replaceTrack(source)
            transceiver.direction = "sendonly"
            mids[mid] = track_id
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.feed(sdp_answer=SE.SdpAnswer(sdp=self.pc.localDescription.sdp, mid_to_track_id=mids))

    async def close(self) -> None:
        await self.peer.close()
        await self.pc.close()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeServer]:
    made = FakeServer()
    await made.connect()
    yield made
    await made.close()


async def test_peer_publishes_video_with_camera_metadata_and_drops_chosen_packets(
    fake_server: FakeServer,
) -> None:
    peer = fake_server.peer
    with pytest.raises(ValueError):
        await peer.publish_video(ToneSource(440))
    peer.drop_sent_rtp("video", every(10))  # before the peer connection exists
    assert peer.pc is None
    publish = asyncio.create_task(peer.publish_video(VideoSource(fps=30)))
    await until(lambda: any(m.HasField("peer_media_event") for m in fake_server.sent), what="renegotiate")
    await fake_server.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes()))
    offer = fake_server.offers()[-1]
    (track_id,) = peer.local_tracks
    assert dict(offer.track_id_to_metadata_json) == {track_id: '{"type":"camera","paused":false}'}
    assert "m=video" in offer.sdp
    await fake_server.answer()
    assert await asyncio.wait_for(publish, 5) == track_id
    stats = peer.rtp_stats("video")
    await until(lambda: stats.dropped_sent >= 4 and stats.nacks_received >= 3, timeout=15, what="NACKs")
    assert stats.rtx_sent >= 3 and set(stats.nacked_seqs) <= set(stats.dropped_sent_seqs)
    await until(lambda: bool(fake_server.recordings), what="the server's track")
    recording = fake_server.recordings[0]
    await recording.wait_for_frames(20, timeout=10)
    assert consecutive(recording.indexes)


async def test_peer_records_received_video_and_recovers_packets_it_drops(fake_server: FakeServer) -> None:
    peer = fake_server.peer
    peer.drop_received_rtp("video", every(5))
    track = SE.Track(metadata_json='{"type":"camera"}')
    await fake_server.feed(
        tracks_added=SE.TracksAdded(endpoint_id="agent", track_id_to_track={"agent:v": track})
    )
    await fake_server.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(video=1)))
    await fake_server.answer(send_on={"0": ("agent:v", VideoSource(fps=30))})
    remote = await peer.wait_for_remote_track(endpoint_id="agent", timeout=10)
    assert remote.kind == "video"
    await remote.video.wait_for_frames(40, timeout=15)
    assert remote.video.last_size == (320, 240) and remote.video.unreadable == 0
    assert consecutive(remote.video.indexes)
    assert remote.recording.frames >= 40  # video frames are counted in the audio recording too
    stats = peer.rtp_stats("video")
    assert stats.dropped_received >= 5 and stats.nacks_sent >= 5 and stats.rtx_received >= 5
    assert all(log.missing(recent=3) == [] for log in stats.received.values())


# ---- through a real server (its SFU forwards video) ----------------------------------------------


@pytest.fixture
async def join_room(server: ServerProcess) -> AsyncIterator[Callable[[], Awaitable[WebRTCPeer]]]:
    """Joins one more peer to the test's room per call; all are closed at the end."""
    room = create_room(server)
    joined: list[WebRTCPeer] = []

    async def join() -> WebRTCPeer:
        _, token = create_webrtc_peer(server, room)
        joined.append(await WebRTCPeer.join(server.ws_url, token, metadata={"name": f"p{len(joined)}"}))
        return joined[-1]

    yield join
    await asyncio.gather(*(peer.close() for peer in joined), return_exceptions=True)


async def test_through_the_server_lost_video_packets_are_recovered_on_both_legs(
    join_room: Callable[[], Awaitable[WebRTCPeer]],
) -> None:
    alice, bob = await join_room(), await join_room()
    up, down = alice.rtp_stats("video"), bob.rtp_stats("video")
    track_id = await alice.publish_video(VideoSource(fps=30))
    remote = await bob.wait_for_remote_track(lambda t: t.track_id == track_id, timeout=15)
    await remote.video.wait_for_frames(10, timeout=20)
    alice.drop_sent_rtp("video", every(10, after=0))  # the server never gets these
    bob.drop_received_rtp("video", every(7, after=0))  # the server sent these, Bob loses them
    await until(lambda: up.dropped_sent >= 5 and down.dropped_received >= 5, timeout=15, what="drops")
    alice.drop_sent_rtp("video", None)
    bob.drop_received_rtp("video", None)
    await until(lambda: up.nacks_received >= 5, timeout=5, what="the server's NACKs to Alice")
    frames = remote.video.frames
    await remote.video.wait_for_frames(frames + 15, timeout=10)
    assert down.nacks_sent >= 5 and down.rtx_received >= 5
    assert all(log.missing(recent=3) == [] for log in down.received.values())
    assert consecutive(remote.video.indexes) and remote.video.unreadable == 0


async def test_through_the_server_a_keyframe_request_reaches_the_publisher(
    join_room: Callable[[], Awaitable[WebRTCPeer]],
) -> None:
    alice, bob = await join_room(), await join_room()
    up, down = alice.rtp_stats("video"), bob.rtp_stats("video")
    track_id = await alice.publish_video(VideoSource(fps=30))
    remote = await bob.wait_for_remote_track(lambda t: t.track_id == track_id, timeout=15)
    await remote.video.wait_for_frames(10, timeout=20)
    requests, keyframes = up.keyframe_requests_received, down.keyframes_received
    assert bob.pc is not None
    transceiver = next(t for t in bob.pc.getTransceivers() if t.mid == remote.mid)
    (ssrc,) = down.received  # the server's SSRC for this track towards Bob
    await transceiver.receiver._send_rtcp_pli(ssrc)
    await until(lambda: down.keyframes_received > keyframes, timeout=5, what="a keyframe at Bob")
    assert up.keyframe_requests_received > requests and down.plis_sent == 1
