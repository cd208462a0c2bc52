"""What every socket codec shares: frame checks and the protocol-error event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

# WebSocket close codes used by the server.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # the server is shutting down (a draining node)
CLOSE_UNSUPPORTED_DATA = 1003  # text frame where binary protobuf is required
CLOSE_INVALID_DATA = 1007  # bytes that are not the expected protobuf message
CLOSE_POLICY = 1008  # auth failures and requests the server refuses
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN_LATER = 1013  # the server is at a capacity limit (a full port range, too many sockets)

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class ProtocolError:
    """The connection must be closed with this code and reason."""

    code: int
    reason: str


def parse(message_type: type[M], frame: bytes | str, what: str) -> M | ProtocolError:
    """Decode one frame into ``message_type`` or explain why it cannot be."""
    if isinstance(frame, str):
        return ProtocolError(CLOSE_UNSUPPORTED_DATA, f"text frames are not supported; send binary {what}")
    message = message_type()
    try:
        message.ParseFromString(frame)
    except DecodeError:
        return ProtocolError(CLOSE_INVALID_DATA, f"frame is not a valid {what} protobuf message")
    return message


def clip_reason(reason: str) -> str:
    """Close reasons may carry at most 123 bytes of UTF-8."""
    data = reason.encode()
    if len(data) <= 123:
        return reason
    return data[:120].decode(errors="ignore") + "..."
