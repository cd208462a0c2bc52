"""The test side of ``participant.py``: start it in a namespace, follow its JSON lines, stop it.

One :class:`ParticipantProcess` holds one or more peers (few processes with several peers each
keep 20 participants affordable on two cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.net.netns import Namespace

REPO = Path(__file__).resolve().parents[2]


@dataclass
class PeerSpec:
    name: str
    ws_url: str
    token: str
    tone_hz: float
    listen_to: str | None = None
    listen_seconds: float = 2.0


class ParticipantProcess:
    """``python -m tests.net.participant`` inside ``ns``; ``events`` are its output lines, in order."""

    def __init__(self, ns: Namespace, peers: list[PeerSpec], *, connect_timeout: float = 60.0,
                 join_timeout: float = 30.0, max_seconds: float = 240.0) -> None:
        self.ns = ns
        self.config = {
            "peers": [vars(p) for p in peers],
            "connect_timeout": connect_timeout,
            "join_timeout": join_timeout,
            "max_seconds": max_seconds,
        }
        self.events: list[dict[str, Any]] = []
        self.process: asyncio.subprocess.Process | None = None
        fd, path = tempfile.mkstemp(prefix=f"participant-{ns.role}-", suffix=".log")
        os.close(fd)
        self.stderr_path = Path(path)
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> ParticipantProcess:
        with self.stderr_path.open("wb") as err:
            self.process = await asyncio.create_subprocess_exec(
                *self.ns.exec_args([sys.executable, "-m", "tests.net.participant"]),
                cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(self.config) + "\n").encode())
        await self.process.stdin.drain()
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := await self.process.stdout.readline():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "garbage", "line": line.decode(errors="replace")}
            self.events.append(event)
            self._changed.set()
        self.events.append({"event": "eof", "returncode": await self.process.wait()})
        self._changed.set()

    def of(self, peer: str, event: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("peer") == peer and (event is None or e.get("event") == event)]

    async def wait_for(self, peer: str, events: set[str], timeout: float) -> dict[str, Any]:
        """The first event of ``peer`` named in ``events``; AssertionError (with everything seen) otherwise.

        A ``failed`` event or the end of the process ends the wait at once.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.events:
                if event.get("peer") == peer and event.get("event") in events:
                    return event
                if event.get("peer") == peer and event.get("event") == "failed" and "failed" not in events:
                    raise AssertionError(f"participant {peer} failed: {event}\n{self.report()}")
            if any(e.get("event") == "eof" for e in self.events):
                raise AssertionError(f"the participant process ended before {peer} reported {events}\n{self.report()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"participant {peer} did not report {events} within {timeout:.0f} s\n{self.report()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def status(self, peer: str, timeout: float = 30.0) -> dict[str, Any]:
        """Ask for a ``status`` line and return ``peer``'s (what it hears now)."""
        seen = len(self.events)
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"status\n")
        await self.process.stdin.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.events[seen:]:
                if event.get("peer") == peer and event.get("event") == "status":
                    return event
            remaining = deadline - loop.time()
            if remaining <= 0 or any(e.get("event") == "eof" for e in self.events):
                raise AssertionError(f"no status from {peer} within {timeout:.0f} s\n{self.report()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def report(self, stderr_lines: int = 40) -> str:
        lines = [f"--- participant process in {self.ns.name}: events ---"]
        lines.extend(json.dumps(e)[:1500] for e in self.events)
        tail = self.stderr_path.read_text(errors="replace").splitlines()[-stderr_lines:]
        lines.append(f"--- its stderr (last {len(tail)} lines) ---")
        lines.extend(tail)
        return "\n".join(lines)

    async def stop(self, timeout: float = 30.0) -> None:
        """Ask every peer to leave; kill the process if it does not exit in time."""
        process = self.process
        if process is None:
            return
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(Exception):
                process.stdin.write(b"stop\n")
                await process.stdin.drain()
                process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
