"""PlayoutBudget: how much outgoing agent audio may be queued, per track, per agent and per server.

A bound on one track's declared duration alone does not bound memory: an agent may open
many tracks, and an Opus packet declares 20 ms whatever its size (issue 10: eleven 100 MB
PCM tracks, or 1,500 padded 1 MB Opus packets, took the server past 1.2 GB). So every
queued chunk is charged in **bytes and seconds** at three levels — its track, its agent
and the server — and admitted only if every level stays within its bound. A chunk that
does not fit is dropped whole (tail drop: what is queued keeps playing), counted at every
level and in ``shoal.refusals`` (one log line per cause). The agent protocol has no error
message, so the agent is not told; the drops are in ``GET /limits/stats`` and in the
track's end-of-track log line.

Charges are returned when frames play, are dropped by the clock to catch up, are
interrupted, or the track ends. Durations are integers in units of 1/192,000 s, in which
every accepted PCM format (16/24/48 kHz, mono or stereo) is a whole number of units per
byte and an Opus sample is 4 units: charges and returns cancel exactly, so an idle server's
budget is exactly zero, never a float residue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shoal.logtext import clip

UNITS_PER_S = 192_000
"""Duration unit of the budget: 1/192,000 s (48 kHz stereo pcm16 is one unit per byte)."""


def units_per_byte(sample_rate: int, channels: int) -> int:
    """Budget units one byte of s16le PCM lasts; raises ValueError for a rate that does not divide evenly."""
    bytes_per_s = sample_rate * channels * 2
    if UNITS_PER_S % bytes_per_s:
        raise ValueError(f"{sample_rate} Hz × {channels} ch is not a whole number of budget units per byte")
    return UNITS_PER_S // bytes_per_s


Note = Callable[[str, str | Callable[[], str]], None]
"""``Refusals.note``: counts a refusal cause, logs the (lazily built) message once per cause."""


def _ignore(cause: str, message: str | Callable[[], str]) -> None:
    pass


@dataclass(frozen=True)
class BudgetLimits:
    track_seconds: float = 600.0
    track_bytes: int = 64 << 20
    agent_seconds: float = 1200.0
    agent_bytes: int = 128 << 20
    server_bytes: int = 1 << 30
    agent_tracks: int = 16
    """Tracks one agent may publish at once (queued audio per agent grows with them)."""


class _Level:
    """Queued bytes and units, and drops, of one level (a track, an agent or the server)."""

    def __init__(self) -> None:
        self.queued_bytes = 0
        self.queued_units = 0
        self.dropped_chunks = 0
        self.dropped_bytes = 0

    @property
    def queued_seconds(self) -> float:
        return self.queued_units / UNITS_PER_S

    def _move(self, nbytes: int, units: int) -> None:
        self.queued_bytes += nbytes
        self.queued_units += units

    def _drop(self, nbytes: int) -> None:
        self.dropped_chunks += 1
        self.dropped_bytes += nbytes


class PlayoutBudget(_Level):
    """The server's budget; ``report(cause, message)`` is ``Refusals.note``."""

    def __init__(self, limits: BudgetLimits | None = None, report: Note = _ignore) -> None:
        super().__init__()
        self.limits = limits or BudgetLimits()
        self._report = report
        self._track_units = round(self.limits.track_seconds * UNITS_PER_S)
        self._agent_units = round(self.limits.agent_seconds * UNITS_PER_S)

    def agent(self, name: str) -> AgentBudget:
        return AgentBudget(self, name)

    def stats(self) -> dict[str, int | float]:
        return {
            "queued_bytes": self.queued_bytes,
            "queued_seconds": round(self.queued_seconds, 3),
            "dropped_chunks": self.dropped_chunks,
            "dropped_bytes": self.dropped_bytes,
        }

    def _over(self, track: TrackBudget, nbytes: int, units: int) -> str | None:
        """The first level ``nbytes``/``units`` more would overflow, as a refusal cause; None if it fits."""
        agent, limits = track.agent, self.limits
        if track.queued_units + units > self._track_units:
            return "track_seconds"
        if track.queued_bytes + nbytes > limits.track_bytes:
            return "track_bytes"
        if agent.queued_units + units > self._agent_units:
            return "agent_seconds"
        if agent.queued_bytes + nbytes > limits.agent_bytes:
            return "agent_bytes"
        if self.queued_bytes + nbytes > limits.server_bytes:
            return "server_bytes"
        return None


class AgentBudget(_Level):
    def __init__(self, server: PlayoutBudget, name: str) -> None:
        super().__init__()
        self.server = server
        self.name = name

    def track(self, name: str) -> TrackBudget:
        return TrackBudget(self, name)

    def refuse_track(self, open_tracks: int, track_id: str) -> str | None:
        """Why one more track (beyond ``open_tracks``) is refused, reported once per cause; None if it may open."""
        limit = self.server.limits.agent_tracks
        if open_tracks < limit:
            return None
        reason = f"an agent may publish at most {limit} tracks at once"
        self.server._report("playout.agent_tracks", lambda: f"agent {clip(self.name)}: AddTrack {clip(track_id)} refused: "
                            f"{reason}")
        return reason


class TrackBudget(_Level):
    """One track's share; ``admit`` before queueing a chunk, ``release`` as it leaves the queue."""

    def __init__(self, agent: AgentBudget, name: str) -> None:
        super().__init__()
        self.agent = agent
        self.name = name
        self._levels = (self, agent, agent.server)

    def admit(self, nbytes: int, units: int) -> bool:
        """Charge a chunk if it fits every level; otherwise count and report its drop and return False."""
        server = self.agent.server
        cause = server._over(self, nbytes, units)
        if cause is None:
            self.charge(nbytes, units)
            return True
        for level in self._levels:
            level._drop(nbytes)
        server._report(f"playout.{cause}", lambda: self._refusal(cause))
        return False

    def charge(self, nbytes: int, units: int) -> None:
        """Charge without a check (the bytes that complete a sample the queue ends in)."""
        for level in self._levels:
            level._move(nbytes, units)

    def release(self, nbytes: int, units: int) -> None:
        for level in self._levels:
            level._move(-nbytes, -units)

    def release_all(self) -> None:
        """Return whatever this track still holds (it ended, or its queue was cleared)."""
        self.release(self.queued_bytes, self.queued_units)

    def _refusal(self, cause: str) -> str:
        limits, agent = self.agent.server.limits, self.agent
        bound = {
            "track_seconds": f"{limits.track_seconds:g} s per track",
            "track_bytes": f"{limits.track_bytes} bytes per track",
            "agent_seconds": f"{limits.agent_seconds:g} s per agent",
            "agent_bytes": f"{limits.agent_bytes} bytes per agent",
            "server_bytes": f"{limits.server_bytes} bytes per server",
        }[cause]
        return (
            f"agent {clip(agent.name)} track {clip(self.name)}: playout queue full ({bound}); "
            "dropping incoming audio until it drains"
        )
