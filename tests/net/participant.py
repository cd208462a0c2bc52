"""WebRTC participants (``shoal.testing.WebRTCPeer``) run as a subprocess, reporting JSON lines on stdout.

Started by ``participants.py`` inside a participant's network namespace::

    ip netns exec NS python -m tests.net.participant < config.json

The first stdin line is a JSON config ``{"peers": [...], "connect_timeout": s, "max_seconds": s}``;
each peer is ``{"name", "ws_url", "token", "tone_hz", "listen_to": <endpoint id or null>,
"listen_seconds"}``. Every peer joins, publishes a looped pre-encoded Opus tone (no encoder runs
per peer, so one process holds many), waits for its ICE connection and, with ``listen_to``,
records that endpoint's track and measures it. Later stdin lines are commands: ``status`` makes
every listening peer report what it hears now; ``stop`` (or the end of stdin) makes every peer
leave and the process exit.

stdout, one JSON object per line, each with ``"peer"`` and ``"event"``:
  joined      endpoint_id, ice_servers (urls, username, credential from ``connected``)
  answered    answers, offers (signaling worked: the server answered an offer)
  connected   pair: the selected ICE candidate pair {"local": {...}, "remote": {...}}
  not_connected  after connect_timeout: states, local candidates, server candidates
  published   track_id (after connected: the tone's offer was answered)
  heard       hz, rms, seconds (what the peer heard from ``listen_to``)
  status      received_s (all audio received so far), hz and rms of its last 1.5 s, pair
  failed      error (anything that went wrong, with its step)
  closed      (the peer left)
and one final ``{"event": "exit"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any

from aiortc import RTCPeerConnection

from shoal.testing import OpusPacketSource, RemoteTrack, WebRTCPeer, encode_opus_tone
from tests.support.audio import dominant_frequency, rms

SETTLE_S = 0.5  # jitter buffer and decoder start, skipped before analysing
STATE_POLL_S = 0.2
STATUS_WINDOW_S = 1.5

listening: dict[str, tuple[WebRTCPeer, RemoteTrack]] = {}
"""Peers whose ``listen_to`` track is being recorded, for ``status``."""


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def candidate_info(candidate: Any) -> dict[str, Any]:
    """An aioice Candidate as JSON."""
    return {
        "type": candidate.type,
        "address": candidate.host,
        "port": candidate.port,
        "protocol": candidate.transport,
        "related_address": candidate.related_address,
    }


def ice_connection(pc: RTCPeerConnection) -> Any:
    """The aioice Connection under the peer connection's (bundled) ICE transport.

    aiortc has no public view of the selected candidate pair (its getStats has no
    ``candidate-pair``), so this reads ``RTCIceTransport._connection`` and aioice's
    ``Connection._nominated``; it fails loudly if those internals change.
    """
    transceivers = pc.getTransceivers()
    if not transceivers:
        raise RuntimeError("no transceivers yet")
    ice_transport = transceivers[0].sender.transport.transport
    connection = getattr(ice_transport, "_connection", None)
    if connection is None or not hasattr(connection, "_nominated"):
        raise RuntimeError("aiortc/aioice internals changed: RTCIceTransport._connection._nominated is gone")
    return connection


def selected_pair(pc: RTCPeerConnection) -> dict[str, Any] | None:
    nominated = ice_connection(pc)._nominated
    pair = nominated.get(1)
    if pair is None:
        return None
    return {"local": candidate_info(pair.local_candidate), "remote": candidate_info(pair.remote_candidate)}


def server_candidates(peer: WebRTCPeer) -> list[str]:
    """The candidates the server signaled (trickled, or in its answers), as SDP strings."""
    found: list[str] = []
    for event in peer.events:
        if event.name == "candidate":
            found.append(str(event.details.get("candidate", "")).removeprefix("a="))
        elif event.name == "sdp_answer":
            found.extend(
                line.removeprefix("a=") for line in str(event.details.get("sdp", "")).splitlines()
                if line.startswith("a=candidate:")
            )
    return found


async def wait_connected(peer: WebRTCPeer, timeout: float) -> tuple[bool, list[str]]:
    """Poll the peer connection until it is ``connected``; returns the outcome and the state history."""
    history: list[str] = []
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        pc = peer.pc
        if pc is not None:
            state = f"ice={pc.iceConnectionState} connection={pc.connectionState}"
            if not history or history[-1].split(" @")[0] != state:
                history.append(f"{state} @{time.monotonic() - start:.1f}s")
            if pc.connectionState == "connected":
                return True, history
        if peer.disconnected:
            history.append(f"peer {peer.state} @{time.monotonic() - start:.1f}s")
            return False, history
        await asyncio.sleep(STATE_POLL_S)
    return False, history


async def run_peer(spec: dict[str, Any], config: dict[str, Any], stop: asyncio.Event) -> None:
    name = spec["name"]
    step = "join"
    try:
        peer = await WebRTCPeer.join(spec["ws_url"], spec["token"], metadata={"name": name}, timeout=config["join_timeout"])
    except Exception as exc:
        emit(peer=name, event="failed", step=step, error=f"{type(exc).__name__}: {exc}")
        return
    try:
        emit(
            peer=name, event="joined", endpoint_id=peer.endpoint_id,
            ice_servers=[
                {"urls": list(s.urls) if isinstance(s.urls, list) else [s.urls],
                 "username": s.username, "credential": s.credential}
                for s in peer.ice_servers
            ],
        )
        # Publish while ICE comes up: the server may hold a second negotiation until media is up,
        # so a publish can only complete once the media connection works.
        source = OpusPacketSource(encode_opus_tone(float(spec["tone_hz"]), 1.0))  # 1 s loops seamlessly
        publish = asyncio.create_task(peer.publish_audio(source, timeout=None))
        step = "signaling"
        await peer.wait_until(lambda: peer.answers_received >= 1 or publish.done(), config["join_timeout"])
        if publish.done() and (error := publish.exception()) is not None:
            raise error
        emit(peer=name, event="answered", answers=peer.answers_received, offers=peer.offers_sent)
        step = "connect"
        connected, history = await wait_connected(peer, config["connect_timeout"])
        pc = peer.pc
        if not connected or pc is None:
            local = [candidate_info(c) for c in ice_connection(pc).local_candidates] if pc is not None else []
            emit(
                peer=name, event="not_connected", states=history, local_candidates=local,
                server_candidates=server_candidates(peer), answers=peer.answers_received,
                published=publish.done() and publish.exception() is None, sent_packets=source.produced,
            )
            publish.cancel()
        else:
            emit(peer=name, event="connected", pair=selected_pair(pc), states=history,
                 server_candidates=server_candidates(peer))
            step = "publish"
            track_id = await asyncio.wait_for(publish, config["connect_timeout"])
            emit(peer=name, event="published", track_id=track_id, answers=peer.answers_received)
            if spec.get("listen_to"):
                step = "listen"
                seconds = float(spec.get("listen_seconds", 2.0))
                remote = await peer.wait_for_remote_track(endpoint_id=spec["listen_to"], timeout=config["connect_timeout"])
                await remote.recording.wait_for_seconds(seconds + SETTLE_S, timeout=config["connect_timeout"])
                samples = remote.recording.samples()[int(SETTLE_S * remote.recording.rate):]
                emit(peer=name, event="heard", hz=dominant_frequency(samples, remote.recording.rate),
                     rms=rms(samples), seconds=len(samples) / remote.recording.rate)
                listening[name] = (peer, remote)
        await stop.wait()
    except Exception as exc:
        emit(peer=name, event="failed", step=step, error=f"{type(exc).__name__}: {exc}")
        await stop.wait()
    finally:
        try:
            await asyncio.wait_for(peer.leave(), 10)
        except Exception:
            pass
        await peer.close()
        emit(peer=name, event="closed")


def report_status() -> None:
    """What each listening peer hears now (the last STATUS_WINDOW_S of its recording)."""
    for name, (peer, remote) in list(listening.items()):
        recording = remote.recording
        recent = recording.samples()[-int(STATUS_WINDOW_S * recording.rate):]
        pair = selected_pair(peer.pc) if peer.pc is not None else None
        emit(peer=name, event="status", received_s=recording.received_s, pair=pair,
             hz=dominant_frequency(recent, recording.rate) if len(recent) else None, rms=rms(recent))


def read_commands(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Runs in a daemon thread: ``status`` reports; ``stop`` or the end of stdin sets ``stop``."""
    for line in sys.stdin:
        command = line.strip()
        if command == "stop":
            break
        if command == "status":
            loop.call_soon_threadsafe(report_status)
    loop.call_soon_threadsafe(stop.set)


async def main() -> None:
    config: dict[str, Any] = {"connect_timeout": 60.0, "join_timeout": 30.0, "max_seconds": 240.0}
    config.update(json.loads(sys.stdin.readline()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=read_commands, args=(loop, stop), daemon=True).start()
    limit = loop.call_later(config["max_seconds"], stop.set)  # never outlive a test
    await asyncio.gather(*(run_peer(spec, config, stop) for spec in config["peers"]))
    limit.cancel()
    emit(event="exit")


if __name__ == "__main__":
    asyncio.run(main())
