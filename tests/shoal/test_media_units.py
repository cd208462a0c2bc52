"""Playout queues, Opus parsing and fan-out, without sockets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from shoal.media.fanout import PcmOut, TrackFanout
from shoal.media.opus import OpusEncoder, packet_samples
from shoal.media.pcm import PcmFormat, Resampler
from shoal.media.playout import HOLD_PARTIAL_S, OpusPlayout, PcmPlayout
from tests.support.audio import dominant_frequency, tone

MONO16 = PcmFormat(16000, 1)


def test_pcm_playout_hands_out_exact_frames_in_order() -> None:
    playout = PcmPlayout(MONO16)
    audio = tone(440, 0.05, 16000)
    playout.push(audio)
    frames = [playout.next_frame(0.0, False) for _ in range(3)]
    assert frames[0] is not None and frames[1] is not None
    assert frames[0].tobytes() + frames[1].tobytes() == audio[:1280]
    assert frames[2] is None  # 10 ms left: it waits for more audio


def test_a_partial_frame_waits_briefly_then_plays_padded() -> None:
    playout = PcmPlayout(MONO16)
    playout.push(b"\x01\x00" * 100)
    assert playout.next_frame(HOLD_PARTIAL_S / 2, False) is None
    frame = playout.next_frame(HOLD_PARTIAL_S, False)
    assert frame is not None and len(frame) == 320
    assert frame[:100].tolist() == [1] * 100 and not frame[100:].any()


def test_stereo_is_averaged_to_mono() -> None:
    playout = PcmPlayout(PcmFormat(16000, 2))
    left_right = np.tile(np.array([1000, 3000], dtype="<i2"), 320)
    playout.push(left_right.tobytes())
    frame = playout.next_frame(0.0, False)
    assert frame is not None and set(frame.tolist()) == {2000}


def test_overflow_drops_whole_chunks_and_keeps_the_stream_aligned() -> None:
    playout = PcmPlayout(MONO16, max_seconds=0.04)
    playout.push(b"\x01\x00" * 639 + b"\x01")  # odd length: the queue ends mid-sample
    # Does not fit: its first byte completes the pending sample, the other 23 bytes are
    # dropped, and so the first byte of the next chunk (the rest of a dropped sample).
    playout.push(b"\x00" + b"\x02\x00" * 11 + b"\x02")
    assert playout.stats.overflow_dropped_chunks == 1
    first = playout.next_frame(0.0, False)
    assert first is not None and set(first.tolist()) == {1}
    playout.push(b"\x00" + b"\x03\x00" * 320)
    second, third = playout.next_frame(0.0, False), playout.next_frame(0.0, False)
    assert second is not None and set(second.tolist()) == {1}
    assert third is not None and set(third.tolist()) == {3}


def test_clear_drops_everything_queued() -> None:
    playout = PcmPlayout(MONO16)
    playout.push(tone(440, 1.0, 16000))
    playout.clear()
    assert playout.next_frame(1.0, True) is None
    assert playout.stats.interrupted_seconds == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("toc", "samples"),
    [(bytes([0x78]), 960), (bytes([0xF8]), 960), (bytes([0xF9]), 1920), (bytes([0x0B, 0x03]), 2880), (bytes([0x80]), 120)],
)
def test_opus_packet_durations_come_from_the_toc_byte(toc: bytes, samples: int) -> None:
    assert packet_samples(toc + b"\0") == samples


def test_malformed_opus_packets_are_rejected() -> None:
    with pytest.raises(ValueError):
        packet_samples(b"")
    with pytest.raises(ValueError):
        packet_samples(bytes([0x03, 0x00]))


def test_opus_playout_decodes_to_mono_48k_frames() -> None:
    playout = OpusPlayout()
    encoder = OpusEncoder()
    samples = np.frombuffer(tone(1000, 0.5, 48000), dtype="<i2")
    for start in range(0, len(samples), 960):
        for packet in encoder.encode(samples[start : start + 960]):
            playout.push(packet)
    out = []
    while (frame := playout.next_frame(1.0, True)) is not None:
        out.append(frame)
    assert all(len(frame) == 960 for frame in out)
    assert abs(dominant_frequency(np.concatenate(out)[4800:], 48000) - 1000) < 5


def test_fanout_converts_once_per_rate_and_shares_the_message() -> None:
    wrapped: list[bytes] = []

    def wrap(pcm: bytes) -> bytes:
        wrapped.append(pcm)
        return b"msg:" + pcm

    fanout = TrackFanout(24000, wrap)
    inboxes: dict[str, list[bytes]] = {name: [] for name in ("a", "b", "c")}
    fanout.attach("a", PcmOut(16000), inboxes["a"].append)
    fanout.attach("b", PcmOut(16000), inboxes["b"].append)
    fanout.attach("c", PcmOut(24000), inboxes["c"].append)
    frame = np.frombuffer(tone(440, 0.02, 24000), dtype="<i2")
    fanout.deliver(frame)
    assert len(wrapped) == 2  # one conversion per rate, not per receiver
    assert inboxes["a"][0] is inboxes["b"][0]
    assert len(inboxes["c"][0]) == 4 + 960
    fanout.detach("a")
    fanout.deliver(frame)
    assert len(inboxes["a"]) == 1 and len(inboxes["b"]) == 2


def test_the_fanout_asks_for_its_receivers_one_rate_and_passes_such_frames_unresampled() -> None:
    """A track whose agents all take 16 kHz is decoded at 16 kHz: those frames reach them as they are.

    (500 Hz: a whole number of cycles per 20 ms frame, so the repeated frame is a clean tone.)
    """
    fanout = TrackFanout(48000, lambda pcm: pcm)
    assert fanout.preferred_rate == 48000  # nobody listens yet
    a: list[bytes] = []
    b: list[bytes] = []
    fanout.attach("a", PcmOut(16000), a.append)
    assert fanout.preferred_rate == 16000
    frame = np.frombuffer(tone(500, 0.02, 16000), dtype="<i2")
    for _ in range(200):
        fanout.deliver(frame, 16000)
    assert all(chunk == frame.tobytes() for chunk in a), "same rate: the decoded frame, byte for byte"
    fanout.attach("b", PcmOut(24000), b.append)
    assert fanout.preferred_rate == 48000  # two rates: decode once at 48 kHz, resample each
    wide = np.frombuffer(tone(500, 0.02, 48000), dtype="<i2")
    for _ in range(50):
        fanout.deliver(wide, 48000)
    assert abs(dominant_frequency(np.frombuffer(b"".join(b[-25:]), "<i2"), 24000) - 500) < 5
    assert abs(dominant_frequency(np.frombuffer(b"".join(a[-25:]), "<i2"), 16000) - 500) < 5
    fanout.detach("a")
    assert fanout.preferred_rate == 24000
    b.clear()
    for _ in range(50):  # frames at another rate than the receiver's are still resampled to it
        fanout.deliver(frame, 16000)
    assert {len(chunk) for chunk in b[5:]} == {960}
    assert abs(dominant_frequency(np.frombuffer(b"".join(b[-25:]), "<i2"), 24000) - 500) < 5


def test_decoded_stereo_frames_are_averaged_to_mono() -> None:
    import av

    from shoal.media.rtc import frame_to_mono

    left, right = np.full(960, 1000, np.int16), np.full(960, 3000, np.int16)
    stereo = av.AudioFrame.from_ndarray(np.stack([left, right], axis=1).reshape(1, -1), format="s16", layout="stereo")
    assert frame_to_mono(stereo).tolist() == [2000] * 960
    mono = av.AudioFrame.from_ndarray(left.reshape(1, -1), format="s16", layout="mono")
    assert frame_to_mono(mono).tolist() == [1000] * 960
    planar = av.AudioFrame.from_ndarray(np.stack([left, right]), format="s16p", layout="stereo")
    assert frame_to_mono(planar).tolist() == [2000] * 960


def test_the_resampler_keeps_no_backlog_over_20000_frames_of_varying_sizes() -> None:
    """Every rate pair, 10/20/40 ms frames mixed: the output trails the input by the filter's delay only."""
    rng = np.random.default_rng(1)
    for source, target in ((48000, 16000), (48000, 24000), (16000, 48000), (24000, 48000), (16000, 24000)):
        resampler = Resampler(source, target)
        taken = given = 0
        for _ in range(20_000):
            n = int(rng.choice([source // 100, source // 50, source // 25]))
            given += n
            taken += len(resampler.process((rng.standard_normal(n) * 1000).astype(np.int16)))
        assert 0 <= given * target / source - taken <= target // 1000 + 1, (source, target)


def test_a_format_whose_every_sink_is_paused_is_not_converted_over_200000_frames() -> None:
    """Under overload a paused participant's Opus is not encoded (``wanted``): counted, and
    converted again the moment any sink of the format wants it; an ungated sink always does."""
    conversions = 0

    def wrap(pcm: bytes) -> bytes:
        nonlocal conversions
        conversions += 1
        return pcm

    withheld: list[int] = []
    fanout = TrackFanout(16000, wrap, on_withheld=lambda: withheld.append(1))
    paused = {"a": True, "b": True}
    got: dict[str, int] = {"a": 0, "b": 0, "c": 0}

    def sink(name: str) -> Callable[[bytes], None]:
        def take(_: bytes) -> None:
            got[name] += 1
        return take

    fanout.attach("a", PcmOut(16000), sink("a"), lambda: not paused["a"])
    fanout.attach("b", PcmOut(16000), sink("b"), lambda: not paused["b"])
    frame = np.zeros(320, dtype=np.int16)
    expected_conversions = expected_withheld = 0
    for n in range(200_000):
        paused["a"] = n % 7 < 3
        paused["b"] = n % 11 < 6
        fanout.deliver(frame)
        if paused["a"] and paused["b"]:
            expected_withheld += 1
        else:
            expected_conversions += 1
    assert conversions == expected_conversions and len(withheld) == expected_withheld
    assert got["a"] == got["b"] == expected_conversions, "a format is converted once for all its sinks"
    fanout.attach("c", PcmOut(16000), sink("c"))  # no gate: always wanted
    paused["a"] = paused["b"] = True
    fanout.deliver(frame)
    assert got["c"] == 1 and len(withheld) == expected_withheld
    fanout.detach("c")
    fanout.deliver(frame)
    assert len(withheld) == expected_withheld + 1
