"""Agent-to-agent audio, official agents on both sides: content, level, pacing, interrupt.

One scenario run (``official/agent_audio.py``) feeds every test here: agent A sends
pcm16 16 kHz tones much faster than real time, agent B (output 24 kHz) records what it
receives and when. The analysis happens here, on the PCM B actually got.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.compat.runner import run_scenario
from tests.support.audio import dominant_frequency, rms, tone
from tests.support.server import ServerProcess

SEND_RATE = 16000
RECEIVE_RATE = 24000
FRAME_S = 0.02
TONES = {"play": (440.0, 2.0), "long": (660.0, 10.0), "after": (880.0, 1.0)}
PHASE_END = {"play": "long", "long": "after", "after": "end"}
AMPLITUDE = 8000


def tone_and_interrupt(server: ServerProcess, directory: Path, pause_after_interrupt_s: float) -> dict[str, Any]:
    files = {}
    for phase, (freq, seconds) in TONES.items():
        path = directory / f"{phase}.pcm"
        path.write_bytes(tone(freq, seconds, SEND_RATE, amplitude=AMPLITUDE))
        files[phase] = str(path)
    return run_scenario(
        "agent_audio", "tone_and_interrupt", server, timeout=90,
        pause_after_interrupt_s=pause_after_interrupt_s, **files,
    )


@pytest.fixture(scope="module")
def run(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return tone_and_interrupt(server, tmp_path_factory.mktemp("agent-audio"), pause_after_interrupt_s=1.5)


def chunks_of(run: dict[str, Any], phase: str) -> list[dict[str, Any]]:
    """Chunks B received between the start of ``phase`` and the start of the next one."""
    start, end = run["marks"][phase], run["marks"][PHASE_END[phase]]
    return [c for c in run["chunks"] if start < c["t"] <= end]


def pcm(chunks: list[dict[str, Any]]) -> np.ndarray:
    data = b"".join(base64.b64decode(c["data"]) for c in chunks)
    return np.frombuffer(data, dtype="<i2")


def seconds(chunks: list[dict[str, Any]]) -> float:
    return len(pcm(chunks)) / RECEIVE_RATE


def sent_rms() -> float:
    return rms(np.frombuffer(tone(440.0, 2.0, SEND_RATE, amplitude=AMPLITUDE), dtype="<i2"))


def test_received_audio_names_the_sending_agent_and_its_track(run: dict[str, Any]) -> None:
    assert run["chunks"], "agent B received nothing"
    assert {c["peer_id"] for c in run["chunks"]} == {run["speaker_id"]}
    assert {c["track_id"] for c in run["chunks"]} == {run["track_id"]}
    assert {c["track_type"] for c in run["chunks"]} == {2}  # TRACK_TYPE_AUDIO
    assert {json.dumps(json.loads(c["track_metadata"])) for c in run["chunks"]} == {'{"role": "tts"}'}


def test_an_agent_never_hears_its_own_track(run: dict[str, Any]) -> None:
    assert run["speaker_heard"] == []


def test_a_440_hz_tone_arrives_as_440_hz_in_24_khz_pcm(run: dict[str, Any]) -> None:
    samples = pcm(chunks_of(run, "play"))
    assert abs(dominant_frequency(samples, RECEIVE_RATE) - 440.0) <= 5.0


def test_the_tone_arrives_at_the_level_it_was_sent_without_gaps(run: dict[str, Any]) -> None:
    samples = pcm(chunks_of(run, "play"))
    level = rms(samples)
    assert 0.7 * sent_rms() <= level <= 1.3 * sent_rms()
    # Every 20 ms window carries the tone: no dropouts, no glitches (edges skipped: resampler).
    window = int(FRAME_S * RECEIVE_RATE)
    windows = [rms(samples[i:i + window]) for i in range(2 * window, len(samples) - 3 * window, window)]
    quiet = [i for i, w in enumerate(windows) if not 0.8 * level <= w <= 1.2 * level]
    assert not quiet, f"{len(quiet)} of {len(windows)} 20 ms windows are off level (first at {quiet[0]})"


def test_the_whole_burst_arrives_resampled_to_24_khz(run: dict[str, Any]) -> None:
    # 2 s sent at 16 kHz is 48000 samples at 24 kHz; a resampler may hold or pad a few ms.
    assert abs(seconds(chunks_of(run, "play")) - TONES["play"][1]) <= 0.04


def test_a_burst_is_played_out_in_real_time_not_all_at_once(run: dict[str, Any]) -> None:
    chunks = chunks_of(run, "play")
    first, last = chunks[0]["t"], chunks[-1]["t"]
    duration = seconds(chunks)
    assert 0.95 * duration <= last - first + FRAME_S <= duration + 0.3
    # At no moment has B been given more than ~real time's worth of audio.
    received = 0.0
    for chunk in chunks:
        received += len(base64.b64decode(chunk["data"])) / 2 / RECEIVE_RATE
        ahead = received - (chunk["t"] - first)
        assert ahead <= FRAME_S + 0.1, f"{ahead:.3f} s ahead of real time at {chunk['t'] - first:.3f} s"


def test_interrupt_stops_queued_audio_within_about_one_frame(run: dict[str, Any]) -> None:
    chunks = chunks_of(run, "long")
    interrupt = run["marks"]["interrupt"]
    before = [c for c in chunks if c["t"] <= interrupt]
    after = [c for c in chunks if c["t"] > interrupt]
    # The long tone really was playing when it was interrupted (about 1 s of its 10 s).
    assert 0.8 <= seconds(before) <= 1.3
    assert abs(dominant_frequency(pcm(before), RECEIVE_RATE) - 660.0) <= 5.0
    # What may still arrive: the 20 ms frame being played when the interrupt reaches the
    # server, one more 20 ms frame already on its way to B over the loopback socket, and
    # 20 ms of scheduling slack on the two event loops involved: 60 ms in all. Without a
    # working interrupt about 9 s more would arrive.
    assert seconds(after) <= 0.06, f"{seconds(after):.3f} s of audio arrived after the interrupt"


def test_audio_sent_after_an_interrupt_plays_normally(run: dict[str, Any]) -> None:
    chunks = chunks_of(run, "after")
    assert chunks, "nothing arrived after the interrupt"
    samples = pcm(chunks)
    assert abs(dominant_frequency(samples, RECEIVE_RATE) - 880.0) <= 5.0
    assert abs(seconds(chunks) - TONES["after"][1]) <= 0.04
    assert 0.7 * sent_rms() <= rms(samples) <= 1.3 * sent_rms()
    # It starts at once rather than after the 9 s the interrupted tone would have taken,
    # and it is paced in real time like any other audio.
    assert chunks[0]["t"] - run["marks"]["after"] < 0.2
    assert chunks[-1]["t"] - chunks[0]["t"] + FRAME_S >= 0.95 * seconds(chunks)



def test_audio_sent_right_after_an_interrupt_replaces_the_interrupted_audio(
    server: ServerProcess, tmp_path: Path
) -> None:
    barge_in = tone_and_interrupt(server, tmp_path, pause_after_interrupt_s=0.0)
    chunks = [c for c in barge_in["chunks"] if c["t"] > barge_in["marks"]["interrupt"]]
    samples = pcm(chunks)
    # The new 1 s tone, plus at most the 60 ms of the old one explained above.
    assert TONES["after"][1] - 0.04 <= seconds(chunks) <= TONES["after"][1] + 0.06
    assert abs(dominant_frequency(samples, RECEIVE_RATE) - 880.0) <= 5.0
    assert chunks[0]["t"] - barge_in["marks"]["interrupt"] < 0.1
