"""AudioFastPath without sockets: real SRTP sessions, hundreds of thousands of packets, every refusal.

The path takes a learnt stream's SRTP datagrams before aiortc sees them, so it must never
consume one it then cannot deliver: a datagram it declines (unknown SSRC, another payload
type, a forwarded track, no session yet) must still unprotect afterwards on aiortc's path.
"""

from __future__ import annotations

import os
import random
from typing import Any

import pylibsrtp
import pytest
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RtpPacket

from shoal.media.fast_audio import AudioFastPath, FastRoute, parse_rtp
from shoal.tally import Tally

KEY = os.urandom(30)
SSRC = 0x1234ABCD
OPUS_PT = 111


def sessions() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    outbound = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    inbound = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    return outbound, inbound


def rtp(seq: int, payload: bytes, ssrc: int = SSRC, pt: int = OPUS_PT, timestamp: int | None = None) -> bytes:
    ts = (seq * 960) & 0xFFFFFFFF if timestamp is None else timestamp
    return RtpPacket(payload_type=pt, sequence_number=seq & 0xFFFF, timestamp=ts, ssrc=ssrc, payload=payload).serialize()


class Taken:
    def __init__(self) -> None:
        self.packets: list[tuple[int, int, bytes]] = []
        self.count = 0

    def add(self, packet: Any) -> tuple[bool, None]:
        self.count += 1
        if len(self.packets) < 1000:
            self.packets.append((packet.sequence_number, packet.timestamp, packet.payload))
        return False, None


def path_with_route(inbound: Any, forwarded: list[bool] | None = None) -> tuple[AudioFastPath, Taken, StreamStatistics, Tally]:
    tally = Tally()
    path = AudioFastPath(lambda: inbound, tally)
    taken, statistics = Taken(), StreamStatistics(48000)
    flag = forwarded if forwarded is not None else [False]
    path.learn(SSRC, FastRoute(OPUS_PT, taken.add, statistics, lambda: flag[0], owner=taken))
    return path, taken, statistics, tally


def test_300000_packets_across_sequence_and_timestamp_wraps_arrive_whole_and_feed_the_statistics() -> None:
    outbound, inbound = sessions()
    path, taken, statistics, tally = path_with_route(inbound)
    start = 65_000
    total = 300_000
    for n in range(total):
        seq = start + n
        payload = bytes([n & 0xFF]) * (20 + n % 60)
        assert path(outbound.protect(rtp(seq, payload, timestamp=(0xFFFF0000 + seq * 960) & 0xFFFFFFFF)))
    assert taken.count == total == tally.rtp_fast_path
    seq0, ts0, payload0 = taken.packets[0]
    assert (seq0, ts0, payload0) == (start & 0xFFFF, (0xFFFF0000 + start * 960) & 0xFFFFFFFF, bytes([0]) * 20)
    assert statistics.packets_received == total
    assert statistics.packets_lost == 0
    assert statistics.cycles == 4 << 16 or statistics.cycles == 5 << 16  # 300,000 numbers from 65,000: 4–5 wraps


def test_declined_datagrams_are_left_untouched_for_aiortc() -> None:
    """Unknown SSRC, another payload type (telephone events), a forwarded track, no session yet:
    the path says False and the very same datagram still unprotects on aiortc's way."""
    outbound, inbound = sessions()
    forwarded = [False]
    path, taken, _, _ = path_with_route(inbound, forwarded)
    other_ssrc = outbound.protect(rtp(1, b"x" * 30, ssrc=SSRC + 1))
    dtmf = outbound.protect(rtp(2, b"\x05\x0a\x00\xa0", pt=126))
    assert not path(other_ssrc) and not path(dtmf)
    forwarded[0] = True
    while_forwarded = outbound.protect(rtp(3, b"y" * 30))
    assert not path(while_forwarded)
    forwarded[0] = False
    no_session = AudioFastPath(lambda: None)
    no_session.learn(SSRC, FastRoute(OPUS_PT, taken.add, None, lambda: False, owner=taken))
    later = outbound.protect(rtp(4, b"z" * 30))
    assert not no_session(later)
    assert not path(b"\x80" * 11)  # shorter than an RTP header
    for datagram in (other_ssrc, dtmf, while_forwarded, later):
        inbound.unprotect(datagram)  # not consumed: replay protection would refuse a second unprotect
    assert taken.count == 0
    assert path(outbound.protect(rtp(5, b"w" * 30))) and taken.count == 1


