"""ShoalConfig: every setting of a server, with defaults and validation in one place."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ShoalConfig:
    host: str = "127.0.0.1"
    port: int = 5002
    management_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    public_url: str | None = None
    """Base URL clients reach this server at (for ``peer_websocket_url``); default from host/port."""
    webhook_secret: str | None = None
    """Key of the ``x-fishjam-signature-256`` HMAC; webhooks are unsigned without it."""
    max_message_bytes: int = 1 << 20
    """Largest WebSocket frame accepted from a client; bigger frames close the socket (1009)."""
    auth_timeout_s: float = 5.0
    """A socket that has not authenticated by then is closed."""
    playout_max_seconds: float = 600.0
    """Per-track bound of queued outgoing agent audio (tail drop beyond it)."""
    agent_outbox_messages: int = 1500
    """Per-agent bound of undelivered messages (about 30 s of one track); oldest dropped."""
    notifier_outbox_messages: int = 10000
    """Per-notifier bound of undelivered notifications; a notifier that falls behind is closed."""
    webhook_queue_messages: int = 10000
    """Per-webhook-URL bound of undelivered notifications; beyond it new ones are dropped and logged."""
    trace_playout: str | None = None
    """File to write a per-frame playout schedule to at shutdown (benchmarks only)."""
    webhook_batch_window_s: float = 0.05
    """How long a batching room's webhook waits to coalesce notifications into one POST."""
    negotiation_timeout_s: float = 15.0
    """A WebRTC peer that has not answered ``offer_data`` with an ``sdp_offer`` by then is disconnected."""
    ice_connect_timeout_s: float = 30.0
    """A WebRTC peer whose media connection is not up this long after an answer is disconnected."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")
        if not self.management_token:
            raise ValueError("management token must not be empty")
        if self.max_message_bytes < 1024:
            raise ValueError("max_message_bytes must be at least 1024")
        if min(self.auth_timeout_s, self.playout_max_seconds, self.negotiation_timeout_s, self.ice_connect_timeout_s) <= 0:
            raise ValueError("timeouts and bounds must be positive")

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def peer_websocket_url(self) -> str:
        base = self.base_url
        scheme = "wss" if base.startswith("https") else "ws"
        return f"{scheme}{base[base.index(':'):]}/socket/peer/websocket"
