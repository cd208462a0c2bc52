"""The agent socket: an ``AgentEndpoint`` served through the shared peer-socket lifecycle."""

from __future__ import annotations

import logging
import re
import time

from starlette.websockets import WebSocket

from shoal.domain.model import Peer, PeerType
from shoal.endpoints.agent import AgentEndpoint, SessionError
from shoal.protocol.agent import AgentEvent, AgentProtocol, AuthRequested
from shoal.protocol.base import CLOSE_POLICY, ProtocolError
from shoal.server import Shoal
from shoal.signaling.outbox import Outbox
from shoal.signaling.peer_socket import PeerSocketAdapter, serve_peer_socket
from shoal.signaling.session import Frame, SocketSession, close_socket

log = logging.getLogger(__name__)


OPT_INS = ("playout_events", "vad_events")
"""Query parameters of the agent socket URL that opt in to shoal's extensions (docs/protocol-extensions.md)."""
_YES, _NO = ("true", "1"), ("false", "0", "")


async def serve_agent(ws: WebSocket, shoal: Shoal) -> None:
    chosen: dict[str, bool] = dict.fromkeys(OPT_INS, False)
    for name in OPT_INS if shoal.config.agent_extensions else ():  # off: the query is ignored, as Fishjam does
        value = ws.query_params.get(name, "").lower()
        if value not in _YES + _NO:
            await ws.accept()
            await close_socket(ws, CLOSE_POLICY, f"{name}={value[:20]!r}: use true or false")
            return
        chosen[name] = value in _YES
    adapter: PeerSocketAdapter[AgentEvent] = _AgentSocket(shoal, chosen["playout_events"], chosen["vad_events"])
    await serve_peer_socket(ws, shoal, adapter)


class _AgentSocket:
    channel = "agent"

    def __init__(self, shoal: Shoal, playout_events: bool, vad_events: bool) -> None:
        self._shoal = shoal
        self._playout_events = playout_events
        self._vad_events = vad_events
        self._codec = AgentProtocol(shoal.config.metadata_limits, shoal.refusals.note)

    def decode(self, frame: Frame) -> AgentEvent | ProtocolError:
        return self._codec.receive(frame)

    def token(self, event: AgentEvent) -> str | None:
        return event.token if isinstance(event, AuthRequested) else None

    def refusal(self, peer: Peer) -> str | None:
        return None if peer.type is PeerType.AGENT else f"token belongs to a {peer.type.value} peer, not an agent"

    def outbox(self, peer: Peer) -> Outbox:
        outbox = Outbox(
            self._shoal.config.agent_outbox_messages, "drop_oldest", f"agent {peer.id}", self._shoal.tally
        )
        outbox.put(self._codec.accept_auth(self._playout_events, self._vad_events))
        return outbox

    def start(self, peer: Peer, connection: int, session: SocketSession, first: AgentEvent) -> _ServedAgent:
        shoal = self._shoal
        endpoint = AgentEndpoint(
            peer,
            connection,
            shoal.manager,
            shoal.router,
            shoal.clock,
            session.outbox,
            shoal.playout_budget.agent(peer.id),
            shoal.trace,
            self._playout_events,
            self._vad_events,
        )
        shoal.router.add_receiver(endpoint)
        return _ServedAgent(self._codec, endpoint, session.outbox, shoal.config.debug_stall_marker)


class _ServedAgent:
    def __init__(self, codec: AgentProtocol, endpoint: AgentEndpoint, outbox: Outbox, stall_marker: str | None) -> None:
        self._codec = codec
        self._endpoint = endpoint
        self._outbox = outbox
        self._stall = re.compile(re.escape(stall_marker.encode()) + rb"(\d{1,6})") if stall_marker else None

    def handle(self, frame: Frame) -> ProtocolError | None:
        if self._stall is not None and isinstance(frame, bytes) and (found := self._stall.search(frame)):
            log.warning("--debug-stall-marker: blocking the event loop for %s ms", found[1].decode())
            time.sleep(int(found[1]) / 1000)  # deliberately blocking: tests of stall recovery
            return None
        event = self._codec.receive(frame)
        if isinstance(event, ProtocolError):
            return event
        try:
            self._endpoint.handle(event)
        except SessionError as exc:
            return ProtocolError(exc.code, exc.reason)
        return None

    def summary(self) -> dict[str, int | float]:
        return {
            "frames_sent": self._outbox.sent, "frames_dropped": self._outbox.dropped,
            "chunks_received": self._endpoint.chunks_received, "chunks_dropped": self._endpoint.chunks_dropped,
            "tracks_published": self._endpoint.tracks_added,
        }

    def close(self) -> None:
        self._endpoint.close()
        if self._outbox.dropped:
            log.warning(
                "agent %s: %d frames were dropped because it read too slowly", self._endpoint.peer_id, self._outbox.dropped
            )
