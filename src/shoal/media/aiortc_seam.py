"""The one place the media plane touches aiortc's private internals, checked at start-up.

Forwarding without re-encoding needs things aiortc has no public API for: sending a
ready RTP packet on a sender's transport, answering its NACKs and keyframe requests,
keeping its sender reports truthful, asking a receiver's publisher for a keyframe,
taking the jitter-buffer slot of a receiver, and narrowing a transceiver's codecs.
Every such access goes through a function here, and ``check_internals()`` (run when the
server starts, next to the network seam's) builds a real sender, receiver and transceiver
without sockets and fails naming what changed, instead of a call breaking mid-way.
aiortc is pinned (``aiortc>=1.16,<1.17``) for the same reason.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiortc
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from shoal.net.aioice_seam import SeamError

_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_SR_FIELDS = (
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
)


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


# transceivers ----------------------------------------------------------------------------


def transceiver_codecs(transceiver: Any) -> list[RTCRtpCodecParameters]:
    """The codecs aiortc will negotiate on this m-line (after setRemoteDescription: the offer's)."""
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    return codecs


def set_transceiver_codecs(transceiver: Any, codecs: list[RTCRtpCodecParameters]) -> None:
    transceiver._codecs = codecs


def offered_direction(transceiver: Any) -> str | None:
    """The direction the remote offer gave this m-line."""
    direction: str | None = transceiver._offerDirection
    return direction


# start-up check --------------------------------------------------------------------------


def check_internals() -> None:
    """Raise ``SeamError`` naming each internal of aiortc the media plane relies on that is missing."""
    from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCRtpTransceiver

    problems: list[str] = []

    def need(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    def build() -> tuple[Any, Any, Any]:  # aiortc's constructors call asyncio.get_event_loop()
        transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
        sender = RTCRtpSender("audio", transport)
        receiver = RTCRtpReceiver("audio", transport)
        return sender, receiver, RTCRtpTransceiver("audio", receiver, sender)

    async def build_in_loop() -> tuple[Any, Any, Any]:
        return build()

    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # at start-up, before the server's loop: a private one, left as it was
            loop = asyncio.new_event_loop()
            try:
                sender, receiver, transceiver = loop.run_until_complete(build_in_loop())
            finally:
                loop.close()
        else:
            sender, receiver, transceiver = build()
    except Exception as exc:  # the constructors themselves changed
        raise SeamError(f"aiortc {aiortc.__version__}: cannot build a sender/receiver without sockets: {exc}") from exc
    for name in ("_ssrc", "_rtx_ssrc", "_stream_id"):
        need(isinstance(getattr(sender, name, None), int | str), f"RTCRtpSender.{name}")
    for name in _SR_FIELDS:
        need(hasattr(sender, name), f"RTCRtpSender keeps {name.removeprefix('_RTCRtpSender')}")
    for name in ("_retransmit", "_send_keyframe"):
        need(callable(getattr(RTCRtpSender, name, None)), f"RTCRtpSender.{name}()")
    need(callable(getattr(RTCDtlsTransport, "_send_rtp", None)), "RTCDtlsTransport._send_rtp()")
    need(callable(getattr(RTCRtpReceiver, "_send_rtcp_pli", None)), "RTCRtpReceiver._send_rtcp_pli()")
    need(isinstance(getattr(receiver, _JITTER_BUFFER, None), JitterBuffer), "RTCRtpReceiver keeps its JitterBuffer")
    need(isinstance(getattr(transceiver, "_codecs", None), list), "RTCRtpTransceiver._codecs")
    need(hasattr(transceiver, "_offerDirection"), "RTCRtpTransceiver._offerDirection")
    if problems:
        raise SeamError(
            f"aiortc {aiortc.__version__} differs from what shoal's media seam "
            f"(shoal.media.aiortc_seam) relies on: {'; '.join(problems)}"
        )

