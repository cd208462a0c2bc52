"""Voice activity through a real server: ``vad_notification`` to participants, ``VoiceActivity`` to agents that ask.

Alice speaks (a tone) for 1 s, is silent for 1.5 s, speaks 1 s more and falls silent. Bob,
a WebRTC participant receiving her track, must get speech, silence, speech, silence for
it — each speech within 250 ms of the tone starting, each silence between the hangover
(0.5 s) and 1 s after it stopped. aiortc puts the audio level on every packet, so these
come from the packets' header extension. An agent that asked (``vad_events``) gets the same
changes; one that did not gets none of them. With no WebRTC receiver, the server's fast
path hands the packets on without parsing their extensions: an agent that asked then gets
the changes from the decoded audio. A publisher whose packets stop arriving in the middle of
speech (its network gone) is in silence one hangover later, and in speech again when they resume.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np

from fishjam import AgentOptions, FishjamClient
from fishjam.agent import IncomingVoiceActivity
from fishjam.api._options import AgentOutputOptions
from shoal.media.vad import HANGOVER_S
from shoal.testing import GeneratorSource, ToneSource, WebRTCPeer
from tests.shoal.test_metrics import scrape, value
from tests.support.agent_client import RawAgent, create_room
from tests.support.peers import join
from tests.support.server import ServerProcess

RATE = 48000
SPEECH = ((0.5, 1.5), (3.0, 4.0))  # seconds from the source's first frame, tone on
SCRIPT_S = 6.0


class Script:
    """The talk-and-pause source, remembering when each of its frames went out."""

    def __init__(self) -> None:
        self.first_frame: float | None = None
        self.source = GeneratorSource(self._chunks(), rate=RATE, on_frame=self._sent)

    def _sent(self, index: int, at: float) -> None:
        if index == 0:
            self.first_frame = at

    def _chunks(self) -> Iterator[np.ndarray]:
        t = np.arange(RATE // 50) / RATE
        for index in range(int(SCRIPT_S * 50)):
            at = index / 50
            on = any(start <= at < end for start, end in SPEECH)
            yield (8000 * np.sin(2 * np.pi * 440 * (t + at))).astype(np.int16) if on else np.zeros(RATE // 50, np.int16)

    def check(self, changes: list[tuple[float, bool]], who: str) -> None:
        assert self.first_frame is not None
        assert [speech for _, speech in changes] == [True, False, True, False], f"{who}: {changes}"
        for (started, _), (stopped, _), (on, off) in zip(changes[0::2], changes[1::2], SPEECH, strict=True):
            onset = started - (self.first_frame + on)
            release = stopped - (self.first_frame + off)
            assert 0 <= onset <= 0.25, f"{who}: speech {1000 * onset:.0f} ms after the tone started"
            assert HANGOVER_S - 0.05 <= release <= 1.0, f"{who}: silence {1000 * release:.0f} ms after the tone stopped"


async def vad_agent(server: ServerProcess, room: str) -> tuple[list[tuple[float, bool]], asyncio.Task[None]]:
    client = FishjamClient(server.url, server.token)
    agent = await asyncio.to_thread(
        client.create_agent, room, AgentOptions(output=AgentOutputOptions(audio_sample_rate=16000))
    )
    changes: list[tuple[float, bool]] = []
    connected = asyncio.Event()

    async def run() -> None:
        async with agent.connect(vad_events=True) as session:
            assert session.vad_events
            connected.set()
            async for message in session.receive():
                if isinstance(message, IncomingVoiceActivity):
                    changes.append((time.monotonic(), message.speech))

    task = asyncio.create_task(run())
    await asyncio.wait_for(connected.wait(), 10)
    return changes, task


async def test_participants_and_agents_that_ask_hear_speech_and_silence_where_the_audio_has_them(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    plain = await RawAgent.join(server, room)
    asking, listening = await vad_agent(server, room)
    alice = await join(server, room, "alice")
    bob = await join(server, room, "bob")
    peers += [alice, bob]
    before = value(scrape(server), "shoal_vad_events_total")
    script = Script()
    track = await alice.publish_audio(script.source)
    await bob.wait_for_remote_track(lambda t: t.track_id == track, timeout=15)
    await asyncio.sleep(SCRIPT_S + 1.0)

    at_bob = [(e.time, e.details["status"] == "STATUS_SPEECH") for e in bob.events
              if e.name == "vad_notification" and e.details["track_id"] == track]
    script.check(at_bob, "bob")
    script.check(asking, "the agent that asked")
    sent = value(scrape(server), "shoal_vad_events_total") - before
    assert sent == len(at_bob) + len(asking), "every change went to bob and the agent that asked, none elsewhere"
    assert "voice_activity" not in plain.kinds and plain.kinds.count("track_data") > 100
    assert not [e for e in alice.events if e.name == "vad_notification"], "alice does not receive her own track"
    listening.cancel()
    await plain.close()


async def test_without_webrtc_receivers_an_agent_gets_voice_activity_from_the_decoded_audio(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    asking, listening = await vad_agent(server, room)
    alice = await join(server, room, "alice")
    peers.append(alice)
    before = value(scrape(server), "shoal_rtp_packets_fast_path_total")
    script = Script()
    await alice.publish_audio(script.source)
    await asyncio.sleep(SCRIPT_S + 1.0)
    assert value(scrape(server), "shoal_rtp_packets_fast_path_total") - before > 100, "the packets took the fast path"
    script.check(asking, "the agent")
    listening.cancel()


async def test_a_publisher_whose_packets_stop_in_speech_is_silent_one_hangover_later(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    room = create_room(server)
    asking, listening = await vad_agent(server, room)
    alice = await join(server, room, "alice")
    bob = await join(server, room, "bob")
    peers += [alice, bob]
    track = await alice.publish_audio(ToneSource(440))  # speech, never a pause
    await bob.wait_for_remote_track(lambda t: t.track_id == track, timeout=15)
    for _ in range(200):
        if asking:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(1.0)
    assert [speech for _, speech in asking] == [True], "a steady tone is speech, and stays speech"
    stopped = time.monotonic()
    alice.drop_sent_rtp("audio", lambda seq: True)  # from now on the server gets none of her packets
    await asyncio.sleep(1.5)
    assert [speech for _, speech in asking] == [True, False], asking
    assert HANGOVER_S - 0.05 <= asking[1][0] - stopped <= 1.0, f"silence {1000 * (asking[1][0] - stopped):.0f} ms after the packets stopped"
    alice.drop_sent_rtp("audio", None)
    await asyncio.sleep(1.0)
    assert [speech for _, speech in asking] == [True, False, True], "speech again once her packets came back"
    at_bob = [e.details["status"] == "STATUS_SPEECH" for e in bob.events
              if e.name == "vad_notification" and e.details["track_id"] == track]
    assert at_bob == [True, False, True]
    listening.cancel()
