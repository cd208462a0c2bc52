"""Server notifications for agent sessions: crash reports and agent tracks (our SDK's notifier)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fishjam.events import (
    ServerMessagePeerConnected,
    ServerMessagePeerCrashed,
    ServerMessagePeerDisconnected,
    ServerMessageTrackAdded,
    ServerMessageTrackRemoved,
)
from tests.support.agent_client import RawAgent, create_room
from tests.support.notify import collecting, wait_for
from tests.support.server import ServerProcess


@pytest.fixture
async def notifications(server: ServerProcess) -> AsyncIterator[list[object]]:
    async with collecting(server) as received:
        yield received


async def test_a_protocol_violation_is_reported_as_peer_crashed_then_disconnected(
    server: ServerProcess, notifications: list[object]
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    await agent.send_audio("0123456789abcdef0123456789abcdef", b"\0\0")
    await agent.wait_closed()
    crashed = await wait_for(notifications, lambda n: isinstance(n, ServerMessagePeerCrashed) and n.peer_id == agent.peer_id)
    assert isinstance(crashed, ServerMessagePeerCrashed)
    assert "unknown track" in crashed.reason and crashed.room_id == room
    await wait_for(notifications, lambda n: isinstance(n, ServerMessagePeerDisconnected) and n.peer_id == agent.peer_id)
    kinds = (ServerMessagePeerConnected, ServerMessagePeerCrashed, ServerMessagePeerDisconnected)
    order = [
        next(i for i, kind in enumerate(kinds) if isinstance(n, kind))
        for n in notifications
        if isinstance(n, kinds) and n.peer_id == agent.peer_id
    ]
    assert order == [0, 1, 2]


async def test_agent_tracks_are_announced_and_removed_when_the_agent_leaves(
    server: ServerProcess, notifications: list[object]
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    await wait_for(notifications, lambda n: isinstance(n, ServerMessagePeerConnected) and n.peer_id == agent.peer_id)
    track = await agent.add_track(metadata='{"type":"microphone"}')
    added = await wait_for(notifications, lambda n: isinstance(n, ServerMessageTrackAdded) and n.track.id == track)
    assert isinstance(added, ServerMessageTrackAdded)
    assert (added.peer_id, added.track.metadata) == (agent.peer_id, '{"type":"microphone"}')
    await agent.close()
    await wait_for(notifications, lambda n: isinstance(n, ServerMessageTrackRemoved) and n.track.id == track)
    await wait_for(notifications, lambda n: isinstance(n, ServerMessagePeerDisconnected) and n.peer_id == agent.peer_id)
