"""Voice activity in the official ts-client: ``voiceActivityChanged`` for a page that speaks, then goes silent.

The speaker's fake microphone plays a WAV that holds a 440 Hz tone for 1.5 s and digital
silence for 2.5 s, looped by Chromium. The listener (its own microphone silent) receives the
speaker's track; ts-client raises ``voiceActivityChanged`` on that track's context for each
``vad_notification`` shoal sends, and the page records the ``vadStatus`` with its time.

The listener must see speech and silence alternate; after the first loop (the listener may
join in the middle of one), speech must begin once per loop (every 4 s) and last about as
long as the tone plus the hangover.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fishjam import FishjamClient
from shoal.media.vad import HANGOVER_S
from tests.browser.harness import BrowserPage, State, remote_tracks, ts_client_versions, write_talk_wav
from tests.browser.helpers import explained, page_gave_up
from tests.support.server import ServerProcess

each_client = pytest.mark.parametrize("client_version", ts_client_versions(), ids=lambda v: f"ts-client-{v}")
TALK_S, PAUSE_S = 1.5, 2.5
CHANGES = 9  # four loops of the WAV and more: the first may be cut (the listener joined mid-loop)
TIMEOUT = 90.0


def vad_changes(state: State, peer_id: str) -> list[State] | None:
    for entry in remote_tracks(state, peer_id).values():
        changes = entry.get("vad") or []
        if len(changes) >= CHANGES:
            return list(changes)
    return None


@pytest.mark.timeout(300)
@each_client
async def test_the_listener_gets_voice_activity_changed_for_a_page_that_speaks_then_goes_silent(
    shoal: ServerProcess, page_bundles: None, client_version: str, tmp_path: Path
) -> None:
    api = FishjamClient(fishjam_id=shoal.url, management_token=shoal.token)
    room = api.create_room()
    speaker_peer, speaker_token = api.create_peer(room.id)
    _, listener_token = api.create_peer(room.id)
    speaker = BrowserPage(
        client_version=client_version, wav=write_talk_wav(tmp_path / "talk.wav", 440, TALK_S, PAUSE_S),
        ws_url=shoal.ws_url, token=speaker_token, name="speaker",
    )
    listener = BrowserPage(
        client_version=client_version, wav=write_talk_wav(tmp_path / "quiet.wav", 440, 0.0, 1.0),
        ws_url=shoal.ws_url, token=listener_token, name="listener",
    )
    with speaker, listener, explained([speaker, listener], shoal, log_lines=100):
        changes = await listener.wait_for(
            lambda state: vad_changes(state, speaker_peer.id), TIMEOUT,
            f"{CHANGES} voiceActivityChanged events for the speaker's track", fail_if=page_gave_up,
        )
        statuses = [change["status"] for change in changes]
        assert all(a != b for a, b in zip(statuses, statuses[1:], strict=False)), f"no alternation: {statuses}"
        first = statuses.index("speech")
        times = [change["t"] / 1000 for change in changes[first:]]  # the page's clock is in ms
        onsets, releases = times[0::2], times[1::2]
        # The first speech may have begun before the listener had the track: time the later ones.
        for earlier, later in zip(onsets[1:], onsets[2:], strict=False):
            assert later - earlier == pytest.approx(TALK_S + PAUSE_S, abs=0.3), f"speech onsets at {onsets}"
        for start, end in zip(onsets[1:], releases[1:], strict=False):
            assert end - start == pytest.approx(TALK_S + HANGOVER_S, abs=0.3), f"speech from {start:.2f} to {end:.2f}"
        assert len(onsets) >= 4
        heard_by_speaker = [entry.get("vad") for entry in remote_tracks(speaker.latest()).values()]
        assert heard_by_speaker and not any(heard_by_speaker), "a digitally silent listener never speaks"
