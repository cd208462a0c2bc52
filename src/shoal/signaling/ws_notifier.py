"""The server-notification socket loop: management-token auth, subscribe, then push events."""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from shoal.auth import check_management_token
from shoal.protocol.base import CLOSE_POLICY, ProtocolError
from shoal.protocol.notifier import NotifierAuthRequested, NotifierProtocol, SubscribeRequested
from shoal.server import Shoal
from shoal.signaling.outbox import Outbox
from shoal.signaling.session import Frame, SocketSession, close_socket, open_and_read_first

log = logging.getLogger(__name__)


async def serve_notifier(ws: WebSocket, shoal: Shoal) -> None:
    codec = NotifierProtocol()
    event = await open_and_read_first(ws, codec.receive, shoal.config.auth_timeout_s, "notifier", shoal.preauth)
    if event is None:
        return
    if not isinstance(event, NotifierAuthRequested) or not check_management_token(
        shoal.config.management_token, event.token
    ):
        log.warning("notifier socket refused: invalid token")
        await close_socket(ws, CLOSE_POLICY, "invalid token")
        return

    outbox = Outbox(shoal.config.notifier_outbox_messages, "close", "notifier")
    outbox.put(codec.accept_auth())
    session = SocketSession(
        ws, outbox, "notifier", shoal.unexpected_errors, shoal.config.debug_fault_marker, shoal.loop_behind
    )
    log.info("notifier connected")

    def handle(frame: Frame) -> ProtocolError | None:
        event = codec.receive(frame)
        if isinstance(event, ProtocolError):
            return event
        if isinstance(event, SubscribeRequested) and not codec.subscribed:
            outbox.put(codec.accept_subscribe(event.event_type))
            shoal.notifiers.subscribe(outbox)
        return None

    shoal.sessions.watch(session)
    try:
        await session.run(handle)
    finally:
        shoal.sessions.unwatch(session)
        shoal.notifiers.unsubscribe(outbox)
        log.info("notifier disconnected")
