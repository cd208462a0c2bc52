"""When a socket's handling fails: unexpected exceptions, refused SDP offers, too many waiting sockets.

An unexpected exception (a bug in the server) must close only that socket, with 1011 and a
reason that shows nothing of the server's internals, log its traceback (once per kind of
error), and report the peer as crashed; everyone else carries on. Every real input that
used to raise has been turned into a clear refusal, so these tests raise on purpose: the
server runs with the test-only ``--debug-fault-marker``, and any frame containing the
marker raises inside the socket's handling.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from fishjam._proto import server_notifications_pb2 as SM
from fishjam._proto.media_events.peer import peer_pb2 as CE
from fishjam.events import ServerMessagePeerCrashed, ServerMessagePeerDisconnected, ServerMessageRoomCreated
from tests.shoal.test_webrtc_faults import RawPeer
from tests.support.agent_client import RawAgent, create_room
from tests.support.audio import dominant_frequency, tone
from tests.support.notify import collecting, wait_for
from tests.support.server import ServerProcess, start_server

MARKER = "fault-marker-5c1e"
PYTHON_INTERNALS = ("Error", "Exception", "Traceback", "NoneType", "attribute", "int()", "literal", ".py")


@pytest.fixture(scope="module")
def faulty() -> Iterator[ServerProcess]:
    proc = start_server(["--debug-fault-marker", MARKER])
    try:
        yield proc
    finally:
        proc.stop()


class Pair:
    """Two agents of a room, one speaking to the other: the room's other peers, which must keep working."""

    def __init__(self, speaker: RawAgent, listener: RawAgent, track: str) -> None:
        self.speaker, self.listener, self.track = speaker, listener, track

    @classmethod
    async def start(cls, server: ServerProcess, room: str) -> Pair:
        speaker = await RawAgent.join(server, room)
        listener = await RawAgent.join(server, room)
        track = await speaker.add_track()
        for _ in range(3):
            await speaker.send_audio(track, tone(500, 10.0, 16000))
        pair = cls(speaker, listener, track)
        await pair.assert_talking()
        return pair

    async def assert_talking(self) -> None:
        before = self.listener.samples_from(self.track)
        await self.listener.wait_samples(self.track, before + 8000, timeout=10)
        assert abs(dominant_frequency(self.listener.received[self.track].pcm[before:], 16000) - 500) < 10

    async def close(self) -> None:
        await self.speaker.close()
        await self.listener.close()


@pytest.fixture
async def notifications(faulty: ServerProcess) -> AsyncIterator[list[object]]:
    async with collecting(faulty) as received:
        yield received


async def assert_crashed(notifications: list[object], peer_id: str) -> None:
    crashed = await wait_for(notifications, lambda n: isinstance(n, ServerMessagePeerCrashed) and n.peer_id == peer_id)
    assert isinstance(crashed, ServerMessagePeerCrashed)
    assert crashed.reason == "internal error"
    await wait_for(notifications, lambda n: isinstance(n, ServerMessagePeerDisconnected) and n.peer_id == peer_id)


def assert_internal_error(code: int, reason: str) -> None:
    assert (code, reason) == (1011, "internal error")
    assert not any(word in reason for word in PYTHON_INTERNALS)


async def test_an_unexpected_error_on_an_agent_socket_closes_it_with_1011_and_reports_a_crash(
    faulty: ServerProcess, notifications: list[object]
) -> None:
    room = create_room(faulty)
    pair = await Pair.start(faulty, room)
    victim = await RawAgent.join(faulty, room)
    await victim.add_track(metadata=json.dumps({"note": MARKER}))
    assert_internal_error(*await victim.wait_closed())
    await assert_crashed(notifications, victim.peer_id)
    log = faulty.log_text()
    assert f"agent {victim.peer_id}: unexpected error; closing with 1011" in log
    assert "Traceback (most recent call last)" in log and "InjectedFault" in log
    await pair.assert_talking()
    # The peer was only disconnected, not deleted: its token connects again and works.
    again = RawAgent(faulty, victim.peer_id, victim.token)
    await again.connect()
    track = await again.add_track()
    await again.send_audio(track, tone(700, 0.5, 16000))
    await pair.listener.wait_samples(track, 8000)
    await again.close()
    await pair.close()


