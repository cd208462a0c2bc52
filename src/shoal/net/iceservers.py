"""The STUN/TURN servers a WebRTC peer is handed in ``connected.ice_servers``; pure, no I/O.

Time-limited TURN credentials follow coturn's REST-API scheme (``use-auth-secret`` with
``static-auth-secret``): the username is ``"<expiry unix time>:<peer id>"`` and the
credential ``base64(HMAC-SHA1(secret, username))``, so coturn can check them without
talking to shoal, and a leaked credential stops working at its expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TURN_TTL_S = 86400

_URL = re.compile(
    r"(?P<scheme>stuns?|turns?):(?P<host>\[[0-9A-Fa-f:.]+\]|[^\[\]?:/@\s]+)(?::(?P<port>[0-9]{1,5}))?"
    r"(?:\?transport=(?P<transport>udp|tcp))?"
)


@dataclass(frozen=True)
class IceUrl:
    url: str
    scheme: str
    host: str
    """Without IPv6 brackets."""
    port: int
    transport: str
    """``udp`` or ``tcp`` (``turns:`` is TLS over TCP)."""

    @property
    def is_turn(self) -> bool:
        return self.scheme in ("turn", "turns")


@dataclass(frozen=True)
class IceServerEntry:
    """One ``IceServer`` of ``connected.ice_servers``."""

    urls: tuple[str, ...]
    username: str = ""
    credential: str = ""


def parse_ice_url(url: str) -> IceUrl:
    """``stun:host[:port]``, ``turn:host[:port][?transport=udp|tcp]``, ``turns:host[:port]``."""
    text = url.strip()
    match = _URL.fullmatch(text)
    if match is None:
        raise ValueError(
            f"--ice-server {url!r}: expected stun:host:port, turn:host:port[?transport=udp|tcp] or turns:host:port"
        )
    scheme = match["scheme"]
    if scheme.startswith("stun") and match["transport"]:
        raise ValueError(f"--ice-server {url!r}: stun: URLs take no transport")
    if scheme == "turns" and match["transport"] == "udp":
        raise ValueError(f"--ice-server {url!r}: turns: runs over TCP (TLS)")
    port = int(match["port"]) if match["port"] else (5349 if scheme in ("stuns", "turns") else 3478)
    if not 1 <= port <= 65535:
        raise ValueError(f"--ice-server {url!r}: port out of range")
    transport = match["transport"] or ("tcp" if scheme in ("stuns", "turns") else "udp")
    return IceUrl(text, scheme, match["host"].strip("[]"), port, transport)


def turn_rest_credentials(secret: str, peer_id: str, ttl_s: int, now: float) -> tuple[str, str]:
    """coturn REST-API credentials for ``peer_id``, valid until ``now + ttl_s``."""
    username = f"{int(now) + ttl_s}:{peer_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class IcePolicy:
    """What every WebRTC peer is told: validated ``--ice-server`` URLs and how TURN credentials are made."""

    urls: tuple[IceUrl, ...] = ()
    username: str | None = None
    credential: str | None = None
    turn_secret: str | None = None
    turn_ttl_s: int = DEFAULT_TURN_TTL_S

    @classmethod
    def build(
        cls,
        urls: Sequence[str],
        username: str | None = None,
        credential: str | None = None,
        turn_secret: str | None = None,
        turn_ttl_s: int = DEFAULT_TURN_TTL_S,
    ) -> IcePolicy:
        """Validate the options together; ``ValueError`` names the offending option."""
        parsed = tuple(parse_ice_url(url) for url in urls)
        if turn_ttl_s <= 0:
            raise ValueError(f"--turn-ttl {turn_ttl_s}: must be a positive number of seconds")
        if (username is None) != (credential is None):
            raise ValueError("--ice-username and --ice-credential go together")
        static = username is not None
        if static and turn_secret:
            raise ValueError("--turn-secret and --ice-username/--ice-credential are exclusive")
        if turn_secret is not None and not turn_secret:
            raise ValueError("--turn-secret must not be empty")
        has_turn = any(u.is_turn for u in parsed)
        if has_turn and not (static or turn_secret):
            raise ValueError("turn:/turns: --ice-server URLs need --turn-secret or --ice-username/--ice-credential")
        if (static or turn_secret) and not has_turn:
            raise ValueError("TURN credentials given but no turn:/turns: --ice-server URL")
        return cls(parsed, username, credential, turn_secret, turn_ttl_s)

    @property
    def turn_urls(self) -> tuple[IceUrl, ...]:
        return tuple(u for u in self.urls if u.is_turn)

    def credentials_for(self, peer_id: str, now: float) -> tuple[str, str]:
        """The TURN username and credential ``peer_id`` gets (static or time-limited)."""
        if self.turn_secret:
            return turn_rest_credentials(self.turn_secret, peer_id, self.turn_ttl_s, now)
        return self.username or "", self.credential or ""

    def entries_for(self, peer_id: str, now: float) -> list[IceServerEntry]:
        """``connected.ice_servers`` for ``peer_id``: STUN URLs in one entry, TURN URLs in one with credentials."""
        entries: list[IceServerEntry] = []
        stun = tuple(u.url for u in self.urls if not u.is_turn)
        if stun:
            entries.append(IceServerEntry(stun))
        turn = tuple(u.url for u in self.turn_urls)
        if turn:
            username, credential = self.credentials_for(peer_id, now)
            entries.append(IceServerEntry(turn, username, credential))
        return entries
