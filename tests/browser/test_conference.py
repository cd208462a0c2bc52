"""A conference room: two browsers running the official ts-client hear and see each other.

Two pages, each in its own Chromium process, join one room. Each page publishes Chromium's fake
microphone, playing its own WAV (alice 660 Hz, bob 880 Hz), and Chromium's fake camera, a moving
test pattern, with ts-client's ``addTrack`` (metadata ``{type: "camera", paused: false}``). An
agent in the same room, using this project's ``fishjam`` SDK, listens.

The test checks that:
* the agent hears each page's microphone at that page's frequency;
* each page plays the other page's microphone and measures the other page's frequency in it;
* each page plays the other page's camera in a ``<video>`` whose pixels keep changing. Every
  200 ms the page draws the ``<video>`` onto a canvas and compares it with the previous sample.
  The page watches its own camera preview the same way first, which checks the detection itself;
* both directions of video use the codec the room was created with (``videoCodec``).

The room's ``videoCodec`` is parametrized over ``vp8`` and ``h264``. Debian's Chromium encodes
both; the page reports its codecs (``RTCRtpSender.getCapabilities('video')``), and the test
fails, not skips, if a browser lacks the room's codec.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from fishjam import AgentOptions, AgentOutputOptions, FishjamClient, RoomOptions
from tests.browser.harness import (
    BrowserPage,
    State,
    recent_changes,
    remote_tracks,
    rtp_streams,
    steady_tone,
    ts_client_versions,
    write_tone_wav,
)
from tests.browser.helpers import AGENT_RATE, AgentEar, explained, page_gave_up, running
from tests.support.audio import dominant_frequency, rms
from tests.support.server import ServerProcess

each_client = pytest.mark.parametrize("client_version", ts_client_versions(), ids=lambda v: f"ts-client-{v}")
VideoCodec = Literal["vp8", "h264"]
each_codec = pytest.mark.parametrize("video_codec", ["vp8", "h264"])

# name, fake microphone frequency. Whole seconds of either tone hold whole cycles, so Chromium's
# looping of the WAV is seamless.
PARTICIPANTS = (("alice", 660.0), ("bob", 880.0))
MIC_WAV_SECONDS = 5.0
# Small and slow, to spare the two shared cores: two encoders, two decoders and the server.
CAMERA = "320x240@15"

# Generous: the machine may be slow (2 cores), shared by two Chromiums and the server.
PAGE_READY_TIMEOUT = 60.0
JOIN_TIMEOUT = 60.0
PUBLISH_TIMEOUT = 60.0
AGENT_HEARS_TIMEOUT = 60.0
PAGE_HEARS_TIMEOUT = 60.0
PAGE_SEES_TIMEOUT = 90.0
CODEC_TIMEOUT = 30.0

MIC_TOLERANCE_HZ = 15.0
PAGE_TOLERANCE_HZ = 20.0
MIN_LOCAL_RMS = 0.05  # full scale 1; the WAV's tone is 0.3 full scale, RMS ~0.21
MIN_PAGE_RMS = 0.02
MIN_AGENT_RMS = 1000.0  # s16
STEADY_MEASUREMENTS = 4  # consecutive 250 ms analyser readings
AGENT_SKIP_SECONDS = 0.5  # jitter buffer, codec warm-up
AGENT_ANALYSE_SECONDS = 1.5
# Video "moves": of the page's 200 ms pixel samples, at least MIN_CHANGES changed since the video
# started, and at least MIN_RECENT_CHANGES of the last RECENT_SAMPLES did, so it is moving now.
MIN_CHANGES = 10
RECENT_SAMPLES = 10
MIN_RECENT_CHANGES = 5


@dataclass
class Participant:
    name: str
    hz: float
    peer_id: str
    page: BrowserPage


def microphone_plays(hz: float) -> Callable[[State], bool]:
    def check(state: State) -> bool:
        measurements = (state.get("local") or {}).get("measurements") or []
        return steady_tone(measurements, hz, MIC_TOLERANCE_HZ, MIN_LOCAL_RMS, STEADY_MEASUREMENTS)

    return check


def moving(video: State) -> bool:
    """The video has a size and its pixels changed often enough, lately too."""
    return (
        (video.get("videoWidth") or 0) > 0
        and (video.get("videoHeight") or 0) > 0
        and (video.get("changes") or 0) >= MIN_CHANGES
        and recent_changes(video, RECENT_SAMPLES) >= MIN_RECENT_CHANGES
    )


def camera_preview_moves(state: State) -> bool:
    return moving(((state.get("camera") or {}).get("preview")) or {})


def published(state: State) -> State | None:
    local_done = (state.get("local") or {}).get("state") == "published"
    camera_done = (state.get("camera") or {}).get("state") == "published"
    return state if local_done and camera_done else None


def hears(other: Participant) -> Callable[[State], State | None]:
    """The page plays an audio track of ``other`` and measures ``other``'s frequency in it."""

    def check(state: State) -> State | None:
        for entry in remote_tracks(state, other.peer_id).values():
            if entry.get("kind") == "audio" and steady_tone(
                entry.get("measurements") or [], other.hz, PAGE_TOLERANCE_HZ, MIN_PAGE_RMS, STEADY_MEASUREMENTS
            ):
                return state
        return None

    return check


