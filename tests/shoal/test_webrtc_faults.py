"""Misbehaving WebRTC peers are cleaned up in bounded time and disturb nobody else.

Every case runs in a room where a well-behaved peer ("alice") talks to an agent; the
agent must keep hearing alice while the bad peer misbehaves and after it is gone. The
server runs with short timeouts (negotiation 2 s, ICE connect 4 s) so the bounds are
quick to observe; the defaults are documented in the README.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from fishjam._proto import peer_notifications_pb2 as P
from fishjam._proto.media_events.peer import peer_pb2 as CE
from fishjam._proto.media_events.server import server_pb2 as SE
from fishjam.events import (
    ServerMessagePeerCrashed,
    ServerMessagePeerDisconnected,
    ServerMessageTrackRemoved,
)
from shoal.testing import ToneSource, WebRTCPeer, start_server
from tests.support.agent_client import RawAgent, create_room, create_webrtc_peer
from tests.support.audio import dominant_frequency
from tests.support.notify import collecting, wait_for
from tests.support.server import ServerProcess

NEGOTIATION_TIMEOUT_S = 2.0
ICE_CONNECT_TIMEOUT_S = 4.0
CLEANUP_BOUND_S = 10.0
"""Generous upper bound for the cleanup the server promises within the timeouts above."""


@pytest.fixture(scope="module")
def strict_server() -> Iterator[ServerProcess]:
    proc = start_server(
        ["--negotiation-timeout", str(NEGOTIATION_TIMEOUT_S), "--ice-connect-timeout", str(ICE_CONNECT_TIMEOUT_S)]
    )
    try:
        yield proc
    finally:
        proc.stop()


@dataclass
class Scene:
    server: ServerProcess
    room: str
    agent: RawAgent
    alice: WebRTCPeer
    alice_track: str
    notifications: list[object]

    async def assert_agent_still_hears_alice(self) -> None:
        before = self.agent.samples_from(self.alice_track)
        await self.agent.wait_samples(self.alice_track, before + 16000, timeout=10)
        fresh = self.agent.received[self.alice_track].pcm[before:]
        assert abs(dominant_frequency(fresh, 16000) - 440) < 10

    async def assert_cleaned_up(self, peer_id: str, crashed: bool) -> str:
        """The bad peer is reported gone (and crashed, with the reason returned); alice forgets it."""
        reason = ""
        if crashed:
            note = await wait_for(
                self.notifications,
                lambda n: isinstance(n, ServerMessagePeerCrashed) and n.peer_id == peer_id,
                CLEANUP_BOUND_S,
            )
            assert isinstance(note, ServerMessagePeerCrashed)
            reason = note.reason
        await wait_for(
            self.notifications,
            lambda n: isinstance(n, ServerMessagePeerDisconnected) and n.peer_id == peer_id,
            CLEANUP_BOUND_S,
        )
        if peer_id in self.alice.remote_endpoints:
            await self.alice.wait_until(lambda: peer_id not in self.alice.remote_endpoints, timeout=CLEANUP_BOUND_S)
        return reason


@pytest.fixture
async def scene(strict_server: ServerProcess) -> AsyncIterator[Scene]:
    room = create_room(strict_server)
    async with collecting(strict_server) as notifications:
        agent = await RawAgent.join(strict_server, room)
        _, token = create_webrtc_peer(strict_server, room)
        alice = await WebRTCPeer.join(strict_server.ws_url, token, metadata={"name": "alice"})
        track = await alice.publish_audio(ToneSource(440))
        scene = Scene(strict_server, room, agent, alice, track, notifications)
        await scene.assert_agent_still_hears_alice()
        yield scene
        await alice.close()
        await agent.close()


class RawPeer:
    """A peer socket driven frame by frame, to misbehave precisely."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def join(cls, server: ServerProcess, room: str) -> tuple[RawPeer, str]:
        peer_id, token = create_webrtc_peer(server, room)
        ws = await connect(f"{server.ws_url}/socket/peer/websocket")
        peer = cls(ws)
        await peer.send(P.PeerMessage(auth_request=P.PeerMessage.AuthRequest(token=token, sdk_version="web-0.25.1")))
        assert (await peer.next_message()).WhichOneof("content") == "authenticated"
        await peer.media(CE.MediaEvent(connect=CE.MediaEvent.Connect(metadata_json=json.dumps({"name": "bad"}))))
        assert (await peer.next_event()).WhichOneof("content") == "connected"
        return peer, peer_id

    async def send(self, message: P.PeerMessage) -> None:
        await self.ws.send(message.SerializeToString())

    async def media(self, event: CE.MediaEvent) -> None:
        await self.send(P.PeerMessage(peer_media_event=event))

    async def next_message(self) -> P.PeerMessage:
        message = P.PeerMessage()
        message.ParseFromString(await asyncio.wait_for(self.ws.recv(), 10))  # type: ignore[arg-type]
        return message

    async def next_event(self, name: str | None = None) -> SE.MediaEvent:
        while True:
            message = await self.next_message()
            event = message.server_media_event
            if name is None or event.WhichOneof("content") == name:
                return event

    async def closed(self, timeout: float = CLEANUP_BOUND_S) -> tuple[int, str, float]:
        """Wait for the server to close the socket: code, reason, seconds waited."""
        start = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                async for _ in self.ws:
                    pass
        except ConnectionClosed:
            pass
        assert self.ws.close_code is not None, "the server did not close the socket"
        return self.ws.close_code, self.ws.close_reason or "", time.monotonic() - start


