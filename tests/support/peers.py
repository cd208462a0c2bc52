"""WebRTC participants in tests: joining, and what a participant heard."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from shoal.testing import RemoteTrack, ToneSource, WebRTCPeer
from shoal.testing.talker import Talker
from tests.support.agent_client import RawAgent, Received, create_room, create_webrtc_peer
from tests.support.audio import dominant_frequency, rms
from tests.support.server import ServerProcess

SETTLE_S = 0.3
"""Audio at the start of a stream (codec and resampler priming) that analyses skip."""


def spectrum_of(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """Dominant frequency and RMS level of ``samples`` after the settling time."""
    steady = samples[int(SETTLE_S * rate) :]
    assert len(steady) >= rate // 2, f"only {len(steady) / rate:.2f} s of steady audio (at least 0.5 s needed)"
    return dominant_frequency(steady, rate), rms(steady)


async def join(server: ServerProcess, room: str, name: str, mode: str = "auto") -> WebRTCPeer:
    """A new WebRTC peer of ``room`` (created over REST), joined with ``{"name": name}``."""
    peer_id, token = create_webrtc_peer(server, room, mode)
    peer = await WebRTCPeer.join(server.ws_url, token, metadata={"name": name})
    assert peer.endpoint_id == peer_id
    return peer


@dataclass
class Caller:
    """A participant who talks on cue (``talker``) and hears an agent's track (``reply``)."""

    peer: WebRTCPeer
    talker: Talker
    reply: RemoteTrack


async def caller_of(server: ServerProcess, room: str, agent_track_id: str, peers: list[WebRTCPeer], name: str = "talker") -> Caller:
    """Join ``room``, publish a :class:`Talker`, and wait for the agent's (announced, still silent) track."""
    participant = await join(server, room, name)
    peers.append(participant)
    talker = Talker()
    await participant.publish_audio(talker.source)
    # An agent is silent until it has something to say: its track is announced, not yet flowing.
    reply = await participant.wait_for_remote_track(lambda t: t.track_id.endswith(agent_track_id), timeout=15, ready=False)
    await asyncio.sleep(1.0)  # both directions settled before anyone speaks
    return Caller(participant, talker, reply)


async def heard(track: RemoteTrack, seconds: float = 1.5) -> tuple[float, float]:
    """Dominant frequency and level of ``seconds`` of a remote track's steady audio."""
    await track.recording.wait_for_seconds(seconds + SETTLE_S, timeout=15)
    return spectrum_of(track.recording.samples(), 48000)


@dataclass
class TwoTalkers:
    """An agent hearing two participants: Alice at 440 Hz and Bob at 660 Hz."""

    agent: RawAgent
    alice: WebRTCPeer
    bob: WebRTCPeer
    alice_track: str
    bob_track: str


async def two_talkers(server: ServerProcess, peers: list[WebRTCPeer], rate: int) -> TwoTalkers:
    """A new room, an agent at ``rate``, and Alice and Bob publishing their tones; returns once
    the agent has a second of each."""
    room = create_room(server)
    agent = await RawAgent.join(server, room, rate=rate)
    alice, bob = await join(server, room, "alice"), await join(server, room, "bob")
    peers += [alice, bob]
    alice_track = await alice.publish_audio(ToneSource(440))
    bob_track = await bob.publish_audio(ToneSource(660))
    await agent.wait_samples(alice_track, rate, timeout=15)
    await agent.wait_samples(bob_track, rate, timeout=15)
    return TwoTalkers(agent, alice, bob, alice_track, bob_track)


def tail_frequency(received: Received, rate: int, chunks: int = 40) -> float:
    """Dominant frequency of the last ``chunks`` chunks an agent received of a track."""
    return dominant_frequency(np.frombuffer(b"".join(received.chunks[-chunks:]), dtype="<i2"), rate)
