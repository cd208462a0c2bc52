"""``webhookUrl`` of a new room: checked once, at the edge, before the room exists.

The URL is client text that shoal later hands to httpx on every notification of the room.
Stored unchecked, a 10 MB URL sat in every room listing and log line, and one with a NUL
made httpx raise ``InvalidURL`` in the webhook worker on the first notification. So a room
is created only with a URL httpx can post to: http or https, a host, no control characters
or whitespace, a port within 1..65535, at most ``MAX_WEBHOOK_URL_BYTES`` bytes of UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from shoal.logtext import clip

__all__ = ["MAX_WEBHOOK_URL_BYTES", "WebhookUrlRefusal", "check_webhook_url"]

MAX_WEBHOOK_URL_BYTES = 2048
"""Longest ``webhookUrl`` accepted (fixed; browsers and proxies commonly stop near there too)."""


@dataclass(frozen=True)
class WebhookUrlRefusal:
    cause: str
    """``"bytes"`` or ``"invalid"``: the refusal cause in ``GET /limits/stats`` (``webhook_url.<cause>``)."""
    reason: str
    """Short text for the client and the log; the URL in it is clipped and escaped."""


def check_webhook_url(url: str) -> WebhookUrlRefusal | None:
    """Why ``url`` cannot be a room's webhook URL, or ``None`` if it can."""
    # A character is at least one byte: the cheap length test first bounds the work below.
    if len(url) > MAX_WEBHOOK_URL_BYTES or len(url.encode("utf-8", "surrogatepass")) > MAX_WEBHOOK_URL_BYTES:
        return WebhookUrlRefusal("bytes", f"longer than {MAX_WEBHOOK_URL_BYTES} bytes")
    if any(not c.isprintable() or c.isspace() for c in url):
        return WebhookUrlRefusal("invalid", f"contains a control character or whitespace: {clip(url)}")
    try:
        parsed = httpx.URL(url)
        scheme, host = parsed.scheme, parsed.host  # .host decodes IDNA: a bad A-label raises here
    except (httpx.InvalidURL, ValueError) as exc:  # IDNAError is a ValueError
        return WebhookUrlRefusal("invalid", f"not a valid URL ({clip(str(exc), 80)}): {clip(url)}")
    if scheme not in ("http", "https"):
        return WebhookUrlRefusal("invalid", f"scheme must be http or https: {clip(url)}")
    if not host:
        return WebhookUrlRefusal("invalid", f"has no host: {clip(url)}")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        return WebhookUrlRefusal("invalid", f"port must be within 1..65535: {clip(url)}")
    return None