def test_forged_replayed_and_malformed_packets_are_dropped_and_the_stream_goes_on() -> None:
    outbound, inbound = sessions()
    path, taken, _, tally = path_with_route(inbound)
    good = outbound.protect(rtp(10, b"a" * 40))
    assert path(good)
    assert path(good)  # a replay: refused by SRTP, taken (so aiortc does not count it twice), not delivered
    forged = bytearray(outbound.protect(rtp(11, b"b" * 40)))
    forged[20] ^= 0xFF
    assert path(bytes(forged))
    # Authentic SRTP whose RTP header lies: more padding than the packet holds (libsrtp itself
    # refuses CSRC and extension lengths past the end).
    lying = bytearray(rtp(12, b"c" * 8))
    lying[0] |= 0x20
    lying[-1] = 200
    assert path(outbound.protect(bytes(lying)))
    assert tally.rtp_malformed == 1
    assert taken.count == 1
    assert path(outbound.protect(rtp(13, b"d" * 40)))
    assert taken.count == 2 and taken.packets[-1][0] == 13


def test_learning_a_new_stream_forgets_the_old_one_and_forget_removes_it() -> None:
    outbound, inbound = sessions()
    path, taken, _, _ = path_with_route(inbound)
    path.learn(SSRC + 7, FastRoute(OPUS_PT, taken.add, None, lambda: False, owner=taken))
    assert path.knows(SSRC + 7, taken) and not path.knows(SSRC, taken)
    assert not path(outbound.protect(rtp(1, b"a" * 10)))
    path.forget(taken)
    assert path.streams == 0
    assert not path(outbound.protect(rtp(2, b"a" * 10, ssrc=SSRC + 7)))


@pytest.mark.parametrize("seed", range(4))
def test_the_header_is_read_as_aiortc_reads_it_with_csrcs_extensions_and_padding(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(5_000):
        csrcs = [rng.getrandbits(32) for _ in range(rng.randrange(0, 4))]
        payload = rng.randbytes(rng.randrange(1, 200))
        packet = RtpPacket(
            payload_type=rng.randrange(128), marker=rng.randrange(2), sequence_number=rng.randrange(1 << 16),
            timestamp=rng.getrandbits(32), ssrc=rng.getrandbits(32), payload=payload,
        )
        packet.csrc = csrcs
        data = bytearray(packet.serialize())
        if rng.random() < 0.5:  # an extension block of 1–3 words (a profile aiortc does not look into)
            words = rng.randrange(1, 4)
            data[0] |= 0x10
            start = 12 + 4 * len(csrcs)
            data[start:start] = b"\x12\x34" + words.to_bytes(2, "big") + rng.randbytes(4 * words)
        if rng.random() < 0.3:
            pad = rng.randrange(1, 17)
            data[0] |= 0x20
            data += bytes(pad - 1) + bytes([pad])
        header = parse_rtp(bytes(data))
        parsed = RtpPacket.parse(bytes(data))
        assert header is not None
        pt, marker, seq, ts, start, end = header
        assert (pt, marker, seq, ts) == (parsed.payload_type, parsed.marker, parsed.sequence_number, parsed.timestamp)
        assert bytes(data[start:end]) == parsed.payload == payload


def test_headers_that_do_not_parse_are_refused() -> None:
    good = rtp(1, b"abc")
    assert parse_rtp(good) is not None
    assert parse_rtp(good[:11]) is None
    assert parse_rtp(bytes([0x40]) + good[1:]) is None  # version 1
    many_csrcs = bytes([0x8F]) + good[1:]  # 15 CSRCs claimed, none there
    assert parse_rtp(many_csrcs) is None
    padded = bytearray(good)
    padded[0] |= 0x20
    padded[-1] = 200  # more padding than the packet holds
    assert parse_rtp(bytes(padded)) is None