async def test_garbage_after_joining_closes_only_that_peer(scene: Scene) -> None:
    bad, bad_id = await RawPeer.join(scene.server, scene.room)
    await bad.ws.send(b"\xff\xfe garbage, not a PeerMessage")
    code, reason, _ = await bad.closed()
    assert code == 1007 and "PeerMessage" in reason
    assert "PeerMessage" in await scene.assert_cleaned_up(bad_id, crashed=True)
    await scene.assert_agent_still_hears_alice()


async def test_a_broken_sdp_offer_closes_only_that_peer(scene: Scene) -> None:
    bad, bad_id = await RawPeer.join(scene.server, scene.room)
    await bad.next_event("offer_data")  # alice's track is offered
    await bad.media(CE.MediaEvent(sdp_offer=CE.MediaEvent.SdpOffer(sdp="v=0\r\nthis is not SDP\r\n")))
    code, reason, _ = await bad.closed()
    assert (code, "invalid SDP offer") == (1007, reason[:17]), reason
    assert "invalid SDP offer" in await scene.assert_cleaned_up(bad_id, crashed=True)
    await scene.assert_agent_still_hears_alice()


async def test_a_peer_that_never_answers_an_offer_is_removed_after_the_negotiation_timeout(scene: Scene) -> None:
    bad, bad_id = await RawPeer.join(scene.server, scene.room)
    added = await bad.next_event("tracks_added")  # alice's track is announced...
    assert scene.alice_track in added.tracks_added.track_id_to_track
    await bad.next_event("offer_data")  # ...and an offer requested, which never comes
    started = time.monotonic()
    code, reason, _ = await bad.closed()
    waited = time.monotonic() - started
    assert "negotiation timeout" in reason and code == 1011
    assert NEGOTIATION_TIMEOUT_S - 0.5 < waited < NEGOTIATION_TIMEOUT_S + 3
    assert "negotiation timeout" in await scene.assert_cleaned_up(bad_id, crashed=True)
    await scene.assert_agent_still_hears_alice()


