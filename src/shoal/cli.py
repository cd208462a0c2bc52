"""``shoal serve``: parse arguments and environment, then run the server; the client commands
(``shoal room|peer|agent|notifications``) are in :mod:`shoal.admin_cli`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn

from shoal import admin_cli, logs
from shoal.api.http_protocol import HttpLimits, protocol_class
from shoal.app import create_app
from shoal.config import ShoalConfig, new_node_id
from shoal.media.libopus import LibopusError
from shoal.seam import SeamError
from shoal.serving import DrainingServer, run_workers

log = logging.getLogger("shoal")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoal", description="Self-hosted, Fishjam-compatible media server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    env = os.environ.get
    serve.add_argument("--host", default=env("SHOAL_HOST", "127.0.0.1"), help="listen address [SHOAL_HOST]")
    serve.add_argument("--port", type=int, default=int(env("SHOAL_PORT", "5002")), help="listen port [SHOAL_PORT]")
    serve.add_argument(
        "--management-token",
        default=env("SHOAL_MANAGEMENT_TOKEN"),
        help="token for the REST API and notifier [SHOAL_MANAGEMENT_TOKEN]; generated and printed if unset",
    )
    serve.add_argument(
        "--public-url",
        default=env("SHOAL_PUBLIC_URL"),
        help="base URL clients use to reach this server, e.g. https://media.example.com [SHOAL_PUBLIC_URL]",
    )
    serve.add_argument(
        "--webhook-secret",
        default=env("SHOAL_WEBHOOK_SECRET"),
        help="HMAC key for the x-fishjam-signature-256 webhook header [SHOAL_WEBHOOK_SECRET]",
    )
    serve.add_argument(
        "--max-message-bytes",
        type=int,
        default=int(env("SHOAL_MAX_MESSAGE_BYTES", str(1 << 20))),
        help="largest WebSocket frame accepted from clients [SHOAL_MAX_MESSAGE_BYTES]",
    )
    serve.add_argument(
        "--auth-timeout",
        type=float,
        default=float(env("SHOAL_AUTH_TIMEOUT", "5")),
        help="seconds a socket may take to authenticate [SHOAL_AUTH_TIMEOUT]",
    )
    serve.add_argument(
        "--max-unauthenticated-per-ip",
        type=int,
        default=int(env("SHOAL_MAX_UNAUTHENTICATED_PER_IP", "64")),
        help="sockets one remote address may hold open before authenticating; more are closed with 1013; "
        "0: no limit [SHOAL_MAX_UNAUTHENTICATED_PER_IP]",
    )
    serve.add_argument(
        "--playout-max-seconds",
        type=float,
        default=float(env("SHOAL_PLAYOUT_MAX_SECONDS", "600")),
        help="bound of queued audio per outgoing agent track [SHOAL_PLAYOUT_MAX_SECONDS]",
    )
    serve.add_argument(
        "--negotiation-timeout",
        type=float,
        default=float(env("SHOAL_NEGOTIATION_TIMEOUT", "15")),
        help="seconds a WebRTC peer may take to answer offer_data with an offer [SHOAL_NEGOTIATION_TIMEOUT]",
    )
    serve.add_argument(
        "--ice-connect-timeout",
        type=float,
        default=float(env("SHOAL_ICE_CONNECT_TIMEOUT", "30")),
        help="seconds a WebRTC peer's media connection may take to come up [SHOAL_ICE_CONNECT_TIMEOUT]",
    )
    serve.add_argument(
        "--metrics-public",
        action="store_true",
        default=env("SHOAL_METRICS_PUBLIC", "").lower() in ("1", "true", "yes"),
        help="serve GET /metrics without the management token [SHOAL_METRICS_PUBLIC]",
    )
    _cluster_options(serve)
    _network_options(serve)
    _limit_options(serve)
    serve.add_argument("--trace-playout", default=env("SHOAL_TRACE_PLAYOUT"), help=argparse.SUPPRESS)
    # Tests only: a socket frame containing this text raises in its handler (the 1011/PeerCrashed path).
    serve.add_argument("--debug-fault-marker", default=env("SHOAL_DEBUG_FAULT_MARKER"), help=argparse.SUPPRESS)
    # Tests only: an agent frame containing this text and a number blocks the event loop that many ms (a stall).
    serve.add_argument("--debug-stall-marker", default=env("SHOAL_DEBUG_STALL_MARKER"), help=argparse.SUPPRESS)
    # Tests only: sockets write frames directly always, not only while the event loop is behind.
    serve.add_argument("--debug-direct-writes", action="store_true",
                       default=bool(env("SHOAL_DEBUG_DIRECT_WRITES")), help=argparse.SUPPRESS)
    # Benchmarks only: participants' audio always goes aiortc's way (no shoal.media.fast_audio), for comparison.
    serve.add_argument("--debug-no-fast-audio", action="store_true",
                       default=bool(env("SHOAL_DEBUG_NO_FAST_AUDIO")), help=argparse.SUPPRESS)
    # Tests only: the event loop is blocked this many ms per media datagram read (a forced overload).
    serve.add_argument("--debug-media-cost-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    serve.add_argument("--log-level", default=env("SHOAL_LOG_LEVEL", "info"), help="[SHOAL_LOG_LEVEL]")
    serve.add_argument(
        "--log-format", choices=["text", "json"], default=env("SHOAL_LOG_FORMAT", "text"),
        help="json: one object per line, with room_id/peer_id/track_id fields [SHOAL_LOG_FORMAT]",
    )
    serve.add_argument(
        "--no-agent-extensions", dest="agent_extensions", action="store_false",
        default=env("SHOAL_AGENT_EXTENSIONS", "true").lower() not in ("0", "false", "no"),
        help="never grant agents playout events or voice activity (serve them exactly as Fishjam does; "
        "e.g. to test an agent's Fishjam cloud behaviour) [SHOAL_AGENT_EXTENSIONS=false]",
    )
    serve.add_argument(
        "--demo", action="store_true", default=env("SHOAL_DEMO", "").lower() in ("1", "true", "yes"),
        help="let /demo create rooms with a parrot agent, without the management token; for trying shoal out, "
        "not for a public server [SHOAL_DEMO]",
    )
    serve.add_argument(
        "--demo-idle-seconds", type=float, default=float(env("SHOAL_DEMO_IDLE_SECONDS", "20")),
        help="a /demo session ends once its page has been gone this long [SHOAL_DEMO_IDLE_SECONDS]",
    )
    serve.add_argument(
        "--access-log", action="store_true", default=env("SHOAL_ACCESS_LOG", "").lower() in ("1", "true", "yes"),
        help="one log line per REST request [SHOAL_ACCESS_LOG]",
    )
    admin_cli.add_commands(commands)
    return parser


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _network_options(serve: argparse.ArgumentParser) -> None:
    """WebRTC network options (issue 9): what crosses NAT and firewalls."""
    # String defaults from the environment go through ``type`` too: a bad value exits 2, naming the option.
    env = os.environ.get
    serve.add_argument(
        "--rtc-public-ip",
        default=env("SHOAL_RTC_PUBLIC_IP"),
        help="IPv4 address announced in ICE candidates instead of the local one (1:1 NAT) [SHOAL_RTC_PUBLIC_IP]",
    )
    serve.add_argument(
        "--rtc-udp-port",
        type=int,
        default=env("SHOAL_RTC_UDP_PORT"),
        help="carry all WebRTC media on this one UDP port [SHOAL_RTC_UDP_PORT]",
    )
    serve.add_argument(
        "--rtc-port-range",
        default=env("SHOAL_RTC_PORT_RANGE"),
        metavar="MIN-MAX",
        help="bind each peer's UDP socket within this range [SHOAL_RTC_PORT_RANGE]",
    )
    serve.add_argument(
        "--rtc-interface",
        action="append",
        metavar="PATTERN",
        help="gather media on matching interfaces (name glob, IP or CIDR); repeatable [SHOAL_RTC_INTERFACES]",
    )
    serve.add_argument(
        "--ice-server",
        action="append",
        metavar="URL",
        help="stun:/turn:/turns: URL handed to WebRTC peers; repeatable [SHOAL_ICE_SERVERS]",
    )
    serve.add_argument("--ice-username", default=env("SHOAL_ICE_USERNAME"), help="static TURN username [SHOAL_ICE_USERNAME]")
    serve.add_argument(
        "--ice-credential", default=env("SHOAL_ICE_CREDENTIAL"), help="static TURN credential [SHOAL_ICE_CREDENTIAL]"
    )
    serve.add_argument(
        "--turn-secret",
        default=env("SHOAL_TURN_SECRET"),
        help="coturn static-auth-secret: time-limited TURN credentials per peer [SHOAL_TURN_SECRET]",
    )
    serve.add_argument(
        "--turn-ttl",
        type=int,
        default=env("SHOAL_TURN_TTL", "86400"),
        help="seconds the TURN credentials stay valid [SHOAL_TURN_TTL]",
    )


LIMIT_OPTIONS: tuple[tuple[str, type, str, str], ...] = (
    # (option, type, config field, help); each also reads SHOAL_<OPTION> from the environment.
    ("--metadata-max-depth", int, "metadata_max_depth", "deepest nesting of peer/track metadata"),
    ("--metadata-max-string", int, "metadata_max_string", "longest string in metadata, in characters"),
    ("--metadata-max-bytes", int, "metadata_max_bytes", "largest metadata, in bytes of JSON"),
    ("--http-max-header-bytes", int, "http_max_header_bytes", "largest HTTP request head (431 beyond)"),
    ("--http-max-body-bytes", int, "http_max_body_bytes", "largest HTTP request body (413 beyond)"),
    ("--http-header-timeout", float, "http_header_timeout_s", "seconds a request's headers may take (408 beyond)"),
    ("--http-body-timeout", float, "http_body_timeout_s", "seconds a request's body may take (408 beyond)"),
    ("--http-keepalive-timeout", float, "http_keepalive_timeout_s", "seconds an idle keep-alive connection stays open"),
    ("--max-rooms", int, "max_rooms", "rooms per server (503 beyond)"),
    ("--max-peers-per-room", int, "max_peers_per_room", "peers per room; maxPeers can only lower it (409 beyond)"),
    ("--playout-max-track-bytes", int, "playout_max_track_bytes", "bytes of queued audio per outgoing agent track"),
    ("--playout-max-agent-seconds", float, "playout_max_agent_seconds", "seconds of queued audio per agent, all tracks"),
    ("--playout-max-agent-bytes", int, "playout_max_agent_bytes", "bytes of queued audio per agent, all tracks"),
    ("--playout-max-server-bytes", int, "playout_max_server_bytes", "bytes of queued agent audio per server"),
    ("--playout-max-lag", float, "playout_max_lag_s", "seconds playout may fall behind before late frames are dropped"),
    ("--max-tracks-per-agent", int, "max_tracks_per_agent", "tracks one agent may publish (close 1008 beyond)"),
    (
        "--participant-audio-max-delay",
        float,
        "participant_audio_max_delay_s",
        "seconds a participant's audio packet may lag its stream's quickest on the sender's clock before it is "
        "dropped for agents (stale); 0: never",
    ),
    (
        "--overload-pause-after",
        float,
        "overload_pause_after_s",
        "seconds the event loop may stay behind before the newest WebRTC senders' inbound media is paused so the "
        "others stay whole; 0: never (every stream is thinned instead)",
    ),
    (
        "--room-peerless-purge-timeout",
        float,
        "room_peerless_purge_timeout_s",
        "seconds a room may have no connected peer before it is deleted; 0: never",
    ),
    (
        "--webhook-reap-grace",
        float,
        "webhook_reap_grace_s",
        "seconds a webhook URL no room uses keeps its queue and worker after its last delivery",
    ),
)


def _cluster_options(serve: argparse.ArgumentParser) -> None:
    env = os.environ.get
    serve.add_argument(
        "--redis",
        default=env("SHOAL_REDIS"),
        help="cluster mode: redis://HOST:PORT/DB shared by the nodes (docs/cluster.md); unset: one standalone "
        "process [SHOAL_REDIS]",
    )
    serve.add_argument("--node-id", default=env("SHOAL_NODE_ID"), help="this node's id; generated if unset [SHOAL_NODE_ID]")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(env("SHOAL_WORKERS", "1")),
        help="run this many nodes on consecutive ports from --port (needs --redis; a {port} in --public-url and "
        "--internal-url is each node's port) [SHOAL_WORKERS]",
    )
    serve.add_argument(
        "--drain-timeout",
        type=float,
        default=float(env("SHOAL_DRAIN_TIMEOUT", "")) if env("SHOAL_DRAIN_TIMEOUT") else None,
        help="on SIGTERM: seconds rooms may go on (no new ones) before sockets close with 1001; default 30 with "
        "--redis, 0 without [SHOAL_DRAIN_TIMEOUT]",
    )
    serve.add_argument(
        "--internal-url",
        default=env("SHOAL_INTERNAL_URL"),
        help="base URL the other nodes reach this one at; default the public URL [SHOAL_INTERNAL_URL]",
    )


def _limit_options(serve: argparse.ArgumentParser) -> None:
    """Limits against untrusted clients (issue 10); defaults are ShoalConfig's."""
    defaults = ShoalConfig(management_token="-")
    for option, kind, field, text in LIMIT_OPTIONS:
        env_name = "SHOAL_" + option.removeprefix("--").replace("-", "_").upper()
        default = os.environ.get(env_name, str(getattr(defaults, field)))
        serve.add_argument(option, type=kind, default=default, dest=field, help=f"{text} [{env_name}] (default %(default)s)")


