"""Shared decoding of ``ServerMessage`` payloads for the webhook and WebSocket paths."""

from __future__ import annotations

from typing import Any

from fishjam.events import ServerMessage, ServerMessageNotificationBatch
from fishjam.events.allowed_notifications import (
    ALLOWED_NOTIFICATIONS,
    AllowedNotification,
    validate_notification,
)


def content_of(message: Any) -> Any:
    """The message set in the ``content`` oneof, or ``None`` when nothing is set."""
    which = message.WhichOneof("content")
    return None if which is None else getattr(message, which)


def as_allowed(content: Any) -> AllowedNotification | None:
    """Return ``content`` if user code should see it, checking it first."""
    if isinstance(content, ALLOWED_NOTIFICATIONS):
        validate_notification(content)
        return content
    return None


def unpack_batch(batch: Any) -> list[AllowedNotification]:
    """The allowed members of a ``NotificationBatch``, in order (batches do not nest)."""
    found: list[AllowedNotification] = []
    for member in batch.notifications:
        notification = as_allowed(content_of(member))
        if notification is not None:
            found.append(notification)
    return found


def parse_server_message(data: bytes) -> Any:
    """Decode one ``ServerMessage`` and return its content."""
    message = ServerMessage()
    message.ParseFromString(data)
    return content_of(message)


def is_batch(content: Any) -> bool:
    """Whether the content is a ``NotificationBatch``."""
    return isinstance(content, ServerMessageNotificationBatch)