async def test_a_peer_whose_media_never_connects_is_removed_after_the_ice_timeout(scene: Scene) -> None:
    from aiortc import RTCPeerConnection

    bad, bad_id = await RawPeer.join(scene.server, scene.room)
    await bad.next_event("offer_data")
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    # No candidates in the offer and none trickled: the server cannot reach this peer.
    sdp = "".join(line + "\r\n" for line in pc.localDescription.sdp.splitlines() if not line.startswith("a=candidate"))
    await bad.media(CE.MediaEvent(sdp_offer=CE.MediaEvent.SdpOffer(sdp=sdp)))
    await bad.next_event("sdp_answer")
    code, reason, waited = await bad.closed(timeout=ICE_CONNECT_TIMEOUT_S + CLEANUP_BOUND_S)
    await pc.close()
    assert "media connection" in reason
    assert waited < ICE_CONNECT_TIMEOUT_S + 3
    await scene.assert_cleaned_up(bad_id, crashed=True)
    await scene.assert_agent_still_hears_alice()


PEER_PROCESS = """
import asyncio, sys
from shoal.testing import ToneSource, WebRTCPeer

async def main():
    peer = await WebRTCPeer.join(sys.argv[1], sys.argv[2], metadata={"name": "doomed"})
    await peer.publish_audio(ToneSource(660))
    print("publishing", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_peer_whose_process_is_killed_is_cleaned_up_and_others_keep_talking(scene: Scene) -> None:
    doomed_id, token = create_webrtc_peer(scene.server, scene.room)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PEER_PROCESS, scene.server.ws_url, token,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"publishing"
        doomed = await scene.alice.wait_for_remote_track(endpoint_id=doomed_id, timeout=10)
        track_id = doomed.track_id
        await scene.agent.wait_samples(track_id, 16000, timeout=10)  # the agent hears it...
        proc.send_signal(signal.SIGKILL)  # ...until it vanishes without a goodbye
        killed_at = time.monotonic()
        await wait_for(
            scene.notifications,
            lambda n: isinstance(n, ServerMessageTrackRemoved) and n.peer_id == doomed_id,
            CLEANUP_BOUND_S,
        )
        await scene.assert_cleaned_up(doomed_id, crashed=False)
        assert time.monotonic() - killed_at < CLEANUP_BOUND_S
        assert doomed.removed or track_id not in scene.alice.remote_tracks
        await scene.assert_agent_still_hears_alice()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_an_ice_restart_request_is_logged_and_the_call_goes_on(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiortc starts ICE once per connection, so shoal cannot restart it. A peer whose later
    offer carries new ICE credentials (what an ICE restart looks like) gets its offer
    answered, the server says once in its log that it does not restart ICE, and the call
    goes on: the track that offer adds is heard by the agent, and alice still is."""
    import re

    import shoal.testing.peer as peer_module

    real = peer_module.sdp_offer_event
    offers = [0]

    def restarting(sdp: str, *args: object, **kwargs: object) -> object:
        offers[0] += 1
        if offers[0] > 1:  # every later offer: new ufrag and password, as after restartIce()
            sdp = re.sub(r"a=ice-ufrag:\S+", "a=ice-ufrag:restart1", sdp)
            sdp = re.sub(r"a=ice-pwd:\S+", "a=ice-pwd:restartrestartrestartrestar", sdp)
        return real(sdp, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(peer_module, "sdp_offer_event", restarting)
    bob_id, token = create_webrtc_peer(scene.server, scene.room)
    bob = await WebRTCPeer.join(scene.server.ws_url, token, metadata={"name": "bob"})
    try:
        await bob.publish_audio(ToneSource(660))
        second = await bob.publish_audio(ToneSource(880))
        assert offers[0] >= 2
        await scene.agent.wait_samples(second, 16000, timeout=15)
        assert abs(dominant_frequency(scene.agent.received[second].pcm, 16000) - 880) < 10
        await scene.assert_agent_still_hears_alice()
        log = scene.server.log_text()
        # (alice's renegotiations are rewritten too: this process's peers share the patch)
        said = [line for line in log.splitlines() if f"peer {bob_id}: its offer asks for an ICE restart" in line]
        assert len(said) == 1, "said once per peer, however many offers"
    finally:
        await bob.close()
