"""What the browser tests share besides the page itself: failure reports, the agent's ear, tasks.

``harness.py`` drives the page; this module holds the test side around it: turning an assertion
into a failure that shows what every page saw plus the server's log, telling when a page can no
longer join, and an agent session that records the audio it receives, per track.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pytest

from fishjam.agent import AgentSession, IncomingTrackData
from tests.browser.harness import BrowserPage, PageFailure, State
from tests.support.server import ServerProcess

AGENT_RATE: Final = 16000  # the agents' output sample rate in these tests


def server_log_tail(server: ServerProcess, lines: int = 60) -> str:
    tail = server.log_text().splitlines()[-lines:]
    return f"--- shoal server log (last {len(tail)} lines) ---\n" + "\n".join(tail)


@contextlib.contextmanager
def explained(
    pages: BrowserPage | Iterable[BrowserPage], server: ServerProcess | None, log_lines: int = 60
) -> Iterator[None]:
    """Turn an assertion into a failure that shows what each page saw and the server's log.

    The pages are reported as they were, then stopped before the server's log is read, so the
    log also holds what the server says when peers leave (e.g. per-track forwarding counters).
    """
    every = [pages] if isinstance(pages, BrowserPage) else list(pages)
    try:
        yield
    except AssertionError as exc:
        parts = [str(exc)]
        # A PageFailure already holds the report of the page that raised it.
        parts.extend(page.report() for page in every if not (isinstance(exc, PageFailure) and exc.page is page))
        if server is not None:
            for page in every:
                page.stop()
            parts.append(server_log_tail(server, log_lines))
        # `from None`: the message already says it all; no chained copy of the original.
        raise pytest.fail.Exception("\n\n".join(parts), pytrace=False) from None


def page_gave_up(state: State) -> str | None:
    """Why the page can no longer join and publish, if it cannot."""
    if state.get("authError"):
        return f"ts-client reported authError {state['authError']!r}"
    if state.get("joinError"):
        return f"ts-client reported joinError {state['joinError']!r}"
    if state.get("status") == "failed":
        return f"the page failed: {state.get('errors')}"
    if (state.get("connect") or {}).get("state") == "rejected":
        return f"client.connect() rejected: {state['connect'].get('error')}"
    return None


def frames_named(state: State, name: str) -> list[State]:
    return [f for f in (state.get("socket") or {}).get("frames") or [] if f.get("name") == name]


# --- the agent's side -------------------------------------------------------------------------


@dataclass
class HeardTrack:
    peer_id: str
    metadata: str
    chunks: list[bytes] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return sum(len(c) for c in self.chunks) // 2

    def pcm(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.chunks), dtype="<i2")


class AgentEar:
    """Collects the TrackData an agent session receives, per track id."""

    def __init__(self) -> None:
        self.tracks: dict[str, HeardTrack] = {}
        self.stopped: str | None = None  # why listening ended, if it did

    async def listen(self, session: AgentSession) -> None:
        try:
            async for message in session.receive():
                if isinstance(message, IncomingTrackData):
                    track = message.track
                    heard = self.tracks.setdefault(track.id, HeardTrack(message.peer_id, track.metadata))
                    heard.chunks.append(message.data)
            self.stopped = "the agent socket closed normally"
        except Exception as exc:
            self.stopped = f"the agent socket failed: {exc!r}"
            raise

    def from_peer(self, peer_id: str) -> dict[str, HeardTrack]:
        return {tid: t for tid, t in self.tracks.items() if t.peer_id == peer_id}

    async def wait_for_samples(self, peer_id: str, samples: int, timeout: float) -> dict[str, HeardTrack]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tracks = self.from_peer(peer_id)
            if any(t.samples >= samples for t in tracks.values()):
                return tracks
            await asyncio.sleep(0.1)
        got = {tid: (t.peer_id, t.metadata, t.samples) for tid, t in self.tracks.items()}
        raise AssertionError(
            f"the agent did not receive {samples} samples ({samples / AGENT_RATE:.1f} s) of the browser peer "
            f"{peer_id}'s audio within {timeout:.0f} s; it heard (track: peer, metadata, samples): {got}"
            + (f"; {self.stopped}" if self.stopped else "")
        )


@contextlib.asynccontextmanager
async def running(coro_task: asyncio.Task[None]) -> AsyncIterator[asyncio.Task[None]]:
    try:
        yield coro_task
    finally:
        coro_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await coro_task
