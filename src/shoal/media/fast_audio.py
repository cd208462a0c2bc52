"""AudioFastPath: a participant's audio for agents handled in the datagram's own callback.

Through aiortc each SRTP datagram takes two scheduling hops (aioice's receive queue, then
the DTLS transport's task), is parsed into an ``RtpPacket`` with its header extensions and
routed through the receiver's coroutine before it reaches the decoder: about a third of the
server's time per packet when the packet's only listeners are agents. This path takes such
a datagram in ``ShoalConnection.data_received`` instead: SRTP unprotect (the transport's own
session, so replay protection and refusal counting are unchanged), the fixed RTP header read
in place, the receiver's RTCP statistics fed as aiortc would, and the packet handed to the
track's ``RtpTap`` — the same call aiortc makes, so ordering, stale and loss accounting stay
in one place.

What it takes is narrow, and everything else goes aiortc's way:

* only streams it has learnt: a tap tells it the SSRC and payload type of its stream once
  aiortc delivered the first packet (``learn``), so routing, the codec check and the
  receiver's statistics exist by then; a new SSRC goes through aiortc once again;
* only that payload type (telephone events on the same SSRC go through aiortc);
* only while the track has no forwarders (WebRTC receivers want aiortc's ``RtpPacket``);
* only while the loop keeps up and the queue ahead of it is empty (``ShoalConnection``
  decides): under overload the queue, with its age bound and the admission, does the work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pylibsrtp

from shoal.tally import Tally

log = logging.getLogger(__name__)

RTP_HEADER = 12
RTP_VERSION = 2


@dataclass(slots=True)
class FastPacket:
    """What a tap and aiortc's receiver statistics read of an RTP packet."""

    ssrc: int
    payload_type: int
    sequence_number: int
    timestamp: int
    payload: bytes
    marker: int


@dataclass
class FastRoute:
    """One learnt stream: where its packets go."""

    payload_type: int
    add: Callable[[Any], Any]
    """The track's ``RtpTap.add``."""
    statistics: Any
    """aiortc's ``StreamStatistics`` of the stream (``add(packet)``), or None."""
    forwarded: Callable[[], bool]
    """True while WebRTC receivers forward the track (then aiortc parses the packet)."""
    owner: object
    """The tap that learnt it (``forget`` removes its routes)."""


def parse_rtp(data: bytes) -> tuple[int, int, int, int, int, int] | None:
    """(payload type, marker, sequence number, timestamp, payload start, payload end), or None if malformed."""
    size = len(data)
    if size < RTP_HEADER:
        return None
    first = data[0]
    if first >> 6 != RTP_VERSION:
        return None
    start = RTP_HEADER + 4 * (first & 0x0F)
    if first & 0x10:  # a header extension: 4 bytes, then its length in 32-bit words
        if size < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    end = size
    if first & 0x20:  # padding: the last byte says how much
        end -= data[-1]
    if start > end:
        return None
    second = data[1]
    return (
        second & 0x7F,
        second >> 7,
        int.from_bytes(data[2:4], "big"),
        int.from_bytes(data[4:8], "big"),
        start,
        end,
    )


class AudioFastPath:
    """Per peer connection (one bundled SRTP session): the streams taken before aiortc's queue."""

    def __init__(self, session: Callable[[], Any | None], tally: Tally | None = None) -> None:
        """``session()``: the DTLS transport's inbound SRTP session (None before DTLS connects)."""
        self._session = session
        self._tally = tally if tally is not None else Tally()
        self._routes: dict[int, FastRoute] = {}

    def learn(self, ssrc: int, route: FastRoute) -> None:
        """Take ``ssrc``'s packets from now on (the owner's previous stream, if any, is forgotten)."""
        self.forget(route.owner)
        self._routes[ssrc] = route

    def forget(self, owner: object) -> None:
        for ssrc in [ssrc for ssrc, route in self._routes.items() if route.owner is owner]:
            del self._routes[ssrc]

    def knows(self, ssrc: int, owner: object) -> bool:
        route = self._routes.get(ssrc)
        return route is not None and route.owner is owner

    @property
    def streams(self) -> int:
        return len(self._routes)

    def __call__(self, data: bytes) -> bool:
        """Handle one SRTP (not SRTCP) datagram; False: not ours, aiortc's path takes it untouched."""
        if len(data) < RTP_HEADER:
            return False
        route = self._routes.get(int.from_bytes(data[8:12], "big"))
        if route is None or data[1] & 0x7F != route.payload_type or route.forwarded():
            return False
        session = self._session()
        if session is None:
            return False
        try:
            plain = session.unprotect(data)
        except pylibsrtp.Error:
            return True  # refused (counted by the transport's counting session), as aiortc would drop it
        header = parse_rtp(plain)
        if header is None:
            self._tally.rtp_malformed += 1
            return True
        payload_type, marker, sequence, timestamp, start, end = header
        packet = FastPacket(int.from_bytes(plain[8:12], "big"), payload_type, sequence, timestamp, plain[start:end], marker)
        statistics = route.statistics
        if statistics is not None:
            statistics.add(packet)
        self._tally.rtp_fast_path += 1
        try:
            route.add(packet)
        except Exception:
            log.exception("handling an RTP packet inline failed")
        return True
