"""A long call, time-compressed, through a real ``shoal serve``: forwarding never stops.

One participant publishes pre-encoded Opus 40 times faster than real time (2,000 packets a
second) to a second participant through a room, until 70,000 packets — 23 minutes of audio,
past the 32,768 packets after which the old forwarder stopped and past the 65,536 wrap of
every sequence number on the way — have been sent. The listener's RTP receiver counts what
arrives (``rtp_stats``, numbers unwrapped per SSRC) and decodes it; the server's forwarder
counts what its send queue dropped (logged when the listener leaves), which the test reports.

The publisher runs in a child process (this module run as a script, ``--publish``): one event
loop sending and receiving 2,000 packets a second each way falls behind on a 2-core machine,
and the kernel then drops what its socket buffer cannot hold.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

from shoal.testing import OpusPacketSource, WebRTCPeer, encode_opus_tone
from tests.support.agent_client import create_room, create_webrtc_peer
from tests.support.audio import dominant_frequency
from tests.support.peers import join
from tests.support.server import ServerProcess

REPO = Path(__file__).resolve().parents[2]

PACKETS = 70_000
SPEED = 40.0
"""Times real time: 2,000 packets/s, 35 s for the call; the whole test stays near a minute."""
DELIVERY = 0.99
MAX_WALL_S = 90.0
"""How long the compressed call may take on a loaded machine before the test gives up."""

FORWARDER_LINE = re.compile(r"forwarded (\d+) packets, retransmitted (\d+), dropped (\d+) \(queue full\)")


RECEIVE_BUFFER = 4 << 20
"""Bytes of kernel buffer for the listener's UDP sockets (Linux default ~200 kB: 0.1 s at this
rate, so any pause of the test's event loop lost packets the server had sent)."""


def enlarge_receive_buffers(peer: WebRTCPeer, size: int = RECEIVE_BUFFER) -> list[int]:
    """Give the sockets under ``peer``'s ICE transport a ``size`` receive buffer; returns what the kernel set."""
    assert peer.pc is not None
    sizes = []
    transports = {id(t.receiver.transport): t.receiver.transport for t in peer.pc.getTransceivers()}
    for dtls in transports.values():
        for protocol in dtls.transport._connection._protocols:
            sock = protocol.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            sizes.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    return sizes


