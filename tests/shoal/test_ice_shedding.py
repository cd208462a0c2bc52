"""Overload shedding at the door: a connection's received media is dropped unread once it is late.

aioice queues every received datagram without bound; when the event loop falls behind, that
queue holds seconds of media, all of it decoded and forwarded late. ``ShoalConnection``
drops SRTP/SRTCP datagrams older than ``MEDIA_MAX_AGE_S`` when they are read and bounds the
queue, never DTLS. A real aioice connection (no sockets needed to queue and read).
"""

from __future__ import annotations

import asyncio

import pytest

from shoal import seam
from shoal.net import gathering
from shoal.net.gathering import MAX_QUEUED_DATAGRAMS, GatherPlan, ShoalConnection

SLACK_AGE_S = 0.5
"""The age bound in these tests: fresh datagrams have half a second to be read, even on a slow machine."""

SRTP = bytes([0x80, 111]) + bytes(30)
SRTCP = bytes([0x81, 200]) + bytes(30)
DTLS = bytes([22, 0xFE, 0xFD]) + bytes(30)


def connection() -> tuple[ShoalConnection, GatherPlan]:
    plan = GatherPlan(addresses=("127.0.0.1",))
    conn = ShoalConnection(shoal_plan=plan, ice_controlling=False)
    seam.ice_nominated(conn)[1] = object()  # recvfrom reads only once a pair is selected
    return conn, plan


async def drain(conn: ShoalConnection) -> list[bytes]:
    read = []
    while seam.ice_datagram_queue(conn).qsize():
        data, _ = await asyncio.wait_for(conn.recvfrom(), 1)
        read.append(data)
    return read


async def test_late_media_is_dropped_unread_and_dtls_and_fresh_media_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gathering, "MEDIA_MAX_AGE_S", SLACK_AGE_S)
    conn, plan = connection()
    for n in range(10):
        conn.data_received(SRTP[:-1] + bytes([n]), 1)
    conn.data_received(SRTCP, 1)
    conn.data_received(DTLS, 1)
    await asyncio.sleep(SLACK_AGE_S * 1.5)  # the loop "stalls": all of the above is now late
    fresh = [SRTP[:-1] + bytes([100 + n]) for n in range(5)]
    for datagram in fresh:
        conn.data_received(datagram, 1)
    read = await drain(conn)
    assert read == [DTLS, *fresh]
    assert conn.overload_dropped == plan.stats.overload_dropped == 11


async def test_when_everything_queued_is_late_the_newest_datagram_is_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gathering, "MEDIA_MAX_AGE_S", SLACK_AGE_S)
    conn, plan = connection()
    for n in range(10):
        conn.data_received(SRTP[:-1] + bytes([n]), 1)
    await asyncio.sleep(SLACK_AGE_S * 1.5)
    assert await drain(conn) == [SRTP[:-1] + bytes([9])]
    assert conn.overload_dropped == 9


async def test_a_stream_read_late_every_time_keeps_flowing_at_its_freshest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deep overload: every read comes after the age bound. The stream is thinned to its newest
    datagram per read, never starved (dropping them all delivered nothing: conversation.py at
    100 rooms got 0 % of the upstream)."""
    monkeypatch.setattr(gathering, "MEDIA_MAX_AGE_S", 0.01)
    conn, _ = connection()
    delivered = []
    for round_ in range(50):
        for n in range(5):
            conn.data_received(SRTP[:-2] + bytes([round_, n]), 1)
        await asyncio.sleep(0.02)
        delivered += await drain(conn)
    assert delivered == [SRTP[:-2] + bytes([round_, 4]) for round_ in range(50)]
    assert conn.overload_dropped == 50 * 4


async def test_media_read_in_time_is_never_dropped_over_300000_datagrams(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long call: the arrival bookkeeping stays in step with the queue and ends empty."""
    monkeypatch.setattr(gathering, "MEDIA_MAX_AGE_S", 60.0)  # bookkeeping, not timing, is under test
    conn, plan = connection()
    total = 0
    for _ in range(3000):
        for _n in range(100):
            conn.data_received(SRTP, 1)
        total += len(await drain(conn))
    assert total == 300_000 and conn.overload_dropped == 0
    assert len(conn._arrivals) == 0