async def test_an_unexpected_error_on_a_peer_socket_closes_it_with_1011_and_reports_a_crash(
    faulty: ServerProcess, notifications: list[object]
) -> None:
    room = create_room(faulty)
    pair = await Pair.start(faulty, room)
    victim, victim_id = await RawPeer.join(faulty, room)
    metadata = json.dumps({"name": MARKER})
    await victim.media(CE.MediaEvent(update_endpoint_metadata=CE.MediaEvent.UpdateEndpointMetadata(metadata_json=metadata)))
    code, reason, _ = await victim.closed()
    assert_internal_error(code, reason)
    await assert_crashed(notifications, victim_id)
    assert f"peer {victim_id}: unexpected error" in faulty.log_text()
    await pair.assert_talking()
    await pair.close()


async def test_an_unexpected_error_on_a_notifier_socket_closes_only_that_notifier(
    faulty: ServerProcess, notifications: list[object]
) -> None:
    async with connect(f"{faulty.ws_url}/socket/server/websocket") as ws:
        await ws.send(SM.ServerMessage(auth_request=SM.ServerMessage.AuthRequest(token=faulty.token)).SerializeToString())
        await ws.recv()  # authenticated
        await ws.send(MARKER.encode())
        code, reason = await closed(ws)
    assert_internal_error(code, reason)
    room = create_room(faulty)  # the other notifier still hears what happens
    await wait_for(notifications, lambda n: isinstance(n, ServerMessageRoomCreated) and n.room_id == room)


async def test_the_same_unexpected_error_again_is_logged_in_one_line_without_a_second_traceback() -> None:
    server = start_server(["--debug-fault-marker", MARKER])
    try:
        room = create_room(server)
        for _ in range(3):
            agent = await RawAgent.join(server, room)
            await agent.send_audio(MARKER, b"")
            assert_internal_error(*await agent.wait_closed())
        log = server.log_text()
        assert log.count("InjectedFault: a frame carried") == 1, log
        assert "again (3 times; traceback logged the first time)" in log
    finally:
        server.stop()


async def closed(ws: ClientConnection, timeout: float = 10.0) -> tuple[int, str]:
    try:
        async with asyncio.timeout(timeout):
            async for _ in ws:
                pass
    except ConnectionClosed:
        pass
    assert ws.close_code is not None, "the server did not close the socket"
    return ws.close_code, ws.close_reason or ""


# Sockets that have not authenticated yet, per remote address -----------------------------------------

WAITING_LIMIT = 4


async def test_sockets_waiting_to_authenticate_are_limited_per_address() -> None:
    server = start_server(["--max-unauthenticated-per-ip", str(WAITING_LIMIT), "--auth-timeout", "60"])
    try:
        room = create_room(server)
        # Authenticated sockets do not count: more agents than the limit join and talk.
        agents = [await RawAgent.join(server, room) for _ in range(WAITING_LIMIT + 2)]
        track = await agents[0].add_track()
        await agents[0].send_audio(track, tone(440, 0.5, 16000))
        await agents[-1].wait_samples(track, 8000)

        paths = ["agent", "peer", "server"]
        waiting = [await connect(f"{server.ws_url}/socket/{paths[i % 3]}/websocket") for i in range(WAITING_LIMIT)]
        for path in paths:  # one more on any socket type is refused, and says why
            async with connect(f"{server.ws_url}/socket/{path}/websocket") as extra:
                code, reason = await closed(extra)
            assert code == 1013 and "too many unauthenticated connections" in reason
        assert all(ws.close_code is None for ws in waiting), "the waiting sockets are not disturbed"

        await waiting.pop().close()  # a slot frees up: the next socket is admitted and authenticates
        late = RawAgent(server, agents[0].peer_id, agents[0].token)
        await late.connect()
        await late.close()

        log = server.log_text()
        assert log.count("sockets that have not authenticated") == 1, "logged once, later ones counted"
        for ws in waiting:
            await ws.close()
        for agent in agents:
            await agent.close()
    finally:
        server.stop()

