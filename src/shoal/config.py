"""ShoalConfig: every setting of a server, with defaults and validation in one place."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from shoal.media.budget import BudgetLimits
from shoal.net.addresses import PortRange, parse_port_range, validate_interface_pattern, validate_public_ip
from shoal.net.iceservers import DEFAULT_TURN_TTL_S, IcePolicy
from shoal.protocol.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_STRING, MetadataLimits


def new_node_id() -> str:
    return "node-" + secrets.token_hex(4)


@dataclass(frozen=True)
class ShoalConfig:
    host: str = "127.0.0.1"
    port: int = 5002
    management_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    public_url: str | None = None
    """Base URL clients reach this server at (for ``peer_websocket_url``); default from host/port."""
    redis_url: str | None = None
    """Cluster mode (``shoal.cluster``): the Redis the nodes share; None runs one standalone process."""
    node_id: str = field(default_factory=new_node_id)
    """This node's name in the cluster (logs, registry, ``x-shoal-hop``)."""
    internal_url: str | None = None
    """Base URL other nodes reach this one at; default ``base_url``."""
    drain_timeout_s: float | None = None
    """On SIGTERM, how long rooms may go on (no new ones) before sockets close; None: 30 s with
    ``redis_url``, 0 (stop at once) without."""
    webhook_secret: str | None = None
    """Key of the ``x-fishjam-signature-256`` HMAC; webhooks are unsigned without it."""
    max_message_bytes: int = 1 << 20
    """Largest WebSocket frame accepted from a client; bigger frames close the socket (1009)."""
    auth_timeout_s: float = 5.0
    """A socket that has not authenticated by then is closed."""
    max_unauthenticated_per_ip: int = 64
    """Sockets one remote address may hold open before authenticating; more are closed (1013). 0: no limit."""
    playout_max_seconds: float = 600.0
    """Per-track bound of queued outgoing agent audio, in seconds (tail drop beyond it)."""
    playout_max_track_bytes: int = 64 << 20
    """Per-track bound of queued outgoing agent audio, in bytes (an Opus packet's size, not its duration)."""
    playout_max_agent_seconds: float = 1200.0
    """Per-agent bound of queued outgoing audio over all its tracks, in seconds."""
    playout_max_agent_bytes: int = 128 << 20
    """Per-agent bound of queued outgoing audio over all its tracks, in bytes."""
    playout_max_server_bytes: int = 1 << 30
    """Server-wide bound of queued outgoing agent audio, in bytes."""
    playout_max_lag_s: float = 0.2
    """Beyond this lag behind schedule (a stall) the playout clock skips ahead and tracks drop their late frames."""
    max_tracks_per_agent: int = 16
    """Tracks one agent may publish at once; one more ``AddTrack`` closes its socket (1008)."""
    participant_audio_max_delay_s: float = 1.0
    """A participant's audio packet later than this behind its stream's quickest path, on the
    sender's RTP clock, is dropped before it is decoded for agents (``StaleGate``; 0: never)."""
    overload_pause_after_s: float = 2.0
    """The event loop behind this long pauses the newest WebRTC senders' inbound media so the
    others stay whole (``shoal.net.admission``; 0: never, every stream is thinned instead)."""
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
    rtc_public_ip: str | None = None
    """IPv4 address announced in host candidates instead of the bound one (1:1 NAT)."""
    rtc_udp_port: int | None = None
    """All WebRTC media on this one UDP port (per gathered address)."""
    rtc_port_range: str | None = None
    """``"MIN-MAX"``: each peer connection binds within it (exclusive with ``rtc_udp_port``)."""
    rtc_interfaces: tuple[str, ...] = ()
    """Interface globs, IP addresses or CIDRs gathered; empty: all but loopback and container bridges."""
    ice_servers: tuple[str, ...] = ()
    """``stun:``/``turn:``/``turns:`` URLs handed to every WebRTC peer in ``connected.ice_servers``."""
    ice_username: str | None = None
    ice_credential: str | None = None
    turn_secret: str | None = None
    """coturn ``static-auth-secret``: time-limited TURN credentials per peer (exclusive with static ones)."""
    turn_ttl_s: int = DEFAULT_TURN_TTL_S
    metrics_public: bool = False
    access_log: bool = False
    agent_extensions: bool = True
    """Grant agents' opt-ins to playout events and voice activity; off, agents are served as Fishjam serves them."""
    demo: bool = False
    demo_idle_s: float = 20.0
    """A demo session ends (its room deleted) once its page's peer has been away this long."""
    """``POST /demo/api/session`` makes rooms with a parrot agent, without the management token (``shoal.web.demo``)."""
    """One log line per REST request (``shoal.api.access_log``)."""
    """``GET /metrics`` answers without the management token (for a scraper on a trusted network)."""
    debug_fault_marker: str | None = None
    """Tests only: a socket frame containing this text makes its handler raise, to exercise the crash path."""
    debug_stall_marker: str | None = None
    """Tests only: an agent frame containing this text followed by digits blocks the event loop that many ms."""
    debug_direct_writes: bool = False
    """Tests only: sockets write frames directly always, not only while the event loop is behind."""
    debug_media_cost_ms: float = 0.0
    """Tests only: the event loop is blocked this long for each media datagram it reads (a forced overload)."""
    debug_no_fast_audio: bool = False
    """Benchmarks only: participants' audio always goes through aiortc's queue and task (no fast path)."""
    # limits against untrusted clients (issue 10) ----------------------------------------
    metadata_max_depth: int = DEFAULT_MAX_DEPTH
    """Deepest nesting of peer/track metadata; deeper is refused (400, or close 1008)."""
    metadata_max_string: int = DEFAULT_MAX_STRING
    """Longest string (value or key) in metadata, in characters."""
    metadata_max_bytes: int = DEFAULT_MAX_BYTES
    """Largest metadata, in bytes of UTF-8 JSON."""
    http_max_header_bytes: int = 32 * 1024
    """Largest HTTP request line plus headers; more gets 431 before it is buffered."""
    http_max_body_bytes: int = 1 << 20
    """Largest HTTP request body; more gets 413 (from Content-Length, or counted while streaming)."""
    http_header_timeout_s: float = 10.0
    """A connection must deliver a request's complete headers this soon (slowloris); else 408 and closed."""
    http_body_timeout_s: float = 30.0
    """A request's body must arrive this soon after its headers; else 408 and closed."""
    http_keepalive_timeout_s: float = 5.0
    """An idle keep-alive connection is closed after this long."""
    max_rooms: int = 10000
    """Rooms per server; creating one more gets 503."""
    max_peers_per_room: int = 100
    """Peers per room (a room's ``maxPeers`` can only lower it); one more gets 409."""
    room_peerless_purge_timeout_s: float = 3600.0
    """A room without a connected peer for this long is deleted (0: never)."""
    webhook_reap_grace_s: float = 60.0
    """A webhook target (URL, batching) no room uses is dropped with its worker after this long idle."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")
        if not self.management_token:
            raise ValueError("management token must not be empty")
        if self.max_message_bytes < 1024:
            raise ValueError("max_message_bytes must be at least 1024")
        if self.max_unauthenticated_per_ip < 0:
            raise ValueError("max_unauthenticated_per_ip must be 0 (no limit) or positive")
        if min(self.auth_timeout_s, self.playout_max_seconds, self.negotiation_timeout_s, self.ice_connect_timeout_s) <= 0:
            raise ValueError("timeouts and bounds must be positive")
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"--redis must be a redis://, rediss:// or unix:// URL, not {self.redis_url!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.node_id):
            raise ValueError(f"--node-id must be 1-64 letters, digits, '.', '_' or '-', not {self.node_id!r}")
        self._validate_rtc()
        self._validate_limits()

    def _validate_limits(self) -> None:
        _ = self.metadata_limits
        if self.http_max_header_bytes < 1024 or self.http_max_body_bytes < 1024:
            raise ValueError("HTTP header and body limits must be at least 1024 bytes")
        if min(self.http_header_timeout_s, self.http_body_timeout_s, self.http_keepalive_timeout_s) <= 0:
            raise ValueError("HTTP timeouts must be positive")
        if self.max_rooms < 1 or self.max_peers_per_room < 1:
            raise ValueError("--max-rooms and --max-peers-per-room must be at least 1")
        if min(self.playout_max_track_bytes, self.playout_max_agent_bytes, self.playout_max_server_bytes) < 1024:
            raise ValueError("--playout-max-track-bytes, --playout-max-agent-bytes and --playout-max-server-bytes "
                             "must be at least 1024")
        if self.playout_max_agent_seconds <= 0:
            raise ValueError("--playout-max-agent-seconds must be positive")
        if self.playout_max_lag_s < 0.02:
            raise ValueError("--playout-max-lag must be at least 0.02 s (one frame)")
        if self.overload_pause_after_s < 0:
            raise ValueError("--overload-pause-after must be 0 (never) or a number of seconds")
        if self.participant_audio_max_delay_s < 0:
            raise ValueError("--participant-audio-max-delay must not be negative (0: never)")
        if self.max_tracks_per_agent < 1:
            raise ValueError("--max-tracks-per-agent must be at least 1")
        if self.room_peerless_purge_timeout_s < 0:
            raise ValueError("--room-peerless-purge-timeout must not be negative (0: never)")
        if self.webhook_reap_grace_s <= 0:
            raise ValueError("--webhook-reap-grace must be positive")

    @property
    def playout_limits(self) -> BudgetLimits:
        return BudgetLimits(
            self.playout_max_seconds, self.playout_max_track_bytes, self.playout_max_agent_seconds,
            self.playout_max_agent_bytes, self.playout_max_server_bytes, self.max_tracks_per_agent,
        )

    @property
    def metadata_limits(self) -> MetadataLimits:
        return MetadataLimits(self.metadata_max_depth, self.metadata_max_string, self.metadata_max_bytes)

    def _validate_rtc(self) -> None:
        if self.rtc_udp_port is not None and not 1 <= self.rtc_udp_port <= 65535:
            raise ValueError(f"--rtc-udp-port {self.rtc_udp_port}: must be within 1..65535")
        if self.rtc_udp_port is not None and self.rtc_port_range is not None:
            raise ValueError("--rtc-udp-port and --rtc-port-range are exclusive")
        if self.rtc_port_range is not None:
            parse_port_range(self.rtc_port_range)
        if self.rtc_public_ip is not None:
            validate_public_ip(self.rtc_public_ip)
        for pattern in self.rtc_interfaces:
            validate_interface_pattern(pattern)
        _ = self.ice_policy

    @property
    def port_range(self) -> PortRange | None:
        return parse_port_range(self.rtc_port_range) if self.rtc_port_range is not None else None

    @property
    def ice_policy(self) -> IcePolicy:
        return IcePolicy.build(self.ice_servers, self.ice_username, self.ice_credential, self.turn_secret, self.turn_ttl_s)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def drain_s(self) -> float:
        if self.drain_timeout_s is not None:
            return self.drain_timeout_s
        return 30.0 if self.redis_url else 0.0

    @property
    def node_internal_url(self) -> str:
        return (self.internal_url or self.base_url).rstrip("/")

    @property
    def peer_websocket_url(self) -> str:
        base = self.base_url
        scheme = "wss" if base.startswith("https") else "ws"
        return f"{scheme}{base[base.index(':'):]}/socket/peer/websocket"
