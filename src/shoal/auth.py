"""Management-token checks and peer/agent tokens.

Peer tokens are random, unguessable strings bound to exactly one peer of one room. They
are stored server-side, so deleting the peer or the room, or refreshing the token, makes
the old one fail at once; nothing can be forged or replayed after revocation.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass


def check_management_token(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of a presented management token."""
    if not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass(frozen=True)
class TokenGrant:
    room_id: str
    peer_id: str


class PeerTokens:
    """Issues, resolves and revokes the tokens peers and agents connect with."""

    def __init__(self) -> None:
        self._by_token: dict[str, TokenGrant] = {}
        self._by_peer: dict[str, str] = {}

    def issue(self, room_id: str, peer_id: str) -> str:
        """A new token for the peer; any earlier token of that peer stops working."""
        self.revoke(peer_id)
        token = secrets.token_urlsafe(32)
        self._by_token[token] = TokenGrant(room_id, peer_id)
        self._by_peer[peer_id] = token
        return token

    def grants(self) -> list[tuple[str, TokenGrant]]:
        """Every live token with its grant (a cluster node re-publishes them after Redis returns)."""
        return list(self._by_token.items())

    def resolve(self, token: str) -> TokenGrant | None:
        return self._by_token.get(token)

    def revoke(self, peer_id: str) -> None:
        old = self._by_peer.pop(peer_id, None)
        if old is not None:
            self._by_token.pop(old, None)