class Publisher:
    """The publishing participant in a child process; commands on stdin, JSON lines on stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, ws_url: str, token: str) -> Publisher:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.shoal.test_long_call", "--publish",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO,
        )
        publisher = cls(process)
        await publisher.command({"ws_url": ws_url, "token": token})
        return publisher

    async def command(self, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the publisher process ended")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the publisher failed: {reply['error']}")
        return reply

    async def close(self) -> None:
        if self.process.returncode is None:
            try:
                await self.command({"cmd": "stop"}, timeout=10)
            except (RuntimeError, TimeoutError, BrokenPipeError, ConnectionResetError):
                pass
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def test_a_forwarded_call_keeps_delivering_past_32768_packets_and_the_sequence_wrap(
    server: ServerProcess, peers: list[WebRTCPeer]
) -> None:
    """70,000 packets in one call reach the listener (≥ 99 %), still arriving after 32,768 and
    after its sequence numbers wrapped, and the last second heard is the publisher's tone.
    Against the forwarder before the fix it failed: 32,740 of 70,720 received (46 %), the
    listener's numbers spanning exactly 32,768, after which the forwarder dropped every
    packet (``uint16_gt(first_in_seq, seq)`` had turned true)."""
    room = create_room(server)
    bob = await join(server, room, "bob")
    peers.append(bob)
    received = bob.rtp_stats("audio")
    _, token = create_webrtc_peer(server, room, "auto")
    publisher = await Publisher.start(server.ws_url, token)
    try:
        track_id = (await publisher.command({"cmd": "publish"}))["track_id"]
        remote = await bob.wait_for_remote_track(lambda t: t.track_id == track_id, timeout=20)
        await remote.recording.wait_for_seconds(0.5, timeout=20)  # the listener's forwarder runs
        buffers = enlarge_receive_buffers(bob)

        sent_before, received_before = (await publisher.command({"cmd": "speed", "speed": SPEED}))["sent"], received.rtp_received
        started = time.monotonic()
        sent_now = sent_before
        while sent_now - sent_before < PACKETS and time.monotonic() - started < MAX_WALL_S:
            await asyncio.sleep(0.5)
            sent_now = (await publisher.command({"cmd": "stats"}))["sent"]
        await publisher.command({"cmd": "speed", "speed": 1.0})
        wall = time.monotonic() - started
        await asyncio.sleep(2.0)  # the last packets (and resends of lost ones) arrive
        expected = (await publisher.command({"cmd": "stats"}))["sent"] - sent_before
        delivered = received.rtp_received - received_before
    finally:
        await publisher.close()

    samples = remote.recording.samples()
    frequency = dominant_frequency(samples[-48000:], 48000)
    (log,) = received.received.values()  # the one SSRC the listener receives this track on
    assert log.first is not None and log.highest is not None
    span = log.highest - log.first
    missing_recent = len(log.missing(recent=100))
    await bob.close()
    await asyncio.sleep(0.5)  # the server logs the forwarder's counters as the listener leaves
    name = f"{bob.endpoint_id}<-{track_id}"
    line = next((line for line in server.log_text().splitlines() if name in line and "forwarded" in line), "")
    counters = FORWARDER_LINE.search(line)
    dropped = int(counters.group(3)) if counters else -1
    print(
        f"\nlong call: {expected} packets sent in {wall:.1f} s, {delivered} received "
        f"({delivered / max(expected, 1):.2%}), listener's numbers span {span} (extended), "
        f"{missing_recent} missing in the last {log.window}; listener's socket buffers {buffers}; server forwarder: "
        f"{line.split(': ', 1)[-1] if line else 'no counters logged'}"
    )

    assert expected >= PACKETS, f"only {expected} packets sent in {wall:.0f} s: the machine is too slow"
    assert delivered >= DELIVERY * expected, (
        f"{delivered} of {expected} packets reached the listener; the server's send queue "
        f"dropped {dropped} (queue full)"
    )
    assert span >= DELIVERY * PACKETS, "the listener's sequence numbers stopped advancing"
    assert span > 65_536 and log.highest // 65_536 > log.first // 65_536, "no sequence wrap seen"
    assert missing_recent <= (1 - DELIVERY) * log.window, "packets stopped arriving near the end"
    assert abs(frequency - 440) < 10, f"the last second heard is {frequency:.0f} Hz, not the 440 Hz tone"


async def publish_main() -> None:
    """The child: join with the token from the first stdin line, then obey commands."""
    config = json.loads(sys.stdin.readline())
    loop = asyncio.get_running_loop()
    peer = await WebRTCPeer.join(config["ws_url"], config["token"], metadata={"name": "alice"})
    stats = peer.rtp_stats("audio")
    source = OpusPacketSource(encode_opus_tone(440.0, 2.0, bitrate=24000))

    def reply(**fields: Any) -> None:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()

    reply(event="joined")
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            if command["cmd"] == "publish":
                reply(track_id=await peer.publish_audio(source))
            elif command["cmd"] == "speed":
                source.speed = command["speed"]
                reply(sent=stats.rtp_sent)
            elif command["cmd"] == "stats":
                reply(sent=stats.rtp_sent)
            else:
                reply(sent=stats.rtp_sent)
                break
    except Exception as exc:  # reported to the test, which fails with it
        reply(error=f"{type(exc).__name__}: {exc}")
    finally:
        await peer.close()


if __name__ == "__main__" and sys.argv[1:] == ["--publish"]:
    asyncio.run(publish_main())
