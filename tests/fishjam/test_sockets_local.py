"""Agent and notifier sockets against tiny local websocket servers (no shoal needed).

These pin behaviour the byte-identity tests do not cover: the ``remove()`` addition,
how iteration ends, and the notifier's handling of batches and close reasons.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError

from fishjam import FishjamNotifier
from fishjam._proto import agent_notifications_pb2, server_notifications_pb2
from fishjam.agent import Agent, AgentAuthError, IncomingTrackData, OutgoingAudioTrackOptions
from fishjam.events import ServerMessagePeerAdded, ServerMessagePeerType, ServerMessageRoomCreated, TrackType

AgentRequest = agent_notifications_pb2.AgentRequest
AgentResponse = agent_notifications_pb2.AgentResponse
ServerMessage = server_notifications_pb2.ServerMessage

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def local_server(handler: Handler) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


def _parse_request(frame: bytes) -> Any:
    request = AgentRequest()
    request.ParseFromString(frame)
    return request


async def test_remove_track_is_sent_after_queued_audio() -> None:
    received: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.recv(decode=False)
        await ws.send(AgentResponse(authenticated={}).SerializeToString())
        async for frame in ws:
            assert isinstance(frame, bytes)
            received.append(_parse_request(frame))

    async with local_server(handler) as url:
        async with Agent("a", "r", "t", url).connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions(metadata={"k": "v"}))
            await track.send_chunk(b"\x00\x01")
            await track.remove()
        await asyncio.sleep(0.1)

    kinds = [message.WhichOneof("content") for message in received]
    assert kinds == ["add_track", "track_data", "remove_track"]
    add, remove = received[0].add_track, received[2].remove_track
    assert remove.track_id == add.track.id == track.id
    assert len(track.id) == 32 and "-" not in track.id
    assert add.track.type == TrackType.TRACK_TYPE_AUDIO
    assert add.track.metadata == '{"k": "v"}'


async def test_receive_ends_on_normal_close_and_skips_empty_frames() -> None:
    data = AgentResponse(
        track_data=AgentResponse.TrackData(peer_id="p", track={"id": "t", "type": 2}, data=b"\x01")
    )

    async def handler(ws: ServerConnection) -> None:
        await ws.recv(decode=False)
        await ws.send(b"\x0a\x00")
        await ws.send(b"")  # would end the official iterator; ours skips it
        await ws.send(data.SerializeToString())
        await ws.close()

    async with local_server(handler) as url, Agent("a", "r", "t", url).connect() as session:
        messages = [message async for message in session.receive()]
    assert len(messages) == 1
    assert isinstance(messages[0], IncomingTrackData)
    assert (messages[0].peer_id, messages[0].track.id, messages[0].data) == ("p", "t", b"\x01")


async def test_receive_raises_on_abnormal_close() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv(decode=False)
        await ws.send(b"\x0a\x00")
        await ws.close(1011, "boom")

    async with local_server(handler) as url, Agent("a", "r", "t", url).connect() as session:
        with pytest.raises(ConnectionClosedError):
            async for _ in session.receive():
                pass


async def test_agent_auth_error_carries_close_reason() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv(decode=False)
        await ws.close(1008, "peer not found")

    async with local_server(handler) as url:
        with pytest.raises(AgentAuthError) as caught:
            async with Agent("a", "r", "bad", url).connect():
                pass
    assert caught.value.reason == "peer not found"


async def _notifier_session(frames_after_subscribe: list[bytes]) -> list[Any]:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv(decode=False)
        await ws.send(b"\x32\x00")
        await ws.recv(decode=False)
        await ws.send(b"\x4a\x02\x08\x01")
        for frame in frames_after_subscribe:
            await ws.send(frame)
        await ws.close()

    received: list[Any] = []
    async with local_server(handler) as url:
        notifier = FishjamNotifier(url, "m")

        @notifier.on_server_notification
        async def on_notification(notification: Any) -> None:
            received.append(notification)

        task = asyncio.create_task(notifier.connect())
        await asyncio.wait_for(notifier.wait_ready(), 5)
        await asyncio.wait_for(task, 5)
    return received


async def test_notifier_dispatches_to_async_handler_and_unwraps_batches() -> None:
    created = ServerMessage(room_created={"room_id": "r"})
    batch = ServerMessage(
        notification_batch={
            "notifications": [
                ServerMessage(peer_added={"room_id": "r", "peer_id": "p", "peer_type": 1}),
                ServerMessage(authenticated={}),
            ]
        }
    )
    received = await _notifier_session([created.SerializeToString(), batch.SerializeToString()])
    assert received == [
        ServerMessageRoomCreated(room_id="r"),
        ServerMessagePeerAdded(room_id="r", peer_id="p", peer_type=ServerMessagePeerType.PEER_TYPE_WEBRTC),
    ]


@pytest.mark.parametrize("reason", ["invalid token", "Invalid token"])
async def test_notifier_bad_token(reason: str) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv(decode=False)
        await ws.close(1000, reason)

    async with local_server(handler) as url:
        with pytest.raises(RuntimeError, match="^Invalid management token$"):
            await FishjamNotifier(url, "bad").connect()


async def test_notifier_requires_authenticated_first() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv(decode=False)
        await ws.send(ServerMessage(room_created={"room_id": "r"}).SerializeToString())
        await asyncio.sleep(1)

    async with local_server(handler) as url:
        with pytest.raises(RuntimeError, match="Authenticated"):
            await FishjamNotifier(url, "m").connect()
