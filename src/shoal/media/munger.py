"""Per-receiver RTP numbering: one continuous outbound stream from a publisher's packets.

A forwarder sends one publisher's track to one receiver under its own SSRC, so it must
renumber: the receiver joins mid-stream, the publisher may restart with a new SSRC (or
jump its sequence numbers), and none of that may show as a gap or a step back. The
``RtpMunger`` keeps that mapping on extended (never-wrapping) numbers, so it holds for a
call of any length (the idea of livekit's ``rtpmunger.go`` and mediasoup's ``SeqManager``;
our own code). The ``SendHistory`` answers a receiver's NACK with the packet it means, and
never with one sent a whole sequence-number wrap earlier. Both are pure: the caller hands
in the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from shoal.media.seqnum import nearest_extension, seq_unwrapper, timestamp_unwrapper

MAX_DROPOUT = 3000
"""A forward jump of more sequence numbers than this is not loss but a new numbering (RFC 3550 A.1)."""

MAX_MISORDER = 1500
"""A packet this far behind the newest is late (a retransmission, reordering); further behind, a new
numbering. RFC 3550 A.1 suggests 100; mediasoup uses 1500, which keeps late resends of a big
video keyframe from looking like a jump."""

RESTART_GAP_S = 0.02
"""The least time a restarted stream's first timestamp moves on from the previous stream's last one."""


@dataclass(frozen=True)
class Rewritten:
    """Where one inbound packet goes in the outbound stream."""

    sequence_number: int
    timestamp: int
    extended_seq: int


class RtpMunger:
    """Maps inbound (SSRC, sequence number, timestamp) to one continuous outbound numbering.

    ``start`` anchors a stream on its first packet (for video, the caller waits for a
    keyframe first): its packet gets the next outbound number, its timestamp moves on from
    the previous stream's last by the wall-clock time in between. After that ``rewrite``
    maps every packet by fixed offsets on extended numbers and drops what cannot go out:
    packets reordered from before the start, and packets of a sequence-number jump until a
    second packet confirms it (RFC 3550 A.1); a confirmed jump ends ``started`` and the
    caller starts again on it.
    """

    def __init__(self, first_seq: int, first_timestamp: int, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.started = False
        self._seq_in = seq_unwrapper()
        self._ts_in = timestamp_unwrapper()
        self._next_seq = first_seq  # extended outbound numbers
        self._next_ts = first_timestamp
        self._highest_out: int | None = None
        self._highest_ts = first_timestamp
        self._highest_at = 0.0
        self._start_in = 0
        self._newest_in = 0
        self._seq_offset = 0
        self._ts_offset = 0
        self._bad_seq: int | None = None
        # counters
        self.before_start = 0
        self.jumps = 0
        self.jump_dropped = 0

    @property
    def highest_extended(self) -> int | None:
        """The newest outbound number sent so far (extended), or None."""
        return self._highest_out

    def restart(self) -> None:
        """A new inbound stream (another SSRC): the next ``start`` continues after the last packet."""
        self.started = False
        self._seq_in.reset()
        self._ts_in.reset()
        self._bad_seq = None

    def start(self, seq: int, timestamp: int, now: float) -> Rewritten:
        """Anchor the inbound stream on this packet and return its outbound numbers."""
        if self._highest_out is not None:
            self._next_seq = self._highest_out + 1
            step = max(RESTART_GAP_S, now - self._highest_at) * self.clock_rate
            self._next_ts = self._highest_ts + int(step)
        self._seq_in.reset()
        self._ts_in.reset()
        ext_in = self._seq_in.unwrap(seq)
        ext_ts = self._ts_in.unwrap(timestamp)
        self._start_in = self._newest_in = ext_in
        self._seq_offset = self._next_seq - ext_in
        self._ts_offset = self._next_ts - ext_ts
        self._bad_seq = None
        self.started = True
        return self._out(ext_in, ext_ts, now)

    def rewrite(self, seq: int, timestamp: int, now: float) -> Rewritten | None:
        """The outbound numbers of a packet of the started stream, or None to drop it."""
        assert self.started, "rewrite() before start()"
        ext_in = self._seq_in.peek(seq)
        ahead = ext_in - self._newest_in
        if ahead > MAX_DROPOUT or ahead < -MAX_MISORDER:
            self._jump(seq)
            return None
        self._bad_seq = None
        self._seq_in.unwrap(seq)
        if ext_in < self._start_in:
            self.before_start += 1
            return None
        self._newest_in = max(self._newest_in, ext_in)
        return self._out(ext_in, self._ts_in.unwrap(timestamp), now)

    def _jump(self, seq: int) -> None:
        """A packet far from the stream: drop it, unless it follows the previous such packet."""
        if self._bad_seq is not None and seq == self._bad_seq:
            self.jumps += 1
            self.restart()  # confirmed: the caller starts anew on this packet
            return
        self._bad_seq = (seq + 1) & 0xFFFF
        self.jump_dropped += 1

    def _out(self, ext_in: int, ext_ts: int, now: float) -> Rewritten:
        ext_out = ext_in + self._seq_offset
        ts_out = ext_ts + self._ts_offset
        if self._highest_out is None or ext_out > self._highest_out:
            self._highest_out = ext_out
            self._highest_ts = ts_out
            self._highest_at = now
        return Rewritten(ext_out & 0xFFFF, ts_out & 0xFFFFFFFF, ext_out)


T = TypeVar("T")


class SendHistory(Generic[T]):
    """The last ``size`` packets sent, by extended sequence number, to answer NACKs.

    A NACK names a 16-bit number; it is read as the packet with that number nearest to the
    newest sent (never one a wrap older; a number after the newest was never sent), and
    answered only if that very packet is still kept and was sent at most ``max_age``
    seconds ago (an older resend would reach the receiver
    after its jitter buffer gave up on it, as mediasoup's retransmission limit assumes).
    """

    def __init__(self, size: int, max_age: float) -> None:
        self.size = size
        self.max_age = max_age
        self._slots: list[tuple[int, float, T] | None] = [None] * size
        self._newest: int | None = None
        self.too_old = 0
        self.unknown = 0

    def add(self, extended_seq: int, sent_at: float, item: T) -> None:
        self._slots[extended_seq % self.size] = (extended_seq, sent_at, item)
        if self._newest is None or extended_seq > self._newest:
            self._newest = extended_seq

    def get(self, seq: int, now: float) -> T | None:
        """The packet a NACK for 16-bit ``seq`` means, or None if it is gone or stale."""
        if self._newest is None:
            self.unknown += 1
            return None
        wanted = nearest_extension(seq, self._newest)
        slot = self._slots[wanted % self.size]
        if wanted > self._newest or slot is None or slot[0] != wanted:
            self.unknown += 1
            return None
        if now - slot[1] > self.max_age:
            self.too_old += 1
            return None
        return slot[2]
