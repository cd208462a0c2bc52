"""Units of the forwarding path: keyframe detection on real encoder output, the RTP fan-out."""

from __future__ import annotations

import asyncio
import concurrent.futures
import fractions
import time

import av
import numpy as np
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RtpPacket

from shoal.media.fanout import PcmOut, RtpOut, TrackFanout
from shoal.media.forward import RtpTap
from shoal.media.keyframes import h264_keyframe_start, keyframe_start, vp8_keyframe_start
from shoal.media.snapshot import VideoSnapshots, encode_jpeg, fit_within


def frames(count: int, width: int = 320, height: int = 240) -> list[av.VideoFrame]:
    result = []
    for n in range(count):
        picture = np.full((height, width, 3), (n * 40) % 256, dtype=np.uint8)
        picture[:, (n * 8) % width :] = 255 - picture[:, (n * 8) % width :]
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        frame.pts = n * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        result.append(frame)
    return result


@pytest.mark.parametrize(("codec", "encoder_class"), [("VP8", Vp8Encoder), ("H264", H264Encoder)])
def test_keyframes_are_told_from_delta_frames_in_real_encoder_output(codec: str, encoder_class: type) -> None:
    encoder = encoder_class()
    starts = []
    for n, frame in enumerate(frames(6)):
        payloads, _ = encoder.encode(frame, force_keyframe=(n == 4))
        assert payloads
        starts.append(keyframe_start(codec, payloads[0]))
        assert not any(keyframe_start(codec, p) for p in payloads[1:] if codec == "VP8")
    assert starts == [True, False, False, False, True, False]


def test_vp8_keyframe_start_reads_the_payload_descriptor() -> None:
    keyframe_tag, delta_tag = b"\x10\x02\x00", b"\x11\x02\x00"  # P bit clear / set
    assert vp8_keyframe_start(b"\x10" + keyframe_tag)  # S=1, no extension
    assert not vp8_keyframe_start(b"\x10" + delta_tag)
    assert vp8_keyframe_start(b"\x90\x80\x81\x23" + keyframe_tag)  # X, I with a 15-bit picture id
    assert vp8_keyframe_start(b"\x90\xe0\x05\x17\x40" + keyframe_tag)  # X, I (7-bit), L, T
    assert not vp8_keyframe_start(b"\x00" + keyframe_tag)  # not the start of a partition
    assert not vp8_keyframe_start(b"\x11" + keyframe_tag)  # partition 1
    assert not vp8_keyframe_start(b"\x90\x80")  # truncated


def test_h264_keyframe_start_handles_single_fu_a_and_stap_a() -> None:
    assert h264_keyframe_start(b"\x65\x88")  # IDR slice
    assert h264_keyframe_start(b"\x67\x42")  # SPS
    assert not h264_keyframe_start(b"\x41\x9a")  # non-IDR slice
    assert h264_keyframe_start(b"\x7c\x85\x00")  # FU-A, start bit, IDR
    assert not h264_keyframe_start(b"\x7c\x05\x00")  # FU-A continuation
    assert not h264_keyframe_start(b"\x7c\x81\x00")  # FU-A start of a non-IDR slice
    stap = b"\x78" + b"\x00\x02\x67\x42" + b"\x00\x02\x68\xce"  # STAP-A: SPS, PPS
    assert h264_keyframe_start(stap)
    assert not h264_keyframe_start(b"\x78\x00\x02\x41\x9a")
    assert not h264_keyframe_start(b"\x78\x00\x09\x67")  # length past the end


def test_the_fanout_hands_rtp_to_forwarders_and_asks_for_pcm_only_for_agents() -> None:
    requests: list[str] = []

    class Publisher:
        def request_keyframe(self) -> None:
            requests.append("pli")

    fanout = TrackFanout(48000, lambda pcm: pcm, upstream=Publisher())
    got: list[tuple[str, int]] = []
    fanout.attach("bob", RtpOut(), lambda packet: got.append(("bob", packet.sequence_number)))
    fanout.attach("carol", RtpOut(), lambda packet: got.append(("carol", packet.sequence_number)))
    assert fanout.forwards_rtp and not fanout.needs_pcm
    fanout.deliver_rtp(RtpPacket(sequence_number=7))
    assert got == [("bob", 7), ("carol", 7)]
    fanout.attach("agent", PcmOut(16000), lambda message: None)
    assert fanout.needs_pcm
    fanout.detach("agent")
    fanout.detach("bob")
    fanout.deliver_rtp(RtpPacket(sequence_number=8))
    assert got[-1] == ("carol", 8) and len(got) == 3 and not fanout.needs_pcm
    fanout.request_keyframe()
    assert requests == ["pli"]