def _limit_config(args: argparse.Namespace) -> dict[str, object]:
    return {field: getattr(args, field) for _, _, field, _ in LIMIT_OPTIONS}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command != "serve":
        return admin_cli.run(args)
    logs.configure(args.log_level, args.log_format)
    # httpx logs every request at INFO: one line per webhook POST. shoal's own lines say what went wrong.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.workers < 1:
        print("shoal: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1:
        if not args.redis:
            print("shoal: --workers needs --redis (the nodes share their rooms through it)", file=sys.stderr)
            return 2
        if not args.management_token:
            args.management_token = ShoalConfig().management_token
            print(f"shoal: generated management token: {args.management_token}", flush=True)
        raw = list(argv if argv is not None else sys.argv[1:])
        return run_workers(args.workers, args.port, args.node_id or new_node_id(), [*raw, "--management-token", args.management_token])
    for name in ("public_url", "internal_url"):
        if getattr(args, name):
            setattr(args, name, getattr(args, name).replace("{port}", str(args.port)))
    generated = not args.management_token
    options = {"management_token": args.management_token} if args.management_token else {}
    try:
        config = ShoalConfig(
            host=args.host,
            port=args.port,
            public_url=args.public_url,
            webhook_secret=args.webhook_secret,
            max_message_bytes=args.max_message_bytes,
            auth_timeout_s=args.auth_timeout,
            max_unauthenticated_per_ip=args.max_unauthenticated_per_ip,
            playout_max_seconds=args.playout_max_seconds,
            negotiation_timeout_s=args.negotiation_timeout,
            ice_connect_timeout_s=args.ice_connect_timeout,
            trace_playout=args.trace_playout,
            debug_fault_marker=args.debug_fault_marker or None,
            debug_stall_marker=args.debug_stall_marker or None,
            debug_direct_writes=args.debug_direct_writes,
            debug_media_cost_ms=args.debug_media_cost_ms,
            debug_no_fast_audio=args.debug_no_fast_audio,
            rtc_public_ip=args.rtc_public_ip,
            rtc_udp_port=args.rtc_udp_port,
            rtc_port_range=args.rtc_port_range,
            rtc_interfaces=tuple(args.rtc_interface or _env_list("SHOAL_RTC_INTERFACES")),
            ice_servers=tuple(args.ice_server or _env_list("SHOAL_ICE_SERVERS")),
            ice_username=args.ice_username,
            ice_credential=args.ice_credential,
            turn_secret=args.turn_secret,
            turn_ttl_s=args.turn_ttl,
            metrics_public=args.metrics_public,
            access_log=args.access_log,
            demo=args.demo,
            demo_idle_s=args.demo_idle_seconds,
            agent_extensions=args.agent_extensions,
            redis_url=args.redis,
            drain_timeout_s=args.drain_timeout,
            node_id=args.node_id or new_node_id(),
            internal_url=args.internal_url,
            **_limit_config(args),  # type: ignore[arg-type]
            **options,
        )
        app = create_app(config)
    except (ValueError, SeamError, LibopusError) as exc:  # RtcSetupError: an address or port that cannot be used
        print(f"shoal: {exc}", file=sys.stderr)
        return 2
    if generated:
        print(f"shoal: generated management token: {config.management_token}", flush=True)
    log.info("shoal listening; use fishjam_id=%s", config.base_url)
    log.info("dashboard: %s/dashboard/ (asks for the management token)", config.base_url)
    if config.demo:
        log.info("demo: open %s/demo/ and talk to the parrot", config.base_url)
    http = protocol_class(
        HttpLimits(config.http_max_header_bytes, config.http_max_body_bytes, config.http_header_timeout_s),
        app.state.shoal.refusals.note,
    )
    server_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=http,
        timeout_keep_alive=config.http_keepalive_timeout_s,  # type: ignore[arg-type]  # used as a float
        ws="websockets-sansio",
        # Compressing 20 ms PCM frames gains little and cost a tenth of the server's CPU.
        ws_per_message_deflate=False,
        ws_max_size=config.max_message_bytes,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        log_level=args.log_level.lower(),
        log_config=None,  # uvicorn's lines go through shoal's handler (shoal.logs), in its format
        access_log=False,  # --access-log is shoal.api.access_log, with room and peer fields
    )
    DrainingServer(server_config, app.state.shoal).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
