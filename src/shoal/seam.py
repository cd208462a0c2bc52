"""The one module that touches aiortc's and aioice's private internals, checked at start-up.

Forwarding without re-encoding, the shared UDP port and the test instruments need things
aiortc and aioice have no public API for: sending a ready RTP packet on a sender's
transport, answering its NACKs and keyframe requests, keeping its sender reports truthful,
taking the jitter-buffer slot of a receiver, building aioice connections of our own for the
server's gatherers and reading their check list, and tapping packets in tests. Each such
access is a small function here; nothing else in shoal writes ``._name`` on an aiortc or
aioice object, patches their modules or subclasses aioice's internal classes except through
the names this module exports.

``check_internals()`` lists every one of those requirements. The server runs it when it
starts (``shoal.server.Shoal``, ``shoal.net.gathering.install``), and ``shoal serve`` exits 2 with
its message, naming what changed and the installed versions, instead of a call breaking
mid-way. aiortc and aioice are pinned to exact versions in pyproject.toml for the same reason.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import aioice
import aioice.candidate
import aioice.ice
import aioice.stun
import aioice.turn
import aiortc
import aiortc.codecs
import aiortc.rtcicetransport
import aiortc.rtcpeerconnection
import aiortc.rtcrtpreceiver
import pylibsrtp
from aiortc import (
    RTCCertificate,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceServer,
    RTCIceTransport,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.jitterbuffer import JitterBuffer

StunProtocol = aioice.ice.StunProtocol
"""aioice's per-socket protocol (not exported by aioice): ``shoal.net.ice`` subclasses it."""
CandidatePair = aioice.ice.CandidatePair
"""aioice's candidate pair (not exported by aioice): the check list ``ice_check_list`` returns."""

_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
_REMOTE_STREAMS = "_RTCRtpReceiver__remote_streams"
_SR_FIELDS = (
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
)
AsyncFn = Callable[..., Awaitable[Any]]


class SeamError(RuntimeError):
    """aiortc or aioice no longer have the shape shoal relies on."""


def versions() -> str:
    """The installed versions, as a refusal to start names them."""
    return f"aiortc {getattr(aiortc, '__version__', '?')} / aioice {getattr(aioice, '__version__', '?')}"


# senders ---------------------------------------------------------------------------------


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """The (media, RTX) SSRCs aiortc chose for this sender (announced in its SDP)."""
    raw: Any = sender
    return raw._ssrc, raw._rtx_ssrc


def take_over_rtcp(sender: RTCRtpSender, retransmit: Any, keyframe_requested: Any) -> None:
    """Answer the receiver's NACKs and PLI/FIR ourselves (aiortc would use its own encoder)."""
    setattr(sender, "_retransmit", retransmit)  # noqa: B010 - instance override of aiortc's method
    setattr(sender, "_send_keyframe", keyframe_requested)  # noqa: B010


async def send_rtp(sender: RTCRtpSender, data: bytes) -> None:
    """Send one serialized RTP packet on the sender's (DTLS-SRTP) transport."""
    transport: Any = sender.transport
    await transport._send_rtp(data)


def note_sent(sender: RTCRtpSender, ntp_time: int, rtp_timestamp: int, payload_bytes: int) -> None:
    """Keep the figures aiortc puts in this sender's RTCP sender reports truthful."""
    raw: Any = sender
    raw._RTCRtpSender__ntp_timestamp = ntp_time
    raw._RTCRtpSender__rtp_timestamp = rtp_timestamp
    raw._RTCRtpSender__octet_count += payload_bytes
    raw._RTCRtpSender__packet_count += 1


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """The MediaStream id the sender's m-line announces (aiortc shares one per connection)."""
    setattr(sender, "_stream_id", stream_id)  # noqa: B010


# receivers -------------------------------------------------------------------------------