def sees(other: Participant) -> Callable[[State], State | None]:
    """The page plays a video track of ``other`` whose pixels keep changing."""

    def check(state: State) -> State | None:
        for entry in remote_tracks(state, other.peer_id).values():
            if entry.get("kind") == "video" and moving(entry):
                return state
        return None

    return check


def video_codecs_in_use(state: State) -> tuple[set[str], set[str]]:
    """The mime types of the page's outbound and inbound video RTP streams (lower case)."""
    sent = {(row.get("codec") or "").split(" ")[0].lower() for row in rtp_streams(state, "video", "outbound")}
    received = {(row.get("codec") or "").split(" ")[0].lower() for row in rtp_streams(state, "video", "inbound")}
    return sent - {""}, received - {""}


async def each(participants: list[Participant], step: Callable[[Participant], Awaitable[object]]) -> None:
    """Run one step for every participant at once."""
    await asyncio.gather(*(step(p) for p in participants))


@pytest.mark.timeout(600)
@each_client
@each_codec
async def test_two_pages_hear_and_see_each_other_and_an_agent_hears_both(
    shoal: ServerProcess, page_bundles: None, client_version: str, video_codec: VideoCodec, tmp_path: Path
) -> None:
    api = FishjamClient(fishjam_id=shoal.url, management_token=shoal.token)
    room = api.create_room(RoomOptions(video_codec=video_codec))
    agent = api.create_agent(room.id, AgentOptions(output=AgentOutputOptions(audio_sample_rate=AGENT_RATE)))
    participants: list[Participant] = []
    for name, hz in PARTICIPANTS:
        peer, token = api.create_peer(room.id)
        wav = write_tone_wav(tmp_path / f"{name}.wav", hz, MIC_WAV_SECONDS)
        page = BrowserPage(
            client_version=client_version, wav=wav, ws_url=shoal.ws_url, token=token, name=name, camera=CAMERA
        )
        participants.append(Participant(name, hz, peer.id, page))
    alice, bob = participants
    other = {alice.name: bob, bob.name: alice}
    expected_mime = f"video/{video_codec}"
    ear = AgentEar()

    async with agent.connect() as session, running(asyncio.create_task(ear.listen(session))):
        for participant in participants:
            participant.page.start()
        try:
            with explained([p.page for p in participants], shoal, log_lines=150):
                # 0. Each Chromium on its own (whatever the server does): the fake microphone plays its
                #    WAV, and the fake camera's local preview moves, as the pixel sampling sees it.
                async def devices_work(p: Participant) -> None:
                    await p.page.wait_for(
                        microphone_plays(p.hz), PAGE_READY_TIMEOUT, f"{p.name}'s fake microphone to play {p.hz:.0f} Hz"
                    )
                    state = await p.page.wait_for(
                        lambda s: s if camera_preview_moves(s) else None,
                        PAGE_READY_TIMEOUT,
                        f"{p.name}'s fake camera preview to move ({MIN_CHANGES} changed pixel samples)",
                        fail_if=page_gave_up,
                    )
                    send_codecs = [c.split(" ")[0].lower() for c in (state.get("codecs") or {}).get("send") or []]
                    assert expected_mime in send_codecs, (
                        f"{p.name}'s Chromium cannot send {expected_mime}; it offers {state.get('codecs')}"
                    )

                await each(participants, devices_work)

                # 1. Both pages join and publish their microphone and camera.
                async def joins_and_publishes(p: Participant) -> None:
                    state = await p.page.wait_for(
                        lambda s: s if s.get("peerId") else None,
                        JOIN_TIMEOUT,
                        f"{p.name} to join the room (ts-client event `joined`)",
                        fail_if=page_gave_up,
                    )
                    assert state["peerId"] == p.peer_id, f"{p.name} joined as {state['peerId']!r}, not {p.peer_id!r}"
                    await p.page.wait_for(
                        published,
                        PUBLISH_TIMEOUT,
                        f"{p.name}'s microphone and camera to be published (both client.addTrack() calls to resolve)",
                        fail_if=page_gave_up,
                    )

                await each(participants, joins_and_publishes)

                # 2. The agent hears each page's microphone, at that page's frequency.
                skip = int(AGENT_SKIP_SECONDS * AGENT_RATE)
                needed = skip + int(AGENT_ANALYSE_SECONDS * AGENT_RATE)
                for p in participants:
                    microphone_id = p.page.latest()["local"]["trackId"]
                    heard = await ear.wait_for_samples(p.peer_id, needed, AGENT_HEARS_TIMEOUT)
                    assert list(heard) == [microphone_id], (
                        f"the agent got tracks {list(heard)} from {p.name}; its microphone is {microphone_id!r}"
                    )
                    [microphone] = heard.values()
                    assert json.loads(microphone.metadata).get("type") == "microphone", microphone.metadata
                    audio = microphone.pcm()[skip:]
                    frequency, level = dominant_frequency(audio, AGENT_RATE), rms(audio)
                    assert abs(frequency - p.hz) <= MIC_TOLERANCE_HZ, (
                        f"the agent heard {frequency:.1f} Hz from {p.name}, expected {p.hz:.0f} Hz (level {level:.0f})"
                    )
                    assert level >= MIN_AGENT_RMS, f"{p.name}'s tone reached the agent at RMS {level:.0f} (s16)"

                # 3. Each page hears the other.
                await each(
                    participants,
                    lambda p: p.page.wait_for(
                        hears(other[p.name]),
                        PAGE_HEARS_TIMEOUT,
                        f"{p.name} to play {other[p.name].name}'s microphone at {other[p.name].hz:.0f} Hz "
                        f"({STEADY_MEASUREMENTS} analyser readings within ±{PAGE_TOLERANCE_HZ:.0f} Hz, RMS >= {MIN_PAGE_RMS})",
                        fail_if=page_gave_up,
                    ),
                )

                # 4. Each page sees the other: the other's camera plays, and its pixels keep changing.
                await each(
                    participants,
                    lambda p: p.page.wait_for(
                        sees(other[p.name]),
                        PAGE_SEES_TIMEOUT,
                        f"{p.name} to play {other[p.name].name}'s camera (trackReady with a video track, then "
                        f"{MIN_CHANGES} changed pixel samples, {MIN_RECENT_CHANGES} of the last {RECENT_SAMPLES})",
                        fail_if=page_gave_up,
                    ),
                )

                # 5. Video goes both ways in the room's codec.
                await each(
                    participants,
                    lambda p: p.page.wait_for(
                        lambda s: s if video_codecs_in_use(s) == ({expected_mime}, {expected_mime}) else None,
                        CODEC_TIMEOUT,
                        f"{p.name} to send and receive video as {expected_mime} (RTCPeerConnection.getStats(); "
                        f"the room was created with videoCodec={video_codec!r})",
                        fail_if=page_gave_up,
                    ),
                )

                # 6. What each page received, exactly: the other's microphone and camera, nothing of its own.
                for p in participants:
                    state = p.page.latest()
                    sender = other[p.name].page.latest()
                    expected = {
                        sender["local"]["trackId"]: ("audio", {"type": "microphone", "paused": False}),
                        sender["camera"]["trackId"]: ("video", {"type": "camera", "paused": False}),
                    }
                    got = {tid: (t.get("kind"), t.get("metadata")) for tid, t in remote_tracks(state).items()}
                    assert got == expected, f"{p.name} received tracks {got}; expected {expected}"
                    assert not state.get("errors"), f"errors in {p.name}'s page: {state['errors']}"

                for p in participants:
                    state = p.page.latest()
                    [video] = [t for t in remote_tracks(state).values() if t.get("kind") == "video"]
                    sent, received = video_codecs_in_use(state)
                    print(
                        f"\n{p.name}: sees {other[p.name].name}'s camera at {video['videoWidth']}x{video['videoHeight']}, "
                        f"{video['changes']}/{video['samples']} pixel samples changed, "
                        f"{video.get('presentedFrames')} frames presented; sends {sent}, receives {received}"
                    )
        finally:
            await asyncio.gather(*(asyncio.to_thread(p.page.stop) for p in participants))
