"""WebRTC participants in tests: joining, and what a participant heard."""

from __future__ import annotations

import numpy as np

from shoal.testing import RemoteTrack, WebRTCPeer
from tests.support.agent_client import create_webrtc_peer
from tests.support.audio import dominant_frequency, rms
from tests.support.server import ServerProcess

SETTLE_S = 0.3
"""Audio at the start of a stream (codec and resampler priming) that analyses skip."""


def spectrum_of(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """Dominant frequency and RMS level of ``samples`` after the settling time."""
    steady = samples[int(SETTLE_S * rate) :]
    assert len(steady) > rate // 2, f"only {len(steady) / rate:.2f} s of steady audio"
    return dominant_frequency(steady, rate), rms(steady)


async def join(server: ServerProcess, room: str, name: str, mode: str = "auto") -> WebRTCPeer:
    """A new WebRTC peer of ``room`` (created over REST), joined with ``{"name": name}``."""
    peer_id, token = create_webrtc_peer(server, room, mode)
    peer = await WebRTCPeer.join(server.ws_url, token, metadata={"name": name})
    assert peer.endpoint_id == peer_id
    return peer


async def heard(track: RemoteTrack, seconds: float = 1.5) -> tuple[float, float]:
    """Dominant frequency and level of ``seconds`` of a remote track's steady audio."""
    await track.recording.wait_for_seconds(seconds + SETTLE_S, timeout=15)
    return spectrum_of(track.recording.samples(), 48000)
