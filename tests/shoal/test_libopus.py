"""shoal.media.libopus: libopus' decoder called directly, at every rate it synthesises."""

from __future__ import annotations

import numpy as np
import pytest

from shoal.media import libopus
from shoal.media.opus import OpusEncoder
from tests.support.audio import dominant_frequency, rms, tone


def _packets(frequency: float, seconds: float) -> list[bytes]:
    encoder = OpusEncoder()
    return encoder.encode(np.frombuffer(tone(frequency, seconds, 48000), dtype="<i2"))


def test_the_start_up_check_passes_with_the_installed_libopus() -> None:
    libopus.check()


@pytest.mark.parametrize("rate", libopus.RATES)
def test_a_tone_decodes_at_each_rate_with_its_pitch_and_level(rate: int) -> None:
    decoder = libopus.MonoDecoder(rate)
    frames = [decoder.decode(packet) for packet in _packets(700, 1.0)]
    assert {len(frame) for frame in frames} == {rate // 50}
    audio = np.concatenate(frames[10:])
    assert abs(dominant_frequency(audio, rate) - 700) < 5 and rms(audio) > 1000


def test_decoded_frames_are_copies_the_caller_may_keep() -> None:
    decoder = libopus.MonoDecoder(16000)
    packets = _packets(440, 0.2)
    first = decoder.decode(packets[5])
    kept = first.copy()
    decoder.decode(packets[6])
    assert np.array_equal(first, kept)


def test_a_packet_that_does_not_decode_raises_and_the_decoder_goes_on() -> None:
    decoder = libopus.MonoDecoder(16000)
    packets = _packets(440, 0.6)
    for bad in (b"", b"\xff"):
        with pytest.raises(ValueError):
            decoder.decode(bad)
    frames = [decoder.decode(packet) for packet in packets]
    assert abs(dominant_frequency(np.concatenate(frames[10:]), 16000) - 440) < 5


def test_a_rate_libopus_cannot_decode_at_is_refused() -> None:
    with pytest.raises(ValueError, match="44100"):
        libopus.MonoDecoder(44100)
