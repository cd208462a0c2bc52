"""Single-port demultiplexing: which ICE connection a datagram on the shared port belongs to.

Pure and synchronous (no sockets, no clock), so it can be driven with millions of inputs.
The rule, as mediasoup's WebRtcServer and LiveKit's UDP mux do it:

* a datagram from a known remote address goes to the connection that address is bound to;
* a STUN Binding request whose USERNAME starts with the local ufrag of a live connection
  (``"<local ufrag>:<remote ufrag>"``) goes to that connection, from any address; the
  address is *not* bound by this alone, since anyone who saw a ufrag can put it in a request;
* an address becomes known (``learn``) only when its connection vouches for it: a Binding
  request from it passed MESSAGE-INTEGRITY with the connection's password, or the
  connection itself sent a check there (its answer comes back from there);
* an address bound to one live connection is never taken by another (a forged or
  replayed request cannot move someone's media); it is free again once its connection
  closes or evicts it;
* everything else from an unknown address is dropped and counted by reason.

The table is bounded: each connection keeps at most ``max_addresses`` addresses (the least
recently vouched for is evicted first, never its pinned, selected one), and all of a
connection's addresses go when it is unregistered.
"""

from __future__ import annotations

import enum
import struct
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Address = tuple[str, int]
T = TypeVar("T", bound=Hashable)

STUN_MAGIC_COOKIE = 0x2112A442
STUN_HEADER = struct.Struct("!HHI12s")
BINDING_REQUEST = 0x0001
USERNAME_ATTRIBUTE = 0x0006
MAX_ADDRESSES_PER_CONNECTION = 16
"""Remote addresses one connection may hold on a shared port: its client's candidates plus rebindings."""


class Drop(enum.Enum):
    """Why a datagram on the shared port was dropped (the value is the counter's name)."""

    NOT_STUN = "not_stun"
    """Not STUN (media, DTLS or garbage) from an address no connection owns."""
    MALFORMED_STUN = "malformed_stun"
    """Looks like STUN (first byte, magic cookie) but its length or attributes are broken."""
    NOT_BINDING_REQUEST = "not_binding_request"
    """A STUN message other than a Binding request from an address no connection owns."""
    NO_USERNAME = "no_username"
    """A Binding request without a USERNAME ``local:remote``, from an unknown address."""
    UNKNOWN_UFRAG = "unknown_ufrag"
    """A Binding request whose local ufrag belongs to no live connection."""


DROP_CAUSES = {
    Drop.NOT_STUN: "not STUN (media, DTLS or garbage) from an address no connection owns",
    Drop.MALFORMED_STUN: "a STUN header with a broken length or attributes",
    Drop.NOT_BINDING_REQUEST: "a STUN message other than a Binding request from an address no connection owns",
    Drop.NO_USERNAME: "a STUN Binding request without USERNAME from an address no connection owns",
    Drop.UNKNOWN_UFRAG: "a STUN Binding request whose ICE username fragment belongs to no live connection",
}
"""What each drop means, for the log line."""


class StunInfo:
    """What the demultiplexer needs from a STUN message: its type and the local ufrag."""

    __slots__ = ("message_type", "ufrag")

    def __init__(self, message_type: int, ufrag: str | None) -> None:
        self.message_type = message_type
        self.ufrag = ufrag


def looks_like_stun(data: bytes) -> bool:
    """RFC 7983: STUN's first byte is 0..3 (DTLS 20..63, RTP/RTCP 128..191)."""
    return len(data) >= STUN_HEADER.size and data[0] < 4


def inspect_stun(data: bytes) -> StunInfo | Drop | None:
    """``None`` if ``data`` is not STUN; ``Drop.MALFORMED_STUN`` if broken; else its type and ufrag.

    The ufrag is the part of USERNAME before the first ``:`` (RFC 8445 §7.2.2), or the
    whole USERNAME if it has none (then ``":"``-less, which ICE itself rejects later).
    """
    if not looks_like_stun(data):
        return None
    message_type, length, cookie, _ = STUN_HEADER.unpack_from(data)
    if cookie != STUN_MAGIC_COOKIE:
        return None
    if length % 4 or STUN_HEADER.size + length != len(data):
        return Drop.MALFORMED_STUN
    ufrag: str | None = None
    pos = STUN_HEADER.size
    end = len(data)
    while pos < end:
        if pos + 4 > end:
            return Drop.MALFORMED_STUN
        attr_type, attr_length = struct.unpack_from("!HH", data, pos)
        value_end = pos + 4 + attr_length
        if value_end > end:
            return Drop.MALFORMED_STUN
        if attr_type == USERNAME_ATTRIBUTE and ufrag is None:
            try:
                username = data[pos + 4 : value_end].decode("utf-8")
            except UnicodeDecodeError:
                return Drop.MALFORMED_STUN
            ufrag = username.partition(":")[0]
        pos = value_end + (-attr_length % 4)
    return StunInfo(message_type, ufrag)


