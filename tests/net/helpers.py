"""What the network tests share: an agent that speaks and listens, and failure messages with every log."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from tests.net.netns import Namespace
from tests.net.participants import ParticipantProcess, PeerSpec
from tests.net.services import NetServer
from tests.support.agent_client import RawAgent, create_room, create_webrtc_peer
from tests.support.audio import dominant_frequency, rms, tone
from tests.support.server import ServerProcess

AGENT_RATE = 16000
AGENT_HZ = 440.0
SETTLE_S = 0.5  # start of a stream (jitter buffer, decoder, resampler) left out of analyses
HZ_TOLERANCE = 15.0
MIN_RMS = 1000.0  # s16; the tones are sent at amplitude 8000 (RMS ~5600)


async def speaking_agent(server: ServerProcess, room_id: str, hz: float = AGENT_HZ, seconds: float = 180.0) -> RawAgent:
    """An auto-mode agent of ``room_id`` that publishes a ``hz`` tone.

    ``seconds`` of audio are queued at once; the server plays them out in real time.
    """
    agent = await RawAgent.join(server, room_id, AGENT_RATE)
    track_id = await agent.add_track(AGENT_RATE)
    one_second = tone(hz, 1.0, AGENT_RATE)  # whole cycles: repeats seamlessly
    for _ in range(int(seconds) // 10):
        await agent.send_audio(track_id, one_second * 10)
    return agent


async def listening_agent(server: ServerProcess, room_id: str) -> RawAgent:
    return await RawAgent.join(server, room_id, AGENT_RATE)


def agent_heard(agent: RawAgent, peer_id: str) -> np.ndarray:
    """Everything ``agent`` received from ``peer_id`` (all its tracks), after the settling time."""
    chunks = [r.pcm for r in agent.received.values() if r.peer_id == peer_id]
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return pcm[int(SETTLE_S * AGENT_RATE) :]


async def wait_agent_hears(agent: RawAgent, peer_id: str, seconds: float, timeout: float) -> tuple[float, float]:
    """Wait for ``seconds`` of ``peer_id``'s audio at the agent; its dominant frequency and RMS."""
    deadline = time.monotonic() + timeout
    while len(agent_heard(agent, peer_id)) < seconds * AGENT_RATE:
        if time.monotonic() > deadline:
            got = {r.track_id: (r.peer_id, len(r.pcm)) for r in agent.received.values()}
            raise AssertionError(
                f"the agent did not hear {seconds:.1f} s of peer {peer_id} within {timeout:.0f} s; "
                f"it heard (track: peer, samples): {got}"
            )
        await asyncio.sleep(0.1)
    pcm = agent_heard(agent, peer_id)
    return dominant_frequency(pcm, AGENT_RATE), rms(pcm)


def assert_tone(what: str, hz: float, level: float, expected_hz: float, min_rms: float = MIN_RMS) -> None:
    assert abs(hz - expected_hz) <= HZ_TOLERANCE, f"{what}: {hz:.1f} Hz, expected {expected_hz:.0f} Hz (RMS {level:.0f})"
    assert level >= min_rms, f"{what}: the {expected_hz:.0f} Hz tone came at RMS {level:.0f}, below {min_rms:.0f}"


def drop_counter(ruleset: str, comment_pattern: str) -> int:
    """Packets counted by the rules of ``ruleset`` (nft list output) whose text matches ``comment_pattern``."""
    total = 0
    for line in ruleset.splitlines():
        match = re.search(r"counter packets (\d+)", line)
        if match and re.search(comment_pattern, line):
            total += int(match.group(1))
    return total


@contextlib.contextmanager
def explained(*sources: Callable[[], str]) -> Iterator[None]:
    """Turn an assertion into a failure that also shows each source (participant events, logs, rules)."""
    try:
        yield
    except AssertionError as exc:
        parts = [str(exc)]
        for source in sources:
            try:
                parts.append(source())
            except Exception as report_error:  # a report must never hide the failure
                parts.append(f"(report unavailable: {report_error!r})")
        raise pytest.fail.Exception("\n\n".join(parts), pytrace=False) from None


async def agent_and_python_participant(
    shoal: NetServer, host: Namespace, hz: float, connect_timeout: float
) -> tuple[RawAgent, str, ParticipantProcess]:
    """A new room with a speaking agent and one aiortc participant (in ``host``) listening to it.

    Returns the agent, the participant's peer id and its (not yet started) process.
    """
    room = create_room(shoal.server)
    agent = await speaking_agent(shoal.server, room, AGENT_HZ)
    peer_id, token = create_webrtc_peer(shoal.server, room)
    python = ParticipantProcess(
        host,
        [PeerSpec("python", shoal.public_ws_url, token, hz, listen_to=agent.peer_id)],
        connect_timeout=connect_timeout,
    )
    return agent, peer_id, python
