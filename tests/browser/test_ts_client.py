"""The official browser client, npm ``@fishjam-cloud/ts-client``, in headless Chromium against shoal.

The page (``page/main.js``, bundled unmodified with the client) connects with a peer token,
publishes Chromium's fake microphone, which plays a 660 Hz WAV, and plays and measures every
remote audio track. An agent in the same room, using this project's ``fishjam`` SDK, must hear
the browser's tone, and the page must hear the agent's 440 Hz track.

Versions under test come from ``tests/browser/package.json`` (see README.md there): adding an
npm alias of another ts-client version there adds a run of every test here.

Chromium (Debian's ``chromium``) and the npm packages are installed by ``scripts/test.sh``. A
missing install is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from fishjam import AgentOptions, AgentOutputOptions, FishjamClient
from fishjam.agent import OutgoingAudioTrackOptions, OutgoingTrack
from tests.browser.harness import (
    BrowserPage,
    State,
    events_named,
    remote_tracks,
    steady_tone,
    ts_client_versions,
    write_tone_wav,
)
from tests.browser.helpers import AGENT_RATE, AgentEar, explained, frames_named, page_gave_up, running
from tests.support.audio import dominant_frequency, rms, tone
from tests.support.server import ServerProcess

TS_CLIENT_VERSIONS = ts_client_versions()
each_client = pytest.mark.parametrize("client_version", TS_CLIENT_VERSIONS, ids=lambda v: f"ts-client-{v}")

MIC_HZ = 660.0  # the browser's fake microphone
AGENT_HZ = 440.0  # the agent's track
# Whole seconds of a 660 Hz tone hold whole cycles, so Chromium's looping of the WAV is seamless.
MIC_WAV_SECONDS = 5.0

# Generous: the machine may be slow (2 cores) and Chromium shares it with the server.
PAGE_READY_TIMEOUT = 45.0
JOIN_TIMEOUT = 60.0
PUBLISH_TIMEOUT = 60.0
AGENT_HEARS_TIMEOUT = 60.0
PAGE_HEARS_TIMEOUT = 60.0

# What the agent analyses: skip the start (jitter buffer, codec warm-up), then at least 1.5 s.
AGENT_SKIP_SECONDS = 0.5
AGENT_ANALYSE_SECONDS = 1.5
MIC_TOLERANCE_HZ = 15.0
PAGE_TOLERANCE_HZ = 20.0
MIN_AGENT_RMS = 1000.0  # s16; the WAV's tone is 0.3 full scale, RMS ~6950
MIN_PAGE_RMS = 0.02  # full scale 1; the agent's tone is 8000/32768, RMS ~0.17
STEADY_MEASUREMENTS = 4  # consecutive 250 ms analyser readings

# ts-client retries a non-auth close after 500, 1000 and 1500 ms: wait past all of them.
RECONNECT_WINDOW_SECONDS = 4.5


def microphone_tone(state: State) -> bool:
    local = state.get("local") or {}
    return steady_tone(local.get("measurements") or [], MIC_HZ, MIC_TOLERANCE_HZ, 0.05, STEADY_MEASUREMENTS)


async def feed_tone(track: OutgoingTrack, hz: float, rate: int) -> None:
    """Send a continuous tone in 100 ms chunks, staying about half a second ahead of real time."""
    second = tone(hz, 1.0, rate)  # whole cycles: seamless when repeated
    chunk = len(second) // 10
    start = time.monotonic()
    sent = 0.0
    while True:
        ahead = sent - (time.monotonic() - start)
        if ahead > 0.5:
            await asyncio.sleep(ahead - 0.5)
        offset = int(round(sent * 10)) % 10 * chunk
        await track.send_chunk(second[offset : offset + chunk])
        sent += 0.1


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.timeout(480)
@each_client
async def test_browser_publishes_its_microphone_to_an_agent_and_plays_the_agents_track(
    shoal: ServerProcess, page_bundles: None, client_version: str, tmp_path: Path
) -> None:
    api = FishjamClient(fishjam_id=shoal.url, management_token=shoal.token)
    room = api.create_room()
    peer, token = api.create_peer(room.id)
    agent = api.create_agent(room.id, AgentOptions(output=AgentOutputOptions(audio_sample_rate=AGENT_RATE)))
    wav = write_tone_wav(tmp_path / "microphone.wav", MIC_HZ, MIC_WAV_SECONDS)
    ear = AgentEar()

    async with agent.connect() as session, running(asyncio.create_task(ear.listen(session))):
        page = BrowserPage(client_version=client_version, wav=wav, ws_url=shoal.ws_url, token=token).start()
        try:
            with explained(page, shoal):
                # 0. Chromium itself: the fake microphone plays the WAV (no server involved yet).
                await page.wait_for(
                    microphone_tone, PAGE_READY_TIMEOUT, f"the page's fake microphone to play {MIC_HZ:.0f} Hz"
                )

                # (a) The page joins and publishes its microphone.
                state = await page.wait_for(
                    lambda s: s if s.get("peerId") else None,
                    JOIN_TIMEOUT,
                    "the page to join the room (ts-client event `joined`)",
                    fail_if=page_gave_up,
                )
                assert state["peerId"] == peer.id, f"joined as {state['peerId']!r}, expected peer {peer.id!r}"
                sdk_versions = [f.get("sdkVersion") for f in frames_named(state, "auth_request")]
                assert sdk_versions == [f"web-{client_version}"], f"auth_request sdk_version(s): {sdk_versions}"
                state = await page.wait_for(
                    lambda s: s if (s.get("local") or {}).get("state") == "published" else None,
                    PUBLISH_TIMEOUT,
                    "the microphone track to be published (client.addTrack() to resolve)",
                    fail_if=page_gave_up,
                )
                browser_track_id = state["local"]["trackId"]

                # (b) The agent hears the browser's microphone.
                skip = int(AGENT_SKIP_SECONDS * AGENT_RATE)
                needed = skip + int(AGENT_ANALYSE_SECONDS * AGENT_RATE)
                heard = await ear.wait_for_samples(peer.id, needed, AGENT_HEARS_TIMEOUT)
                assert list(heard) == [browser_track_id], (
                    f"the agent heard tracks {list(heard)} from the browser peer; the page published {browser_track_id!r}"
                )
                [mic] = heard.values()
                metadata = json.loads(mic.metadata)
                assert metadata.get("type") == "microphone", f"track metadata as the agent sees it: {mic.metadata}"
                audio = mic.pcm()[skip:]
                frequency = dominant_frequency(audio, AGENT_RATE)
                level = rms(audio)
                assert abs(frequency - MIC_HZ) <= MIC_TOLERANCE_HZ, (
                    f"the agent heard {frequency:.1f} Hz from the browser, expected {MIC_HZ:.0f} Hz (level {level:.0f})"
                )
                assert level >= MIN_AGENT_RMS, f"the browser's tone reached the agent at RMS {level:.0f} (s16)"

                # (c) The agent publishes a tone; the page receives, plays and measures it.
                track_metadata = {"type": "customAudio", "paused": False}
                track = await session.add_track(
                    OutgoingAudioTrackOptions(sample_rate=AGENT_RATE, channels=1, metadata=track_metadata)
                )
                async with running(asyncio.create_task(feed_tone(track, AGENT_HZ, AGENT_RATE))):

                    def agent_tone(s: State) -> State | None:
                        for entry in remote_tracks(s, agent.id).values():
                            measured = entry.get("measurements") or []
                            if steady_tone(measured, AGENT_HZ, PAGE_TOLERANCE_HZ, MIN_PAGE_RMS, STEADY_MEASUREMENTS):
                                return s
                        return None

                    state = await page.wait_for(
                        agent_tone,
                        PAGE_HEARS_TIMEOUT,
                        f"the page to play the agent's track at {AGENT_HZ:.0f} Hz (trackReady, then "
                        f"{STEADY_MEASUREMENTS} analyser readings within ±{PAGE_TOLERANCE_HZ:.0f} Hz, RMS >= {MIN_PAGE_RMS})",
                        fail_if=page_gave_up,
                    )
                    await track.interrupt()

                agents_tracks = list(remote_tracks(state, agent.id).values())
                assert len(agents_tracks) == 1, f"the page got {len(agents_tracks)} tracks from the agent"
                [agents_track] = agents_tracks
                assert agents_track["metadata"] == track_metadata, agents_track
                assert agents_track["kind"] == "audio" and agents_track["playing"], agents_track
                assert not remote_tracks(state, peer.id), "the page must not receive its own microphone"
                assert not state.get("errors"), f"errors in the page: {state['errors']}"
        finally:
            await asyncio.to_thread(page.stop)


@each_client
def test_a_bad_token_gets_auth_error_invalid_token_and_no_reconnect(
    shoal: ServerProcess, page_bundles: None, client_version: str, tmp_path: Path
) -> None:
    wav = write_tone_wav(tmp_path / "microphone.wav", MIC_HZ, MIC_WAV_SECONDS)
    with BrowserPage(client_version=client_version, wav=wav, ws_url=shoal.ws_url, token="not-a-peer-token") as page:
        with explained(page, shoal):
            state = page.wait_until(
                lambda s: s if s.get("authError") else None,
                JOIN_TIMEOUT,
                "ts-client to report authError",
                fail_if=lambda s: "the page joined with a bad token" if s.get("peerId") else None,
            )
            assert state["authError"] == "invalid token"
            page.wait_until(
                lambda s: (s.get("connect") or {}).get("state") == "rejected", 10, "client.connect() to reject"
            )
            time.sleep(RECONNECT_WINDOW_SECONDS)
            page.snapshot()
            time.sleep(0.5)
            state = page.latest()
            socket = state["socket"]
            assert socket["created"] == 1, f"ts-client opened {socket['created']} sockets; it must not retry"
            assert len(frames_named(state, "auth_request")) == 1
            assert [c["reason"] for c in socket["closes"]] == ["invalid token"]
            # 0.25.1 emits socketClose after authError too; what matters is that it does not reconnect.
            assert [e["detail"].get("reason") for e in events_named(state, "socketClose")] == ["invalid token"]
            assert not events_named(state, "reconnectionStarted", "joined")
            assert state["status"] == "auth error"


@each_client
def test_the_page_measures_its_fake_microphone_and_remote_webrtc_audio_without_a_server(
    page_bundles: None, client_version: str, tmp_path: Path
) -> None:
    """The instruments themselves: if this fails, the browser, not shoal, is the problem."""
    wav = write_tone_wav(tmp_path / "microphone.wav", MIC_HZ, MIC_WAV_SECONDS)
    with BrowserPage(client_version=client_version, wav=wav, mode="loopback") as page, explained(page, None):
        page.wait_until(microphone_tone, PAGE_READY_TIMEOUT, f"the fake microphone to play {MIC_HZ:.0f} Hz")
        state = page.wait_until(
            lambda s: s
            if steady_tone(
                (remote_tracks(s).get("loopback") or {}).get("measurements") or [],
                AGENT_HZ,
                PAGE_TOLERANCE_HZ,
                MIN_PAGE_RMS,
                STEADY_MEASUREMENTS,
            )
            else None,
            PAGE_HEARS_TIMEOUT,
            f"a {AGENT_HZ:.0f} Hz oscillator sent over a local RTCPeerConnection pair to be measured",
        )
        assert state["remoteTracks"]["loopback"]["playing"]
        assert state["audioContext"]["state"] == "running"
        assert not state["errors"], state["errors"]