async def request_keyframe(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Send PLI for ``media_ssrc`` to the publisher of this receiver."""
    raw: Any = receiver
    await raw._send_rtcp_pli(media_ssrc)


def install_tap(receiver: RTCRtpReceiver, tap: Any) -> bool:
    """Put ``tap`` where aiortc's receiver keeps its jitter buffer (False if aiortc changed)."""
    if not isinstance(getattr(receiver, _JITTER_BUFFER, None), JitterBuffer):
        return False
    setattr(receiver, _JITTER_BUFFER, tap)
    return True


def rtx_ssrc_pairs(receiver: RTCRtpReceiver) -> dict[int, int]:
    """RTX SSRC → media SSRC, the table aiortc unwraps RTX with (filled from a=ssrc-group lines)."""
    pairs: dict[int, int] = getattr(receiver, _RTX_SSRC)
    return pairs


# transceivers ----------------------------------------------------------------------------


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs aiortc negotiated on this m-line (read only)."""
    codecs: list[RTCRtpCodecParameters] = getattr(transceiver, "_codecs")  # noqa: B009
    return codecs


def common_codecs(kind: str, offered: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
    """The offered codecs aiortc would accept on an m-line of ``kind``, with the offer's payload types."""
    return aiortc.rtcpeerconnection.find_common_codecs(aiortc.codecs.CODECS[kind], offered)


def offered_direction(transceiver: RTCRtpTransceiver) -> str | None:
    """The direction the remote offer gave this m-line."""
    direction: str | None = getattr(transceiver, "_offerDirection")  # noqa: B009
    return direction


# ICE: aioice connections (shoal.net.gathering.ShoalConnection) and aiortc's gatherer -------------


def ice_protocols(connection: aioice.Connection) -> list[Any]:
    """The connection's per-socket protocols; a gathered one is appended here."""
    protocols: list[Any] = getattr(connection, "_protocols")  # noqa: B009
    return protocols


def ice_nominated(connection: aioice.Connection) -> dict[int, Any]:
    """Component → the selected (nominated) pair; writable, to move the selection."""
    nominated: dict[int, Any] = getattr(connection, "_nominated")  # noqa: B009
    return nominated


def ice_check_list(connection: aioice.Connection) -> list[Any]:
    """The connection's candidate pairs."""
    pairs: list[Any] = getattr(connection, "_check_list")  # noqa: B009
    return pairs


def ice_datagram_queue(connection: aioice.Connection) -> asyncio.Queue[Any]:
    """Where the connection queues received non-STUN datagrams (``data_received``) for ``recvfrom``."""
    queue: asyncio.Queue[Any] = getattr(connection, "_queue")  # noqa: B009
    return queue


def ice_closing(connection: aioice.Connection) -> bool:
    """The connection is being closed."""
    return bool(getattr(connection, "_closing"))  # noqa: B009


def ice_valid_username(connection: aioice.Connection, username: str) -> bool:
    """``username`` (a STUN USERNAME) names this connection's credentials."""
    valid: Callable[[str], bool] = getattr(connection, "_valid_username")  # noqa: B009
    return valid(username)


ConnectionKwargs = Callable[[list[RTCIceServer]], dict[str, Any]]
_hooked_connection: list[Callable[..., aioice.Connection]] = []


def gatherer_hooks() -> tuple[ConnectionKwargs, Callable[..., aioice.Connection]]:
    """What aiortc's ``RTCIceGatherer`` builds its aioice connection with: (kwargs of servers, class)."""
    module: Any = aiortc.rtcicetransport
    return module.connection_kwargs, module.Connection


def set_gatherer_hooks(connection_kwargs: ConnectionKwargs, make: Callable[..., aioice.Connection]) -> None:
    """Make every ``RTCIceGatherer`` built from now on call ``make(**connection_kwargs(servers))``."""
    module: Any = aiortc.rtcicetransport
    module.connection_kwargs = connection_kwargs
    module.Connection = make
    _hooked_connection[:] = [make]


class _CountingSrtp:
    """An inbound SRTP session that reports each packet it refuses (forged, corrupted, replayed)."""

    __slots__ = ("_session", "_refused")

    def __init__(self, session: Any, refused: Callable[[], None]) -> None:
        self._session = session
        self._refused = refused

    def unprotect(self, data: bytes) -> bytes:
        return self._counted(self._session.unprotect, data)

    def unprotect_rtcp(self, data: bytes) -> bytes:
        return self._counted(self._session.unprotect_rtcp, data)

    def _counted(self, unprotect: Callable[[bytes], bytes], data: bytes) -> bytes:
        try:
            return unprotect(data)
        except pylibsrtp.Error:
            self._refused()
            raise


def count_srtp_refusals(transport: RTCDtlsTransport, refused: Callable[[], None]) -> None:
    """Have ``refused()`` called for each inbound packet SRTP refuses (aiortc drops them silently).

    Call once DTLS is connected: the session exists only then (before, this does nothing).
    """
    raw: Any = transport
    session = getattr(raw, "_rx_srtp", None)
    if session is not None and not isinstance(session, _CountingSrtp):
        raw._rx_srtp = _CountingSrtp(session, refused)


def rx_srtp(transport: RTCDtlsTransport) -> Any | None:
    """The transport's inbound SRTP session (None until DTLS is connected); ``unprotect(bytes)``."""
    return getattr(transport, "_rx_srtp", None)


def receiver_stream_statistics(receiver: RTCRtpReceiver, ssrc: int) -> Any | None:
    """The receiver's statistics of the remote stream ``ssrc`` (its RTCP reports), once a packet made them."""
    streams: dict[int, Any] = getattr(receiver, _REMOTE_STREAMS)
    return streams.get(ssrc)


def dtls_ice_connection(transport: RTCDtlsTransport) -> aioice.Connection:
    """The aioice connection under a DTLS transport."""
    connection: aioice.Connection = getattr(transport.transport, "_connection")  # noqa: B009
    return connection


# test instruments (shoal.testing.rtp, shoal.testing.peer) -----------------------------------


def hook_dtls_transport(transport: RTCDtlsTransport, send_rtp: AsyncFn, handle_rtp_data: AsyncFn) -> tuple[AsyncFn, AsyncFn]:
    """Replace the transport's RTP send and receive steps (before SRTP); returns the originals."""
    raw: Any = transport
    originals = raw._send_rtp, raw._handle_rtp_data
    setattr(transport, "_send_rtp", send_rtp)  # noqa: B010
    setattr(transport, "_handle_rtp_data", handle_rtp_data)  # noqa: B010
    return originals


def hook_ice_recv(transport: RTCIceTransport, recv: AsyncFn) -> AsyncFn:
    """Replace the ICE transport's datagram read (under DTLS and SRTP); returns the original."""
    original: AsyncFn = getattr(transport, "_recv")  # noqa: B009
    setattr(transport, "_recv", recv)  # noqa: B010
    return original


def ice_send(transport: RTCIceTransport) -> AsyncFn:
    """The ICE transport's datagram send (under DTLS and SRTP): bytes go out as they are."""
    send: AsyncFn = getattr(transport, "_send")  # noqa: B009
    return send


def hook_sender_rtcp(sender: RTCRtpSender, handle: AsyncFn) -> AsyncFn:
    """Replace the sender's handling of RTCP from the remote receiver; returns the original."""
    original: AsyncFn = getattr(sender, "_handle_rtcp_packet")  # noqa: B009
    setattr(sender, "_handle_rtcp_packet", handle)  # noqa: B010
    return original


def hook_receiver(receiver: RTCRtpReceiver, handle_rtp: AsyncFn, send_rtcp: AsyncFn) -> tuple[AsyncFn, AsyncFn]:
    """Replace the receiver's handling of decrypted RTP and its RTCP send; returns the originals."""
    raw: Any = receiver
    originals = raw._handle_rtp_packet, raw._send_rtcp
    setattr(receiver, "_handle_rtp_packet", handle_rtp)  # noqa: B010
    setattr(receiver, "_send_rtcp", send_rtcp)  # noqa: B010
    return originals


def rtp_router(transport: RTCDtlsTransport) -> Any:
    """The transport's RTP router (``payload_type_table``, ``ssrc_table``: which receiver gets a packet)."""
    return getattr(transport, "_rtp_router")  # noqa: B009


# start-up check --------------------------------------------------------------------------


def _build_media() -> tuple[Any, Any, Any]:
    """A real sender, receiver and transceiver, without sockets (the constructors need a loop)."""

    def build() -> tuple[Any, Any, Any]:
        transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
        sender = RTCRtpSender("audio", transport)
        receiver = RTCRtpReceiver("audio", transport)
        return sender, receiver, RTCRtpTransceiver("audio", receiver, sender)

    async def build_in_loop() -> tuple[Any, Any, Any]:
        return build()

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # at start-up, before the server's loop: a private one, left as it was
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(build_in_loop())
        finally:
            loop.close()
    return build()


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (AttributeError, OSError, TypeError):
        return ""


def _media_problems() -> list[str]:
    problems: list[str] = []

    def need(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    try:
        sender, receiver, transceiver = _build_media()
    except Exception as exc:  # the constructors themselves changed
        return [f"cannot build a sender/receiver without sockets: {exc}"]
    for name in ("_ssrc", "_rtx_ssrc", "_stream_id"):
        need(isinstance(getattr(sender, name, None), int | str), f"RTCRtpSender.{name}")
    for name in _SR_FIELDS:
        need(hasattr(sender, name), f"RTCRtpSender keeps {name.removeprefix('_RTCRtpSender')}")
    for name in ("_retransmit", "_send_keyframe", "_handle_rtcp_packet"):
        need(callable(getattr(RTCRtpSender, name, None)), f"RTCRtpSender.{name}()")
    need(callable(getattr(RTCDtlsTransport, "_send_rtp", None)), "RTCDtlsTransport._send_rtp()")
    need(callable(getattr(RTCRtpReceiver, "_send_rtcp_pli", None)), "RTCRtpReceiver._send_rtcp_pli()")
    need(isinstance(getattr(receiver, _JITTER_BUFFER, None), JitterBuffer), "RTCRtpReceiver keeps its JitterBuffer")
    need(isinstance(getattr(receiver, _RTX_SSRC, None), dict), "RTCRtpReceiver keeps __rtx_ssrc")
    need(isinstance(getattr(receiver, _REMOTE_STREAMS, None), dict)
         and callable(getattr(aiortc.rtcrtpreceiver.StreamStatistics, "add", None)),
         "RTCRtpReceiver keeps __remote_streams of StreamStatistics")
    for name in ("_handle_rtp_packet", "_send_rtcp"):
        need(callable(getattr(RTCRtpReceiver, name, None)), f"RTCRtpReceiver.{name}()")
    need(callable(getattr(RTCDtlsTransport, "_handle_rtp_data", None)), "RTCDtlsTransport._handle_rtp_data()")
    need(hasattr(sender.transport, "_rx_srtp"), "RTCDtlsTransport._rx_srtp")
    need(isinstance(getattr(sender.transport.transport, "_connection", None), aioice.Connection),
         "RTCIceTransport._connection")
    need(all(callable(getattr(pylibsrtp.Session, name, None)) for name in ("unprotect", "unprotect_rtcp"))
         and isinstance(getattr(pylibsrtp, "Error", None), type), "pylibsrtp.Session.unprotect(), unprotect_rtcp(), Error")
    router = getattr(sender.transport, "_rtp_router", None)
    need(isinstance(getattr(router, "payload_type_table", None), dict)
         and isinstance(getattr(router, "ssrc_table", None), dict), "RTCDtlsTransport._rtp_router tables")
    need(callable(getattr(sender.transport.transport, "_recv", None)), "RTCIceTransport._recv()")
    need(_source(RTCIceTransport).count("self._send = ") == 1, "RTCIceTransport._send")
    need(isinstance(getattr(transceiver, "_codecs", None), list), "RTCRtpTransceiver._codecs")
    need(hasattr(transceiver, "_offerDirection"), "RTCRtpTransceiver._offerDirection")
    need(callable(getattr(aiortc.rtcpeerconnection, "find_common_codecs", None))
         and isinstance(getattr(aiortc.codecs, "CODECS", None), dict), "aiortc.rtcpeerconnection.find_common_codecs()")
    return problems


def _ice_problems() -> list[str]:
    problems: list[str] = []

    def need(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    module = aiortc.rtcicetransport
    connection_cls = getattr(module, "Connection", None)
    need(connection_cls is aioice.Connection or connection_cls in _hooked_connection,
         "aiortc.rtcicetransport.Connection is aioice.Connection")
    need(callable(getattr(module, "connection_kwargs", None)), "aiortc.rtcicetransport.connection_kwargs()")
    gatherer_init = _source(RTCIceGatherer.__init__)
    need("connection_kwargs(iceServers)" in gatherer_init and "Connection(" in gatherer_init,
         "RTCIceGatherer.__init__ builds Connection(**connection_kwargs(iceServers))")
    conn = aioice.Connection
    for name, params in (
        ("get_component_candidates", ["component", "addresses", "timeout"]),
        ("request_received", ["message", "addr", "protocol"]),
        ("_find_pair", ["protocol", "remote_candidate"]),
        ("_valid_username", ["username"]),
        ("check_complete", ["pair"]),
        ("data_received", ["data", "component"]),
        ("recvfrom", []),
    ):
        method = getattr(conn, name, None)
        need(method is not None and list(inspect.signature(method).parameters)[1:] == params,
             f"aioice.Connection.{name}({', '.join(params)})")
    init_source = _source(conn.__init__)
    for attribute in ("self._nominated", "self._protocols", "self._remote_candidates", "self._closing",
                      "self._check_list", "self._queue"):
        need(attribute in init_source, f"aioice.Connection keeps {attribute}")
    need("self._queue.put_nowait((data, component))" in _source(getattr(conn, "data_received", None)),
         "Connection.data_received queues (data, component)")
    need("self.recvfrom()" in _source(getattr(conn, "recv", None)), "Connection.recv reads through recvfrom()")
    need("get_component_candidates(" in _source(getattr(conn, "gather_candidates", None)),
         "Connection.gather_candidates calls get_component_candidates")
    pair_source = _source(getattr(CandidatePair, "__init__", None))
    for attribute in ("self.nominated", "self.remote_nominated", "self.state", "self.protocol"):
        need(attribute in pair_source, f"aioice CandidatePair keeps {attribute}")
    need(hasattr(getattr(CandidatePair, "State", None), "SUCCEEDED"), "CandidatePair.State.SUCCEEDED")
    need(hasattr(CandidatePair, "remote_addr"), "CandidatePair.remote_addr")
    need(callable(getattr(StunProtocol, "datagram_received", None))
         and callable(getattr(StunProtocol, "connection_made", None)), "StunProtocol datagram/connection callbacks")
    need(callable(getattr(aioice.stun.Message, "check_message_integrity", None)), "stun.Message.check_message_integrity")
    need(isinstance(getattr(aioice.turn, "UDP_SOCKET_BUFFER_SIZE", None), int), "aioice.turn.UDP_SOCKET_BUFFER_SIZE")
    need(callable(getattr(aioice.candidate, "candidate_foundation", None))
         and callable(getattr(aioice.candidate, "candidate_priority", None)), "aioice.candidate foundation/priority")
    need(callable(getattr(aioice.turn, "create_turn_endpoint", None)), "aioice.turn.create_turn_endpoint")
    need(hasattr(aioice.stun, "TransactionFailed") and hasattr(aioice.stun, "TransactionTimeout"),
         "aioice.stun.TransactionFailed/TransactionTimeout")
    return problems


def check_internals() -> None:
    """Raise ``SeamError`` naming every internal of aiortc/aioice shoal relies on that is not as expected."""
    problems = _media_problems() + _ice_problems()
    if problems:
        raise SeamError(
            f"{versions()} differ from what shoal relies on (shoal.seam); "
            f"pin the versions in pyproject.toml or update shoal.seam: {'; '.join(problems)}"
        )
