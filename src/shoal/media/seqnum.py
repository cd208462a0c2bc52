"""Extended RTP counters: 16-bit sequence numbers and 32-bit timestamps that never wrap.

RTP's counters wrap (a sequence number every 65,536 packets: 22 minutes of audio, a few of
video; a timestamp every 2^32 ticks: 13 hours at 90 kHz, and a random origin can put that
wrap anywhere in a call). Comparing raw values with serial-number arithmetic
(``uint16_gt``) only works for values less than half the range apart, so any order that
must hold for a whole call — "before this receiver started", "the newest packet sent",
"the packet this NACK means" — is kept on extended (rollover-counted) values instead, as
libwebrtc's ``SeqNumUnwrapper`` and mediasoup's ``SeqManager`` do. Pure; no I/O.
"""

from __future__ import annotations

SEQ_BITS = 16
TS_BITS = 32


class Unwrapper:
    """Turns a wrapping ``bits``-wide counter into an unbounded integer.

    Each value is placed at the extended position closest to the previous one (a step of
    less than half the range, forwards or backwards), so reordering and wraps in either
    direction keep their order. The first value is its own extension; values reordered
    from before it become negative, which is fine: only differences matter.
    """

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self._mod = 1 << bits
        self._half = 1 << (bits - 1)
        self.last: int | None = None
        """The extended value of the previous ``unwrap`` (None before the first)."""

    def peek(self, value: int) -> int:
        """The extension ``unwrap(value)`` would return, without moving the reference."""
        return value if self.last is None else nearest_extension(value, self.last, self.bits)

    def unwrap(self, value: int) -> int:
        """Extend ``value`` (0 ≤ value < 2^bits) and make it the reference for the next one."""
        if not 0 <= value < self._mod:
            raise ValueError(f"{value} is not a {self.bits}-bit counter value")
        self.last = self.peek(value)
        return self.last

    def reset(self) -> None:
        """Forget the reference (a new stream starts)."""
        self.last = None


def seq_unwrapper() -> Unwrapper:
    """An unwrapper for RTP sequence numbers."""
    return Unwrapper(SEQ_BITS)


def timestamp_unwrapper() -> Unwrapper:
    """An unwrapper for RTP timestamps."""
    return Unwrapper(TS_BITS)


def nearest_extension(value: int, reference: int, bits: int = SEQ_BITS) -> int:
    """The extended number closest to extended ``reference`` whose low ``bits`` equal ``value``.

    Less than half the range behind ``reference`` or up to half ahead: a receiver's NACK
    names a 16-bit number, and the packet it means is the one near the newest sent, never
    one a whole wrap older.
    """
    half = 1 << (bits - 1)
    return reference + (value - reference + half) % (1 << bits) - half
