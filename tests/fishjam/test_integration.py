"""Our SDK against a real shoal server (the session-wide ``server`` fixture).

These mirror what the official SDK's own test-suite expects from a Fishjam server:
room and peer CRUD, agent connection and rejection, and the order of notifications.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from websockets.asyncio.client import connect

from fishjam import (
    AgentOptions,
    FishjamClient,
    FishjamNotifier,
    InvalidFishjamCredentialsError,
    PeerMetadata,
    PeerOptions,
    PeerOptionsVapi,
    Room,
    RoomOptions,
)
from fishjam._proto import peer_notifications_pb2
from fishjam.agent import AgentAuthError, OutgoingAudioTrackOptions
from fishjam.api._models import Peer, Subscriptions
from fishjam.errors import ConflictError, InternalServerError, NotFoundError, UnauthorizedError
from fishjam.events import (
    ServerMessagePeerAdded,
    ServerMessagePeerConnected,
    ServerMessagePeerDeleted,
    ServerMessagePeerDisconnected,
    ServerMessagePeerMetadataUpdated,
    ServerMessageRoomCreated,
    ServerMessageRoomDeleted,
    TrackEncoding,
)
from fishjam.peer import PeerStatus, PeerType, SubscribeMode
from fishjam.room import RoomConfig, RoomType, VideoCodec
from tests.support.server import ServerProcess

PEER_LIFECYCLE: list[type] = [
    ServerMessageRoomCreated,
    ServerMessagePeerAdded,
    ServerMessagePeerConnected,
    ServerMessagePeerDisconnected,
    ServerMessagePeerDeleted,
    ServerMessageRoomDeleted,
]


@pytest.fixture
def client(server: ServerProcess) -> Iterator[FishjamClient]:
    api = FishjamClient(server.url, server.token)
    yield api
    for room in api.get_all_rooms():
        try:
            api.delete_room(room.id)
        except NotFoundError:
            pass


@pytest.fixture
def room(client: FishjamClient) -> Room:
    return client.create_room()


class NotificationLog:
    """Collects notifications and waits for an ordered subsequence of them."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def add(self, notification: Any) -> None:
        self.items.append(notification)
        self._changed.set()

    async def wait_for_sequence(self, room_id: str, expected: Sequence[type]) -> None:
        async def _wait() -> None:
            while True:
                if _is_subsequence(
                    expected, [n for n in self.items if getattr(n, "room_id", None) == room_id]
                ):
                    return
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(_wait(), 10)
        except TimeoutError:
            seen = [type(n).__name__ for n in self.items if getattr(n, "room_id", None) == room_id]
            pytest.fail(f"expected {[t.__name__ for t in expected]} in order, saw {seen}")


def _is_subsequence(expected: Sequence[type], items: list[Any]) -> bool:
    position = 0
    for item in items:
        if position < len(expected) and isinstance(item, expected[position]):
            position += 1
    return position == len(expected)


@pytest.fixture
async def notifications(server: ServerProcess) -> AsyncIterator[NotificationLog]:
    log = NotificationLog()
    notifier = FishjamNotifier(server.url, server.token)
    notifier.on_server_notification(log.add)
    task = asyncio.create_task(notifier.connect())
    await asyncio.wait_for(notifier.wait_ready(), 10)
    yield log
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass


# REST


def test_credentials(server: ServerProcess) -> None:
    FishjamClient.create_and_verify(fishjam_id=server.url, management_token=server.token)
    with pytest.raises(InvalidFishjamCredentialsError):
        FishjamClient(server.url, "wrong").check_credentials()
    with pytest.raises(UnauthorizedError):
        FishjamClient(server.url, "wrong").create_room()


def test_room_crud(client: FishjamClient) -> None:
    room = client.create_room()
    assert room.peers == []
    assert room.config == RoomConfig(
        max_peers=0,
        webhook_url=room.config.webhook_url,
        room_type=RoomType.CONFERENCE,
        video_codec=VideoCodec.H264,
    )
    assert room in client.get_all_rooms()
    assert client.get_room(room.id) == room

    client.delete_room(room.id)
    assert room.id not in [r.id for r in client.get_all_rooms()]
    for missing in (room.id, "invalid_id", "515c8b52-168b-4b39-a227-4d6b4f102a56"):
        with pytest.raises(NotFoundError):
            client.get_room(missing)
        with pytest.raises(NotFoundError):
            client.delete_room(missing)


def test_room_options_are_echoed(client: FishjamClient) -> None:
    room = client.create_room(RoomOptions(max_peers=10, video_codec="vp8", room_type="audio_only"))
    assert room.config == RoomConfig(
        max_peers=10,
        webhook_url=room.config.webhook_url,
        room_type=RoomType.AUDIO_ONLY,
        video_codec=VideoCodec.VP8,
    )
    assert room in client.get_all_rooms()


