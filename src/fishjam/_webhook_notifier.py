"""Decoding and authenticating webhook requests sent by the server."""

from __future__ import annotations

import hashlib
import hmac
import warnings

from fishjam.events._decode import as_allowed, is_batch, parse_server_message, unpack_batch
from fishjam.events.allowed_notifications import AllowedNotification

_SIGNATURE_PREFIX = "sha256="


def decode_server_notifications(binary: bytes) -> list[AllowedNotification]:
    """Decode a webhook body into the notifications it carries, in order.

    Works whether or not the room batches webhooks: a single notification gives a
    one-element list, a ``NotificationBatch`` is unpacked, and anything the SDK does not
    surface gives an empty list. Raises :class:`~fishjam.errors.StaleSdkError` for a
    recording status this SDK does not know.
    """
    content = parse_server_message(binary)
    if is_batch(content):
        return unpack_batch(content)
    notification = as_allowed(content)
    return [] if notification is None else [notification]


def receive_binary(
    binary: bytes,
) -> AllowedNotification | list[AllowedNotification] | None:
    """Deprecated: decode a webhook body, returning a notification, a list or ``None``.

    The return type depends on whether the room batches webhooks, which is why
    :func:`decode_server_notifications` replaced it.
    """
    warnings.warn(
        "receive_binary is deprecated; use decode_server_notifications instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    content = parse_server_message(binary)
    if is_batch(content):
        return unpack_batch(content)
    return as_allowed(content)


def verify_webhook_signature(body: bytes, signature: str, secret: str) -> bool:
    """Check the ``x-fishjam-signature-256`` header against the raw request body.

    The header is ``sha256=<lower-case hex HMAC-SHA256 of the body>``; the prefix may be
    omitted. The comparison takes constant time, so it leaks nothing about the secret.
    Verify before decoding: only signed bodies should be trusted.
    """
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    provided = signature.strip().removeprefix(_SIGNATURE_PREFIX)
    return hmac.compare_digest(provided.encode(), expected.encode())
