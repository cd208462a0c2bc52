"""How the server's ICE connections gather, share one UDP port and follow a NAT rebinding.

What it changes in aioice and aiortc, and why (every private access goes through
``shoal.seam``, which checks at start-up that each is still there):

* ``ShoalConnection`` (an aioice ``Connection``) gathers host candidates only on the
  addresses shoal chose, binds them within ``--rtc-port-range`` or onto the shared
  ``--rtc-udp-port`` socket, announces ``--rtc-public-ip`` in them, and follows a client
  whose NAT mapping changed: once a check of the new address has succeeded (never before,
  or a client could point the server's media at any address it writes as its source), if
  the client nominated it or the selected address has gone silent.
* ``SharedUdpSocket`` is the single-port demultiplexer: one datagram socket per gathered
  address, routing each datagram to a connection by ``demux.DemuxTable``.
* ``install()`` makes aiortc's ``RTCIceGatherer`` build a ``ShoalConnection`` when the
  peer connection's ``iceServers`` is a ``GatherIceServers`` list (the server's own peer
  connections); any other ``RTCPeerConnection`` in the process is left as aiortc makes it.
* ``turn_allocate`` runs one TURN Allocate with aioice's TURN client (the start-up check).

"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import aioice
import aioice.candidate
import aioice.stun
import aioice.turn
from aiortc import RTCIceServer
from aiortc.rtp import is_rtcp

from shoal import seam
from shoal.net.addresses import PortRange
from shoal.net.admission import Stream, StreamAdmission
from shoal.net.demux import DROP_CAUSES, Address, DemuxTable, Drop, OnceLog

log = logging.getLogger(__name__)

SHARED_SOCKET_BUFFER = 4 << 20
"""Receive/send buffer asked for on a shared socket (all peers' media; the kernel may cap it)."""
REBIND_SILENCE_S = 1.0
"""A selected remote address that sent nothing for this long is taken to be gone (NAT rebinding)."""
UFRAG_LENGTH = 16
"""aioice's 4-character ufrags collide among thousands of connections; the demux needs them unique."""


MEDIA_MAX_AGE_S = 0.1
"""A received SRTP/SRTCP datagram still unread this long after it arrived is dropped unread,
unless it is the newest one queued: that one is the freshest media there is, and dropping it
too would starve the stream entirely whenever every read comes over 100 ms late (deep overload).

The event loop fell behind (overload, a stall): decoding and forwarding media that is
already late would only make everything after it late too, and the backlog would grow
without bound until peers' ICE consent expired. Dropping at the door costs almost nothing,
so the loop catches up at once and the freshest media keeps flowing; video receivers NACK
what they miss. DTLS and STUN are never dropped. Counted (``overload_dropped``).
"""
MAX_QUEUED_DATAGRAMS = 2000
"""Hard bound of one connection's receive queue (aioice's is unbounded): oldest dropped beyond it."""


class PortRangeExhausted(OSError):
    """Every port of ``--rtc-port-range`` is in use on an address."""


# --- what a connection gathers --------------------------------------------------------


@dataclass
class NetStats:
    """Counters a test or an operator reads (``GET /rtc/stats``)."""

    connections_gathered: int = 0
    host_candidates: int = 0
    port_range_exhausted: int = 0
    bind_errors: int = 0
    rebinds_followed: int = 0
    """Moves the server made itself: the selected address went silent, a new one checks in (NAT rebinding)."""
    nominations_followed: int = 0
    """Moves the client asked for by nominating another address (a browser's switch, or its rebinding)."""
    shared_datagrams_in: int = 0
    shared_dropped: Counter[str] = field(default_factory=Counter)
    shared_send_errors: int = 0
    overload_dropped: int = 0
    """Media datagrams dropped unread: older than ``MEDIA_MAX_AGE_S`` when read, or over ``MAX_QUEUED_DATAGRAMS``."""


@dataclass
class GatherPlan:
    """Where a server's ICE connections put their host candidates (one per server)."""

    addresses: tuple[str, ...]
    public_ip: str | None = None
    port_range: PortRange | None = None
    shared: dict[str, SharedUdpSocket] = field(default_factory=dict)
    """Gathered address → its shared socket, in single-port mode."""
    stats: NetStats = field(default_factory=NetStats)
    notes: OnceLog = field(default_factory=lambda: OnceLog(log.warning, time.monotonic))
    """Problems: bad datagrams, bind failures, an exhausted port range."""
    events: OnceLog = field(default_factory=lambda: OnceLog(log.info, time.monotonic))
    """Normal but noteworthy: NAT rebindings."""
    admission: StreamAdmission = field(default_factory=lambda: StreamAdmission(clock=time.monotonic))
    """Which connections' inbound media is read under sustained overload (``shoal.net.admission``)."""
    debug_media_cost_s: float = 0.0
    """Tests only: the event loop is blocked this long per media datagram read (a forced overload)."""

    def announced(self, address: str) -> str:
        """The address put in the host candidate of a socket bound to ``address``."""
        if self.public_ip is not None and ipaddress.ip_address(address).version == 4:
            return self.public_ip
        return address


class GatherIceServers(list[RTCIceServer]):
    """An ``iceServers`` list that also carries the server's ``GatherPlan`` into aiortc's gatherer."""

    def __init__(self, plan: GatherPlan, servers: list[RTCIceServer] | None = None, label: str = "a WebRTC peer") -> None:
        super().__init__(servers or [])
        self.plan = plan
        self.label = label
        """Who the connection serves, for logs (``"peer P in room R"``)."""


# --- sockets ---------------------------------------------------------------------------


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def bind_udp(address: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``(address, port)``; ``OSError`` if that fails."""
    sock = socket.socket(_family(address), socket.SOCK_DGRAM)
    try:
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def bind_in_range(address: str, ports: PortRange, rng: random.Random | None = None) -> socket.socket:
    """A socket on a free port of ``ports``, trying every port once from a random start."""
    start = (rng or random).randrange(len(ports))
    for i in range(len(ports)):
        port = ports.low + (start + i) % len(ports)
        try:
            return bind_udp(address, port)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
    raise PortRangeExhausted(errno.EADDRINUSE, f"no free UDP port in --rtc-port-range {ports} on {address}")


def _tune_buffers(sock: socket.socket, size: int) -> None:
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
        except OSError:
            pass


class _MuxedTransport(asyncio.DatagramTransport):
    """What one connection's ``StunProtocol`` sees of a shared socket: its own send and close."""

    def __init__(self, shared: SharedUdpSocket, protocol: ShoalStunProtocol) -> None:
        super().__init__()
        self._shared = shared
        self._protocol = protocol
        self._closing = False

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        if self._closing:
            return
        self._shared.send(self._protocol, data, addr if len(addr) == 2 else (addr[0], addr[1]))

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._shared.detach(self._protocol)
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self._closing

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return self._shared.sockname
        return default


class SharedUdpSocket(asyncio.DatagramProtocol):
    """One shared datagram socket of ``--rtc-udp-port``: routes datagrams to ICE connections.

    Lives as long as the server; connections attach when they gather and detach when they
    close. Dropped datagrams are counted by ``demux.Drop`` reason and logged once per reason.
    """

    def __init__(self, sock: socket.socket, stats: NetStats, notes: OnceLog) -> None:
        self.sock = sock
        self.sockname: tuple[str, int] = sock.getsockname()[:2]
        self.table: DemuxTable[ShoalStunProtocol] = DemuxTable()
        self._stats = stats
        self._notes = notes
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        _tune_buffers(self.sock, SHARED_SOCKET_BUFFER)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=self.sock)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        else:
            self.sock.close()

    # asyncio.DatagramProtocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._stats.shared_datagrams_in += 1
        address: Address = addr if len(addr) == 2 else (addr[0], addr[1])
        target = self.table.route(data, address)
        if isinstance(target, Drop):
            self._dropped(target, address, data)
            return
        target.datagram_received(data, address)

    def error_received(self, exc: Exception) -> None:
        # ICMP unreachable from a client that went away: no harm to anyone else.
        self._stats.shared_send_errors += 1
        self._notes.note("shared_socket_error", lambda: f"UDP {self.sockname[0]}:{self.sockname[1]}: {exc}")

    # connections

    def attach(self, connection: ShoalConnection) -> ShoalStunProtocol:
        if self._transport is None:
            raise ConnectionError(f"shared UDP socket {self.sockname} is not started")
        protocol = ShoalStunProtocol(connection, self)
        self.table.register(connection.local_username, protocol)
        protocol.connection_made(_MuxedTransport(self, protocol))
        return protocol

    def detach(self, protocol: ShoalStunProtocol) -> None:
        self.table.unregister(protocol)

    def send(self, protocol: ShoalStunProtocol, data: bytes | bytearray | memoryview, addr: Address) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        if data[:2] == b"\x00\x01":
            # Our own connectivity check: its answer will come back from there. Responses
            # (401s to forged requests included) vouch for nothing.
            self.table.learn(addr, protocol)
        self._transport.sendto(data, addr)

    def _dropped(self, reason: Drop, address: Address, data: bytes) -> None:
        self._stats.shared_dropped[reason.value] += 1
        where = f"{self.sockname[0]}:{self.sockname[1]}"
        self._notes.note(
            f"drop:{reason.value}",
            lambda: f"UDP {where}: dropped {len(data)}-byte datagram from {address[0]}:{address[1]}: {DROP_CAUSES[reason]}",
        )


# --- aioice subclasses -----------------------------------------------------------------


class ShoalStunProtocol(seam.StunProtocol):
    """aioice's per-socket protocol, also noting when the selected remote address was last heard."""

    def __init__(self, receiver: aioice.Connection, shared: SharedUdpSocket | None = None) -> None:
        super().__init__(receiver)
        self.shared = shared
        """The shared socket this protocol lives on (``--rtc-udp-port``), or None for its own socket."""
        self.watched: Address | None = None
        self.heard_at = 0.0

    def watch(self, address: Address) -> None:
        """``address`` is the selected one: note when it goes quiet; keep it bound on a shared socket."""
        self.watched = address
        self.heard_at = time.monotonic()
        if self.shared is not None:
            self.shared.table.pin(self, address)

    def vouch(self, address: Address) -> None:
        """A request from ``address`` passed MESSAGE-INTEGRITY: on a shared socket, bind it here."""
        if self.shared is not None:
            self.shared.table.learn(address, self)

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        watched = self.watched
        if watched is not None and addr[1] == watched[1] and addr[0] == watched[0]:
            self.heard_at = time.monotonic()
        super().datagram_received(data, addr)


def should_follow(use_candidate: bool, selected_silent_s: float) -> bool:
    """Switch the selected pair to an authenticated request's new address?

    A request that nominates (USE-CANDIDATE, as browsers send on their selected pair) is
    followed at once. Without it (aiortc's consent checks), only if the selected address
    has been silent long enough that the client evidently no longer sends from it.
    """
    return use_candidate or selected_silent_s >= REBIND_SILENCE_S


class ShoalConnection(aioice.Connection):
    """An aioice ``Connection`` that gathers the way the server's ``GatherPlan`` says."""

    def __init__(self, *, shoal_plan: GatherPlan, shoal_label: str = "a WebRTC peer", **kwargs: Any) -> None:
        if kwargs.get("local_username") is None:
            kwargs["local_username"] = secrets.token_hex(UFRAG_LENGTH // 2)
        super().__init__(**kwargs)
        self._plan = shoal_plan
        self._arrivals: deque[float] = deque()
        """Arrival time of each datagram in aioice's receive queue, in the same order."""
        self.overload_dropped = 0
        self.stream: Stream = shoal_plan.admission.register(shoal_label)
        """This connection's inbound media as the overload admission sees it (paused or read)."""
        self.fast_media: Callable[[bytes], bool] | None = None
        """Takes an SRTP datagram in this callback, or says False (``shoal.media.fast_audio``)."""

    async def close(self) -> None:
        self._plan.admission.unregister(self.stream)
        await super().close()

    # receiving: paused streams, then bounded by age and count -------------------------------

    def data_received(self, data: bytes, component: int) -> None:
        if len(data) < 2:
            return  # no DTLS record, SRTP or SRTCP packet is this short
        if 127 < data[0] < 192 and not is_rtcp(data):  # SRTP, as aiortc tells it from SRTCP (not DTLS or STUN)
            stream = self.stream
            stream.media_in += 1
            if stream.paused:
                stream.shed += 1
                self._plan.admission.shed_dropped += 1
                return
            fast = self.fast_media
            if fast is not None and not self._arrivals and self._plan.admission.calm:
                # Nothing queued ahead of it and the loop keeps up: handle it now, without two hops.
                if fast(data):
                    if self._plan.debug_media_cost_s:
                        _block_the_loop(self._plan.debug_media_cost_s)
                    return
        queue = seam.ice_datagram_queue(self)
        if queue.qsize() >= MAX_QUEUED_DATAGRAMS:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:  # pragma: no cover - qsize said otherwise
                pass
            else:
                if self._arrivals:
                    self._arrivals.popleft()
                self._shed()
        self._arrivals.append(time.monotonic())
        super().data_received(data, component)

    async def recvfrom(self) -> tuple[bytes, int]:
        while True:
            data, component = await super().recvfrom()
            arrived = self._arrivals.popleft() if self._arrivals else None
            if arrived is not None and 127 < data[0] < 192:
                age = time.monotonic() - arrived
                self._plan.admission.observe_media_age(age)
                if age > MEDIA_MAX_AGE_S and self._arrivals:  # a newer datagram waits: the last is always read
                    self._shed()
                    continue
                if self._plan.debug_media_cost_s:
                    _block_the_loop(self._plan.debug_media_cost_s)
            if self._arrivals:
                # A backlog: let the loop turn between datagrams, so one connection's burst
                # does not hold every other callback (a REST call, /health) for its whole length.
                await asyncio.sleep(0)
            return data, component

    def _shed(self) -> None:
        self.overload_dropped += 1
        self.stream.aged_out += 1
        self._plan.stats.overload_dropped += 1
        self._plan.notes.note("overload", "the event loop fell behind: media datagrams older than "
                              f"{MEDIA_MAX_AGE_S * 1000:.0f} ms are dropped unread (overload)")

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = 5
    ) -> list[aioice.Candidate]:
        """Host candidates on the plan's addresses (aioice's own ``addresses`` are ignored)."""
        plan = self._plan
        plan.stats.connections_gathered += 1
        candidates: list[aioice.Candidate] = []
        for address in plan.addresses:
            try:
                protocol = await self._open(component, address)
            except PortRangeExhausted as exc:
                plan.stats.port_range_exhausted += 1
                reason = f"WebRTC peer refused: {exc.strerror}"
                plan.notes.note("port_range_exhausted", reason)
                raise
            except (OSError, ValueError) as exc:
                plan.stats.bind_errors += 1
                problem = f"cannot gather on {address}: {exc}"
                plan.notes.note(f"bind:{address}", problem)
                continue
            bound = protocol.transport.get_extra_info("sockname")
            host = plan.announced(address)
            protocol.local_candidate = aioice.Candidate(
                foundation=aioice.candidate.candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=aioice.candidate.candidate_priority(component, "host"),
                host=host,
                port=bound[1],
                type="host",
            )
            seam.ice_protocols(self).append(protocol)
            candidates.append(protocol.local_candidate)
        if not candidates:
            raise ConnectionError(f"no host candidate could be gathered on {', '.join(plan.addresses)}")
        plan.stats.host_candidates += len(candidates)
        return candidates

    async def _open(self, component: int, address: str) -> seam.StunProtocol:
        plan = self._plan
        shared = plan.shared.get(address)
        if shared is not None:
            if component != 1:
                raise ValueError("the shared UDP port carries one ICE component per connection (rtcp-mux)")
            return shared.attach(self)
        if plan.port_range is not None:
            sock = bind_in_range(address, plan.port_range)
        else:
            sock = bind_udp(address, 0)
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(lambda: ShoalStunProtocol(self), sock=sock)
        _tune_buffers(sock, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
        return protocol

    def request_received(
        self, message: aioice.stun.Message, addr: tuple[str, int], protocol: seam.StunProtocol
    ) -> None:
        authenticated = (
            isinstance(protocol, ShoalStunProtocol) and not seam.ice_closing(self) and self._authenticated(message)
        )
        if authenticated:
            assert isinstance(protocol, ShoalStunProtocol)
            protocol.vouch(addr)  # before the answer is sent: the client's DTLS may follow at once
        super().request_received(message, addr, protocol)
        if authenticated and not seam.ice_closing(self):
            # A consent check from an address whose pair was validated earlier: the client
            # may have moved there while its selected address went quiet.
            selected = seam.ice_nominated(self).get(protocol.local_candidate.component)
            pair = next(
                (p for p in seam.ice_check_list(self) if p.protocol is protocol and p.remote_addr == addr
                 and p.state == seam.CandidatePair.State.SUCCEEDED),
                None,
            )
            if selected is not None and pair is not None and pair is not selected and pair.remote_addr != selected.remote_addr:
                self._maybe_follow(selected, pair)

    def check_complete(self, pair: seam.CandidatePair) -> None:
        component = pair.component
        before = seam.ice_nominated(self).get(component)
        super().check_complete(pair)
        if pair.state != seam.CandidatePair.State.SUCCEEDED or not isinstance(pair.protocol, ShoalStunProtocol):
            return
        if before is None:
            if seam.ice_nominated(self).get(component) is pair:
                pair.protocol.watch(pair.remote_addr)  # from now on, notice when the selected address goes quiet
            return
        if pair is before or pair.remote_addr == before.remote_addr or seam.ice_closing(self):
            return
        self._maybe_follow(before, pair)

    def _maybe_follow(self, selected: seam.CandidatePair, pair: seam.CandidatePair) -> None:
        """NAT rebinding: a check of a new address of the client has just succeeded; send there?

        aioice itself moves to a pair the client nominated (USE-CANDIDATE) once its check
        succeeds; a client that only sends consent checks (aiortc) is followed once its
        selected address has been silent for ``REBIND_SILENCE_S``. Never before the check
        succeeded: an address that did not answer is not the client's.
        """
        component = pair.component
        selected_protocol = selected.protocol
        if not isinstance(selected_protocol, ShoalStunProtocol):
            return
        if selected_protocol.watched != selected.remote_addr:
            selected_protocol.watch(selected.remote_addr)  # not watched yet: judge its silence from now on
        nominated = seam.ice_nominated(self).get(component) is pair or pair.remote_nominated
        if seam.ice_nominated(self).get(component) is not pair:
            if not should_follow(pair.remote_nominated, time.monotonic() - selected_protocol.heard_at):
                return
            pair.nominated = True
            seam.ice_nominated(self)[component] = pair
        assert isinstance(pair.protocol, ShoalStunProtocol)
        pair.protocol.watch(pair.remote_addr)
        old, new = selected.remote_addr, pair.remote_addr
        if nominated:
            self._plan.stats.nominations_followed += 1
            self._plan.events.note(
                "nominated",
                lambda: f"a WebRTC client nominated {new[0]}:{new[1]} instead of {old[0]}:{old[1]}; media follows",
            )
        else:
            self._plan.stats.rebinds_followed += 1
            self._plan.events.note(
                "rebind",
                lambda: f"a WebRTC client went silent at {old[0]}:{old[1]} and checks in from {new[0]}:{new[1]} "
                "(NAT rebinding); media follows",
            )

    def _authenticated(self, message: aioice.stun.Message) -> bool:
        username = message.attributes.get("USERNAME")
        return (
            message.message_method == aioice.stun.Method.BINDING
            and isinstance(username, str)
            and "MESSAGE-INTEGRITY" in message.attributes
            and seam.ice_valid_username(self, username)
            and message.check_message_integrity(self.local_password.encode("utf8"))
        )


def _block_the_loop(seconds: float) -> None:
    """Tests only (``--debug-media-cost-ms``): what expensive media processing does to the loop."""
    time.sleep(seconds)


# --- installing into aiortc ------------------------------------------------------------

_original_connection_kwargs: Callable[[list[RTCIceServer]], dict[str, Any]] | None = None


def _connection_kwargs(servers: list[RTCIceServer]) -> dict[str, Any]:
    assert _original_connection_kwargs is not None
    kwargs = _original_connection_kwargs(servers)
    if isinstance(servers, GatherIceServers):
        kwargs["shoal_plan"] = servers.plan
        kwargs["shoal_label"] = servers.label
    return kwargs


def _make_connection(**kwargs: Any) -> aioice.Connection:
    if "shoal_plan" in kwargs:
        return ShoalConnection(**kwargs)
    return aioice.Connection(**kwargs)


def install() -> None:
    """Check the internals, then route the server's gatherers to ``ShoalConnection`` (idempotent)."""
    global _original_connection_kwargs
    seam.check_internals()
    connection_kwargs, _ = seam.gatherer_hooks()
    if connection_kwargs is _connection_kwargs:
        return
    _original_connection_kwargs = connection_kwargs
    seam.set_gatherer_hooks(_connection_kwargs, _make_connection)


# --- TURN check ------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnCheck:
    ok: bool
    detail: str
    """``"relay 203.0.113.5:49152"``, ``"401 Unauthorized"``, ``"unreachable: ..."``."""
    rejected: bool = False
    """The server answered with an error (credentials), as opposed to not answering."""


async def turn_allocate(
    host: str, port: int, transport: str, tls: bool, username: str, credential: str, timeout_s: float = 10.0
) -> TurnCheck:
    """One TURN Allocate with these credentials, then release it."""
    try:
        relay_transport, _ = await asyncio.wait_for(
            aioice.turn.create_turn_endpoint(
                asyncio.DatagramProtocol,
                server_addr=(host, port),
                username=username,
                password=credential,
                ssl=tls,
                transport=transport,
            ),
            timeout_s,
        )
    except aioice.stun.TransactionFailed as exc:
        code = exc.response.attributes.get("ERROR-CODE", (0, "error"))
        return TurnCheck(False, f"{code[0]} {code[1]}", rejected=True)
    except (aioice.stun.TransactionTimeout, TimeoutError):
        return TurnCheck(False, "unreachable: no answer")
    except (OSError, ConnectionError) as exc:
        return TurnCheck(False, f"unreachable: {exc}")
    relayed = relay_transport.get_extra_info("sockname")
    relay_transport.close()
    return TurnCheck(True, f"relay {relayed[0]}:{relayed[1]}" if relayed else "allocated")