def test_peer_crud(client: FishjamClient, room: Room) -> None:
    peer, token = client.create_peer(room.id, PeerOptions(metadata={"is_test": True}))
    assert token
    expected = Peer(
        id=peer.id,
        metadata=PeerMetadata({"peer": {}, "server": {"is_test": True}}),
        status=PeerStatus.DISCONNECTED,
        subscribe_mode=SubscribeMode.AUTO,
        subscriptions=Subscriptions(peers=[], tracks=[]),
        tracks=[],
        type_=PeerType.WEBRTC,
    )
    assert peer == expected
    assert client.get_room(room.id).peers == [expected]

    refreshed = client.refresh_peer_token(room.id, peer.id)
    assert refreshed and refreshed != token

    client.delete_peer(room.id, peer.id)
    assert client.get_room(room.id).peers == []
    with pytest.raises(NotFoundError):
        client.delete_peer(room.id, "invalid_peer_id")
    with pytest.raises(NotFoundError):
        client.refresh_peer_token(room.id, "invalid_peer_id")


def test_peer_limit(client: FishjamClient) -> None:
    room = client.create_room(RoomOptions(max_peers=1))
    client.create_peer(room.id)
    with pytest.raises(ConflictError):
        client.create_peer(room.id)


def test_vapi_peer(client: FishjamClient, room: Room) -> None:
    peer = client.create_vapi_agent(room.id, PeerOptionsVapi(api_key="test_api_key", call_id="test-call-id"))
    assert peer.type_ == PeerType.VAPI


def test_manual_subscriptions(client: FishjamClient, room: Room) -> None:
    publisher, _ = client.create_peer(room.id)
    agent = client.create_agent(room.id, AgentOptions(subscribe_mode="manual"))
    client.subscribe_peer(room.id, agent.id, publisher.id)
    client.subscribe_tracks(room.id, agent.id, [])
    [subscriber] = [peer for peer in client.get_room(room.id).peers if peer.id == agent.id]
    assert subscriber.subscribe_mode == SubscribeMode.MANUAL
    assert subscriber.subscriptions.peers == [publisher.id]
    with pytest.raises(NotFoundError):
        client.subscribe_peer(room.id, "invalid_peer_id", publisher.id)


def test_livestream_tokens_are_refused_clearly_until_livestreams_exist(client: FishjamClient, room: Room) -> None:
    live = client.create_room(RoomOptions(room_type="livestream", public=True))
    assert live.config.public
    with pytest.raises(InternalServerError, match="livestreams are not implemented"):
        client.create_livestream_viewer_token(live.id)
    with pytest.raises(InternalServerError, match="livestreams are not implemented"):
        client.create_livestream_streamer_token(live.id)
    with pytest.raises(NotFoundError):
        client.create_livestream_viewer_token(room.id)
    with pytest.raises(NotFoundError):
        client.create_livestream_streamer_token(room.id)


# Agents


async def test_agent_connects_and_publishes(client: FishjamClient, room: Room) -> None:
    agent = client.create_agent(room.id)
    [peer] = client.get_room(room.id).peers
    assert (peer.id, peer.type_, peer.status) == (agent.id, PeerType.AGENT, PeerStatus.DISCONNECTED)

    async with agent.connect() as session:
        await asyncio.sleep(0.2)
        assert client.get_room(room.id).peers[0].status == PeerStatus.CONNECTED
        track = await session.add_track(
            OutgoingAudioTrackOptions(encoding=TrackEncoding.TRACK_ENCODING_PCM16, metadata={"type": "voice"})
        )
        await track.send_chunk(b"\x00\x00" * 1600)
        await track.interrupt()
        await track.remove()

    client.delete_peer(room.id, agent.id)
    assert client.get_room(room.id).peers == []


async def test_agent_with_bad_token_is_rejected(client: FishjamClient, room: Room) -> None:
    real = client.create_agent(room.id)
    fake = type(real)("fake-id", room.id, "fake-token", real._fishjam_url)
    with pytest.raises(AgentAuthError):
        async with fake.connect():
            pass


# Notifications


async def _connect_peer_socket(server: ServerProcess, token: str) -> asyncio.Task[None]:
    """Authenticate a bare WebRTC peer socket (no media), like the official tests do."""
    ready = asyncio.Event()

    async def run() -> None:
        async with connect(server.ws_url + "/socket/peer/websocket") as ws:
            auth = peer_notifications_pb2.PeerMessage(
                auth_request=peer_notifications_pb2.PeerMessage.AuthRequest(token=token)
            )
            await ws.send(auth.SerializeToString())
            await ws.recv()
            ready.set()
            async for _ in ws:
                pass

    task = asyncio.create_task(run())
    await asyncio.wait_for(ready.wait(), 10)
    return task


async def test_peer_lifecycle_notifications(
    server: ServerProcess, client: FishjamClient, notifications: NotificationLog
) -> None:
    room = client.create_room()
    peer, token = client.create_peer(room.id)
    socket = await _connect_peer_socket(server, token)
    try:
        await notifications.wait_for_sequence(room.id, PEER_LIFECYCLE[:3])
        client.delete_peer(room.id, peer.id)
        client.delete_room(room.id)
        await notifications.wait_for_sequence(room.id, PEER_LIFECYCLE)
    finally:
        socket.cancel()


async def test_room_deletion_with_connected_agent_notifies_in_order(
    client: FishjamClient, notifications: NotificationLog
) -> None:
    room = client.create_room()
    agent = client.create_agent(room.id)
    async with agent.connect():
        await notifications.wait_for_sequence(
            room.id, [*PEER_LIFECYCLE[:3], ServerMessagePeerMetadataUpdated]
        )
        client.delete_room(room.id)
        await notifications.wait_for_sequence(room.id, PEER_LIFECYCLE)
