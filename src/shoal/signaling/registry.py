"""SessionRegistry: which socket session currently serves each peer.

It closes a peer's socket when the peer is deleted, and the older socket when the same
token connects again (the newest connection wins).
"""

from __future__ import annotations

from shoal.domain import events as ev
from shoal.protocol.base import CLOSE_NORMAL
from shoal.signaling.session import SocketSession


class SessionRegistry:
    def __init__(self) -> None:
        self._sessions: dict[str, SocketSession] = {}
        self._others: set[SocketSession] = set()
        """Sessions without a peer (notifier sockets), closed only by ``close_all``."""

    def watch(self, session: SocketSession) -> None:
        self._others.add(session)

    def unwatch(self, session: SocketSession) -> None:
        self._others.discard(session)

    def close_all(self, code: int, reason: str) -> int:
        """Ask every open session to close (a draining node); returns how many were asked."""
        sessions = [*self._sessions.values(), *self._others]
        for session in sessions:
            session.request_close(code, reason)
        return len(sessions)

    def register(self, peer_id: str, session: SocketSession) -> None:
        previous = self._sessions.get(peer_id)
        self._sessions[peer_id] = session
        if previous is not None and previous is not session:
            previous.request_close(CLOSE_NORMAL, "replaced by a newer connection with the same token")

    def unregister(self, peer_id: str, session: SocketSession) -> None:
        if self._sessions.get(peer_id) is session:
            del self._sessions[peer_id]

    def on_event(self, event: ev.DomainEvent) -> None:
        if isinstance(event, ev.PeerDeleted):
            session = self._sessions.pop(event.peer_id, None)
            if session is not None:
                session.request_close(CLOSE_NORMAL, "peer removed")
