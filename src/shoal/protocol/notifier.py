"""Server side of the notification socket (``/socket/server/websocket``), without I/O.

Handshake: ``AuthRequest{management token}`` → ``Authenticated``, then
``SubscribeRequest{EVENT_TYPE_SERVER_NOTIFICATION}`` → ``SubscribeResponse``. Clients may
send both requests back to back (the JS SDK does); they are handled in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.protocol.base import CLOSE_INVALID_DATA, CLOSE_POLICY, ProtocolError, parse
from shoal.protocol.pb import server_pb

SM = server_pb.ServerMessage


@dataclass(frozen=True)
class NotifierAuthRequested:
    token: str


@dataclass(frozen=True)
class SubscribeRequested:
    event_type: int


NotifierEvent = NotifierAuthRequested | SubscribeRequested


class NotifierProtocol:
    def __init__(self) -> None:
        self.authenticated = False
        self.subscribed = False

    def receive(self, frame: bytes | str) -> NotifierEvent | ProtocolError:
        message = parse(SM, frame, "ServerMessage")
        if isinstance(message, ProtocolError):
            return message
        which = message.WhichOneof("content")
        if not self.authenticated:
            if which != "auth_request":
                return ProtocolError(CLOSE_POLICY, "invalid auth request")
            return NotifierAuthRequested(message.auth_request.token)
        if which != "subscribe_request":
            return ProtocolError(CLOSE_POLICY, f"operation not allowed: {which}")
        event_type = message.subscribe_request.event_type
        if event_type != SM.EVENT_TYPE_SERVER_NOTIFICATION:
            return ProtocolError(CLOSE_INVALID_DATA, f"unsupported event type {event_type}")
        return SubscribeRequested(event_type)

    def accept_auth(self) -> bytes:
        self.authenticated = True
        return bytes(SM(authenticated=SM.Authenticated()).SerializeToString())

    def accept_subscribe(self, event_type: int) -> bytes:
        self.subscribed = True
        return bytes(SM(subscribe_response=SM.SubscribeResponse(event_type=SM.EventType.Name(event_type))).SerializeToString())