def test_the_tap_forwards_every_packet_and_feeds_a_decoder_only_on_demand_from_a_keyframe() -> None:
    forwarded: list[int] = []
    wanted = [False]
    made: list[int] = []

    class Buffer:
        capacity = 16

        def add(self, packet: RtpPacket) -> tuple[bool, None]:
            made.append(packet.sequence_number)
            return False, None

    tap = RtpTap(
        lambda packet: forwarded.append(packet.sequence_number),
        lambda: wanted[0],
        lambda: Buffer(),  # type: ignore[arg-type, return-value]
        lambda packet: packet.payload == b"key",
    )
    tap.add(RtpPacket(sequence_number=1, payload=b"delta"))
    wanted[0] = True
    tap.add(RtpPacket(sequence_number=2, payload=b"delta"))  # a decoder cannot start here
    tap.add(RtpPacket(sequence_number=3, payload=b"key"))
    tap.add(RtpPacket(sequence_number=4, payload=b"delta"))
    assert forwarded == [1, 2, 3, 4]
    assert made == [3, 4]


def test_jpeg_keeps_the_aspect_and_fits_720p() -> None:
    assert fit_within(640, 480) == (640, 480)
    assert fit_within(1920, 1080) == (1280, 720)
    assert fit_within(720, 1280) == (404, 720)
    frame = frames(1, 1920, 1080)[0]
    data = encode_jpeg(frame)
    assert data[:2] == b"\xff\xd8"
    decoded = av.CodecContext.create("mjpeg", "r").decode(av.Packet(data))[0]
    assert (decoded.width, decoded.height) == (1280, 720)


class _FrameTrack:
    """Decoded frames every 20 ms, each a different picture."""

    def __init__(self) -> None:
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        await asyncio.sleep(0.02)
        self.sent += 1
        return frames(1, 64, 48)[0] if self.sent % 2 else frames(2, 64, 48)[1]


def test_image_captures_of_a_track_are_a_second_apart_and_never_reuse_an_older_capture() -> None:
    """Run on uvloop, whose clock is cached per loop iteration (a request answered within
    the same millisecond as a capture once got that older capture back)."""
    import uvloop  # what `shoal serve` runs on (uvicorn[standard])

    async def scenario() -> tuple[list[float], list[bytes], list[int]]:
        snapshots = VideoSnapshots("test", lambda: None)
        track = _FrameTrack()
        reader = asyncio.create_task(snapshots.read(track))  # type: ignore[arg-type]
        done_at, images, sent_at_request = [], [], []
        for _ in range(2):
            sent_at_request.append(track.sent)
            image = await snapshots.jpeg()
            assert image is not None
            images.append(image)
            done_at.append(time.monotonic())
        reader.cancel()
        return done_at, images, [snapshots.captures, *sent_at_request]

    loop = uvloop.new_event_loop()
    try:
        done_at, images, (captures, *_) = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert captures == 2
    assert done_at[1] - done_at[0] >= 0.95


def test_the_media_seam_accepts_the_installed_aiortc_and_names_an_internal_that_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A changed aiortc must stop the server at start-up, naming what changed, not break forwarding mid-call."""
    from aiortc import RTCDtlsTransport, RTCRtpReceiver

    from shoal import seam
    from shoal.seam import SeamError

    seam.check_internals()
    # Where no event loop is current (a thread; the CLI before uvicorn starts its loop):
    # aiortc's constructors call asyncio.get_event_loop(), which raised there.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(seam.check_internals).result()
    monkeypatch.delattr(RTCDtlsTransport, "_send_rtp")
    monkeypatch.delattr(RTCRtpReceiver, "_send_rtcp_pli")
    with pytest.raises(SeamError, match=r"RTCDtlsTransport._send_rtp\(\); RTCRtpReceiver._send_rtcp_pli\(\)"):
        seam.check_internals()