class DemuxTable(Generic[T]):
    """Remote address → connection and ufrag → connection for one shared socket."""

    def __init__(self, max_addresses: int = MAX_ADDRESSES_PER_CONNECTION) -> None:
        if max_addresses < 1:
            raise ValueError("max_addresses must be at least 1")
        self.max_addresses = max_addresses
        self._by_ufrag: dict[str, T] = {}
        self._ufrag_of: dict[T, str] = {}
        self._by_address: dict[Address, T] = {}
        self._addresses_of: dict[T, OrderedDict[Address, None]] = {}
        self._pinned: dict[T, Address] = {}
        self.new_addresses = 0
        """Addresses bound to a connection that already had one (NAT rebinding, more candidates)."""
        self.refused_moves = 0
        """Addresses a connection vouched for that another live connection holds (kept by the holder)."""
        self.evicted_addresses = 0

    # connections ---------------------------------------------------------------------

    def register(self, ufrag: str, target: T) -> None:
        """``target`` owns ``ufrag`` from now on; ``ValueError`` if a live connection already does."""
        owner = self._by_ufrag.get(ufrag)
        if owner is not None and owner != target:
            raise ValueError(f"ICE ufrag {ufrag!r} is already in use on this port")
        if target in self._ufrag_of and self._ufrag_of[target] != ufrag:
            raise ValueError("a connection registers one ufrag")
        self._by_ufrag[ufrag] = target
        self._ufrag_of[target] = ufrag
        self._addresses_of.setdefault(target, OrderedDict())

    def unregister(self, target: T) -> None:
        """Forget ``target``, its ufrag and every address bound to it (idempotent)."""
        ufrag = self._ufrag_of.pop(target, None)
        if ufrag is not None and self._by_ufrag.get(ufrag) == target:
            del self._by_ufrag[ufrag]
        self._pinned.pop(target, None)
        for address in self._addresses_of.pop(target, ()):
            if self._by_address.get(address) == target:
                del self._by_address[address]

    def learn(self, address: Address, target: T) -> bool:
        """``target`` vouches for ``address`` (an authenticated request from it, or its own check
        sent there): bind it, or refresh it. An address another connection holds stays with it.
        Returns whether ``address`` is now ``target``'s."""
        if target not in self._ufrag_of:
            return False
        holder = self._by_address.get(address)
        if holder is not None and holder != target:
            self.refused_moves += 1
            return False
        self._bind(address, target)
        return True

    def pin(self, target: T, address: Address) -> None:
        """``address`` is ``target``'s selected one: eviction passes it over."""
        if self._by_address.get(address) == target:
            self._pinned[target] = address

    # datagrams -----------------------------------------------------------------------

    def route(self, data: bytes, address: Address) -> T | Drop:
        """The connection ``data`` from ``address`` is for, or why it is dropped."""
        bound = self._by_address.get(address)
        if bound is not None and (not data or data[0] >= 4):
            return bound  # the fast path: media and DTLS of a known address
        info = inspect_stun(data)
        if info is None:
            return bound if bound is not None else Drop.NOT_STUN
        if isinstance(info, Drop):
            return bound if bound is not None else info
        if info.message_type == BINDING_REQUEST and info.ufrag is not None:
            owner = self._by_ufrag.get(info.ufrag)
            # The ufrag's owner checks MESSAGE-INTEGRITY and, if it holds, learns the address.
            return owner if owner is not None else Drop.UNKNOWN_UFRAG
        if bound is not None:
            return bound
        return Drop.NOT_BINDING_REQUEST if info.message_type != BINDING_REQUEST else Drop.NO_USERNAME

    # introspection -------------------------------------------------------------------

    def owner_of(self, address: Address) -> T | None:
        return self._by_address.get(address)

    def addresses_of(self, target: T) -> list[Address]:
        return list(self._addresses_of.get(target, ()))

    @property
    def connections(self) -> int:
        return len(self._ufrag_of)

    @property
    def addresses(self) -> int:
        return len(self._by_address)

    def _bind(self, address: Address, target: T) -> None:
        mine = self._addresses_of[target]
        if address in mine:
            mine.move_to_end(address)
            return
        if mine:
            self.new_addresses += 1
        mine[address] = None
        self._by_address[address] = target
        if len(mine) > self.max_addresses:
            pinned = self._pinned.get(target)
            oldest = next(a for a in mine if a != pinned)
            del mine[oldest]
            del self._by_address[oldest]
            self.evicted_addresses += 1


class OnceLog:
    """Logs the first occurrence of each cause, then at most one summary per cause per interval.

    Bad input on a media port can arrive at line rate; one line per packet would flood the
    log, one line per cause says what is wrong. ``emit`` and ``clock`` are injected so the
    policy is testable without a logger or real time.
    """

    def __init__(self, emit: Callable[[str], None], clock: Callable[[], float], interval_s: float = 60.0) -> None:
        self._emit = emit
        self._clock = clock
        self._interval_s = interval_s
        self.counts: Counter[str] = Counter()
        self._suppressed: Counter[str] = Counter()
        self._last: dict[str, float] = {}

    def note(self, cause: str, message: str | Callable[[], str]) -> None:
        """Count ``cause``; log ``message`` if it is new, or a summary if the interval has passed.

        ``message`` may be a function, so a hot path only formats text it will log.
        """
        self.counts[cause] += 1
        now = self._clock()
        last = self._last.get(cause)
        if last is None:
            self._last[cause] = now
            self._emit(f"{_text(message)} (logged once; later ones counted)")
        elif now - last >= self._interval_s:
            suppressed = self._suppressed.pop(cause, 0)
            self._last[cause] = now
            self._emit(f"{_text(message)} ({suppressed} more like it in the last {now - last:.0f} s)")
        else:
            self._suppressed[cause] += 1


def _text(message: str | Callable[[], str]) -> str:
    return message if isinstance(message, str) else message()