async def test_the_queue_is_bounded_oldest_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gathering, "MEDIA_MAX_AGE_S", 60.0)  # the bound is under test, not the age check
    conn, plan = connection()
    for n in range(MAX_QUEUED_DATAGRAMS + 500):
        conn.data_received(n.to_bytes(4, "big").rjust(8, b"\x80"), 1)
    assert seam.ice_datagram_queue(conn).qsize() == MAX_QUEUED_DATAGRAMS
    assert conn.overload_dropped == 500
    first, _ = await conn.recvfrom()
    assert int.from_bytes(first[-4:], "big") == 500, "the oldest went first"


async def test_a_paused_connection_drops_srtp_on_receipt_and_keeps_srtcp_and_dtls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under sustained overload the newest senders are paused (``shoal.net.admission``): their
    SRTP never reaches the queue, while SRTCP and DTLS do; nothing is lost for the others."""
    # The 300 000 datagrams take a while on a slow machine; the age check is not what is under test.
    monkeypatch.setattr(gathering, "MEDIA_MAX_AGE_S", 60.0)
    conn, plan = connection()
    other, _ = connection()
    conn.stream.paused = True
    for n in range(300_000):
        conn.data_received(SRTP, 1)
        if n % 1000 == 0:
            conn.data_received(SRTCP, 1)
            conn.data_received(DTLS, 1)
            other.data_received(SRTP, 1)
    assert await drain(conn) == [SRTCP, DTLS] * 300
    assert len(await drain(other)) == 300
    assert conn.stream.media_in == conn.stream.shed == plan.admission.shed_dropped == 300_000
    assert conn.overload_dropped == 0 and len(conn._arrivals) == 0
    conn.stream.paused = False
    conn.data_received(SRTP, 1)
    assert await drain(conn) == [SRTP], "resumed: read again"


async def test_a_closed_connection_leaves_the_admission_and_runts_are_ignored() -> None:
    conn, plan = connection()
    assert list(plan.admission.streams.values()) == [conn.stream]
    conn.data_received(b"", 1)
    conn.data_received(b"\x80", 1)
    assert seam.ice_datagram_queue(conn).qsize() == 0
    await conn.close()
    assert plan.admission.streams == {}


async def test_a_queued_burst_lets_other_callbacks_run_between_its_datagrams(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst (a sender's backlog after a stall) is read one datagram per loop turn: a REST call
    or ``/health`` waits for one datagram's work, not the whole burst's. The newest is read
    without a turn of its own (nothing waits behind it), which shows the turns are the backlog's."""
    monkeypatch.setattr(gathering, "MEDIA_MAX_AGE_S", SLACK_AGE_S)
    conn, _ = connection()
    burst = [SRTP[:-1] + bytes([n]) for n in range(20)]
    for datagram in burst:
        conn.data_received(datagram, 1)
    loop = asyncio.get_running_loop()
    ticks = 0

    def tick() -> None:  # another callback that wants the loop, e.g. a REST request's
        nonlocal ticks
        ticks += 1
        if ticks < 1000:
            loop.call_soon(tick)

    loop.call_soon(tick)
    read, turns = [], []
    for _ in burst:
        before = ticks
        read.append((await conn.recvfrom())[0])
        turns.append(ticks - before)
    assert read == burst
    assert all(turns[1:-1]), f"loop turns before each read: {turns}"
    assert turns[-1] == 0, "the last datagram, with nothing behind it, is read without a turn"


async def test_the_age_of_each_media_datagram_read_reaches_the_admission(monkeypatch: pytest.MonkeyPatch) -> None:
    """Media that waited in its queue is lateness the loop-lag samples cannot see once the
    receive loops yield: the admission takes the oldest read since its last sample."""
    monkeypatch.setattr(gathering, "MEDIA_MAX_AGE_S", SLACK_AGE_S)
    conn, plan = connection()
    conn.data_received(SRTP, 1)
    conn.data_received(DTLS, 1)
    await asyncio.sleep(0.08)
    assert len(await drain(conn)) == 2
    admission = plan.admission
    assert 0.08 <= admission._media_age_s < SLACK_AGE_S
    admission.observe_lag(0.0)
    assert admission._behind_samples == 1 and admission._media_age_s == 0.0
    admission.observe_lag(0.0)
    assert admission._behind_samples == 1, "the age counts for one sample, not every later one"
