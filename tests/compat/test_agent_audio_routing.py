"""Which audio reaches which agent, and how: several tracks, manual subscriptions, live pacing."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.compat.runner import run_scenario
from tests.support.audio import dominant_frequency, rms, tone
from tests.support.server import ServerProcess

RATE = 16000  # the default output rate of an agent
AMPLITUDE = 8000
SECONDS = 1.5


def pcm(chunks: list[dict[str, Any]]) -> np.ndarray:
    return np.frombuffer(b"".join(base64.b64decode(c["data"]) for c in chunks), dtype="<i2")


def level_at(samples: np.ndarray, freq: float) -> float:
    """Amplitude of the ``freq`` component (single-bin DFT), comparable with the tone's amplitude."""
    t = np.arange(len(samples)) / RATE
    return float(2 * abs(np.mean(samples * np.exp(-2j * np.pi * freq * t))))


def write(directory: Path, name: str, data: bytes) -> str:
    path = directory / f"{name}.pcm"
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def two_tracks(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("two-tracks")
    mono = write(directory, "mono", tone(440.0, SECONDS, 16000, AMPLITUDE))
    stereo = write(directory, "stereo", tone(660.0, SECONDS, 24000, AMPLITUDE, channels=2))
    return run_scenario("agent_audio", "two_tracks", server, timeout=60, mono=mono, stereo=stereo)


def test_two_tracks_of_one_agent_arrive_as_separate_unmixed_streams(two_tracks: dict[str, Any]) -> None:
    chunks = two_tracks["chunks"]
    assert {c["peer_id"] for c in chunks} == {two_tracks["speaker_id"]}
    for track, freq, other in (("mono", 440.0, 660.0), ("stereo", 660.0, 440.0)):
        samples = pcm([c for c in chunks if c["track_id"] == two_tracks[track]])
        assert abs(len(samples) / RATE - SECONDS) <= 0.04, track
        assert abs(dominant_frequency(samples, RATE) - freq) <= 5.0, track
        assert 0.7 * AMPLITUDE <= level_at(samples, freq) <= 1.3 * AMPLITUDE, track
        assert level_at(samples, other) < 0.01 * AMPLITUDE, f"{track} carries the other track's tone"


def test_a_track_published_without_metadata_is_labelled_with_null_metadata(two_tracks: dict[str, Any]) -> None:
    assert {c["track_metadata"] for c in two_tracks["chunks"]} == {"null"}


def test_a_24_khz_stereo_track_is_heard_as_mono_at_the_level_it_was_sent(two_tracks: dict[str, Any]) -> None:
    samples = pcm([c for c in two_tracks["chunks"] if c["track_id"] == two_tracks["stereo"]])
    assert rms(samples) == pytest.approx(AMPLITUDE / np.sqrt(2), rel=0.15)


def test_two_tracks_sent_together_play_at_the_same_time(two_tracks: dict[str, Any]) -> None:
    spans = {}
    for track in ("mono", "stereo"):
        times = [c["t"] for c in two_tracks["chunks"] if c["track_id"] == two_tracks[track]]
        spans[track] = (min(times), max(times))
    assert abs(spans["mono"][0] - spans["stereo"][0]) < 0.1
    assert abs(spans["mono"][1] - spans["stereo"][1]) < 0.1
    assert spans["mono"][1] - spans["mono"][0] >= 0.95 * SECONDS - 0.02


@pytest.fixture(scope="module")
def manual(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("manual")
    before = write(directory, "unsubscribed", tone(440.0, 1.0, 16000, AMPLITUDE))
    after = write(directory, "subscribed", tone(660.0, 1.0, 16000, AMPLITUDE))
    return run_scenario(
        "agent_audio", "manual_subscription", server, timeout=60, unsubscribed=before, subscribed=after, wait_s=1.5
    )


def test_a_manual_agent_hears_nothing_before_it_subscribes(manual: dict[str, Any]) -> None:
    early = [c for c in manual["chunks"] if c["t"] <= manual["marks"]["subscribed"]]
    assert early == []


def test_a_manual_agent_hears_the_peer_it_subscribed_to(manual: dict[str, Any]) -> None:
    chunks = [c for c in manual["chunks"] if c["t"] > manual["marks"]["subscribed"]]
    assert {(c["peer_id"], c["track_id"]) for c in chunks} == {(manual["speaker_id"], manual["track_id"])}
    samples = pcm(chunks)
    # Only the tone sent after subscribing: the earlier one played to nobody.
    assert abs(dominant_frequency(samples, RATE) - 660.0) <= 5.0
    assert abs(len(samples) / RATE - 1.0) <= 0.04
    assert level_at(samples, 440.0) < 0.01 * AMPLITUDE


def test_a_manual_agent_subscribed_to_one_track_hears_only_that_track(
    server: ServerProcess, tmp_path: Path
) -> None:
    wanted = write(tmp_path, "wanted", tone(660.0, 1.0, 16000, AMPLITUDE))
    unwanted = write(tmp_path, "unwanted", tone(440.0, 1.0, 16000, AMPLITUDE))
    result = run_scenario("agent_audio", "one_track_subscribed", server, timeout=60, wanted=wanted, unwanted=unwanted)
    assert {c["track_id"] for c in result["chunks"]} == {result["wanted"]}
    samples = pcm(result["chunks"])
    assert abs(dominant_frequency(samples, RATE) - 660.0) <= 5.0
    assert abs(len(samples) / RATE - 1.0) <= 0.04


def test_an_agent_joining_while_a_track_plays_hears_the_rest_of_it(server: ServerProcess, tmp_path: Path) -> None:
    path = write(tmp_path, "tone", tone(440.0, 3.0, 16000, AMPLITUDE))
    result = run_scenario("agent_audio", "late_listener", server, timeout=60, tone=path, join_after_s=1.0)
    chunks = result["chunks"]
    assert {c["track_id"] for c in chunks} == {result["track_id"]}
    samples = pcm(chunks)
    assert abs(dominant_frequency(samples, RATE) - 440.0) <= 5.0
    remaining = 3.0 - (result["joined"] - result["start"])
    assert abs(len(samples) / RATE - remaining) <= 0.1
    assert chunks[0]["t"] - result["joined"] < 0.1


@pytest.fixture(scope="module")
def live(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = write(tmp_path_factory.mktemp("live"), "tone", tone(440.0, 2.0, 16000, AMPLITUDE))
    return run_scenario("agent_audio", "paced", server, timeout=60, tone=path, chunk_ms=100)


def test_audio_streamed_in_real_time_plays_without_gaps_or_delay(live: dict[str, Any]) -> None:
    chunks = live["chunks"]
    samples = pcm(chunks)
    assert abs(len(samples) / RATE - 2.0) <= 0.04
    assert abs(dominant_frequency(samples, RATE) - 440.0) <= 5.0
    level = rms(samples)
    window = RATE // 50
    off = [i for i in range(window, len(samples) - 2 * window, window) if not 0.8 * level <= rms(samples[i:i + window]) <= 1.2 * level]
    assert not off, f"{len(off)} 20 ms windows off level (gaps) starting at sample {off[0]}"
    # The first 100 ms chunk plays at once, and no extra latency builds up while streaming.
    assert chunks[0]["t"] - live["start"] < 0.1
    assert chunks[-1]["t"] - live["start"] < 2.0 + 0.15
