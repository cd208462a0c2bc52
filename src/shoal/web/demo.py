"""``/demo``: a page to talk to, and the parrot agents the server runs for it in-process.

``POST /demo/api/session`` (only with ``--demo``: it creates rooms without the management
token) makes a room, a WebRTC peer for the page and an agent, and runs ``examples/parrot.py``'s
``Parrot`` as that agent, over the server's own agent socket like any agent. ``GET
/demo/api/session/{room}`` says what the parrot is doing for the page. A session ends when the
page's peer has been gone for ``--demo-idle-seconds`` (20) (or never came), or after ``MAX_LIFETIME_S``; its room
is deleted. At most ``MAX_SESSIONS`` run at once (then 503).

The page itself (``web/demo``, bundled with the official ts-client by ``web/build.mjs``) is
served from ``web/dist``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from fishjam import AgentOptions, AgentOutputOptions, FishjamClient, PeerOptions
from fishjam.agent import OutgoingAudioTrackOptions, OutgoingTrack
from fishjam.errors import HTTPError, NotFoundError
from shoal.logs import ids
from shoal.server import Shoal

log = logging.getLogger(__name__)

CHECKOUT = Path(__file__).resolve().parents[3]
PARROT = CHECKOUT / "examples" / "parrot.py"
DIST = CHECKOUT / "web" / "dist"
MAX_SESSIONS = 8
IDLE_S = 20.0  # default of ShoalConfig.demo_idle_s
MAX_LIFETIME_S = 15 * 60.0
KEEP_EVENTS = 100
RATE = 16000


class DemoUnavailable(Exception):
    """Why no demo session can start (the message is for the page)."""


@dataclass
class DemoSession:
    room_id: str
    peer_id: str
    token: str
    agent_id: str = ""
    track: OutgoingTrack | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def report(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, "t": time.time(), **fields})
        del self.events[:-KEEP_EVENTS]

    def view(self) -> dict[str, Any]:
        queued = self.track.queued_duration if self.track is not None else 0.0
        state = "starting" if self.track is None else "repeating" if queued > 0 else "listening"
        return {
            "room_id": self.room_id, "agent_id": self.agent_id, "state": state,
            "queued_s": round(queued, 3), "events": self.events,
        }


class DemoSessions:
    def __init__(self, shoal: Shoal) -> None:
        self._shoal = shoal
        self.sessions: dict[str, DemoSession] = {}
        self._parrot: ModuleType | None = None

    def _parrot_module(self) -> ModuleType:
        if self._parrot is None:
            if not PARROT.exists():
                raise DemoUnavailable(f"the demo runs {PARROT}, which this installation does not have (use a checkout)")
            spec = importlib.util.spec_from_file_location("shoal_demo_parrot", PARROT)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._parrot = module
        return self._parrot

    def _client(self) -> FishjamClient:
        return FishjamClient(self._shoal.config.base_url, self._shoal.config.management_token)

    async def start(self) -> DemoSession:
        if len(self.sessions) >= MAX_SESSIONS:
            raise DemoUnavailable(f"{MAX_SESSIONS} demo sessions are running; try again later")
        parrot = self._parrot_module()
        client = self._client()
        room = await asyncio.to_thread(client.create_room)
        peer, token = await asyncio.to_thread(client.create_peer, room.id, PeerOptions(metadata={"name": "demo"}))
        session = DemoSession(room.id, peer.id, token)
        self.sessions[room.id] = session
        session.task = asyncio.create_task(self._run(session, parrot, client), name=f"demo {room.id}")
        log.info("demo session started in room %s", room.id, extra=ids(room_id=room.id, peer_id=peer.id))
        return session

    async def _run(self, session: DemoSession, parrot: ModuleType, client: FishjamClient) -> None:
        options = AgentOptions(output=AgentOutputOptions(audio_sample_rate=16000))
        try:
            agent = await asyncio.to_thread(client.create_agent, session.room_id, options)
            session.agent_id = agent.id
            async with agent.connect(playout_events=True, vad_events=True) as agent_session:
                session.track = await agent_session.add_track(
                    OutgoingAudioTrackOptions(sample_rate=RATE, metadata={"name": "parrot"})
                )
                session.report("ready", agent_id=agent.id, track_id=session.track.id)
                runner = asyncio.create_task(parrot.Parrot(agent_session, session.track, report=session.report).run())
                try:
                    await self._until_idle(session, client)
                finally:
                    runner.cancel()
        except Exception:
            log.exception("demo session in room %s failed", session.room_id, extra=ids(room_id=session.room_id))
        finally:
            self.sessions.pop(session.room_id, None)
            with contextlib.suppress(HTTPError):  # already gone
                await asyncio.to_thread(client.delete_room, session.room_id)
            log.info("demo session in room %s ended", session.room_id, extra=ids(room_id=session.room_id))

    async def _until_idle(self, session: DemoSession, client: FishjamClient) -> None:
        """Until the page's peer has been away for ``demo_idle_s``, or is deleted, or the lifetime is up.

        Asked over REST, not of this node's rooms: in a cluster the room may live on another node.
        """
        started = last_seen = time.monotonic()
        while time.monotonic() - started < MAX_LIFETIME_S:
            try:
                room = await asyncio.to_thread(client.get_room, session.room_id)
            except NotFoundError:
                return
            peer = next((p for p in room.peers if p.id == session.peer_id), None)
            if peer is None:
                return
            now = time.monotonic()
            if peer.status.value == "connected":
                last_seen = now
            elif now - last_seen > self._shoal.config.demo_idle_s:
                return
            await asyncio.sleep(min(2.0, self._shoal.config.demo_idle_s / 2))

    async def close(self) -> None:
        tasks = [s.task for s in self.sessions.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
