"""Server notifications seen by an official ``FishjamNotifier`` (notifications.md §3, §5).

The notifier is ready before the room exists, so it cannot know the room in advance: every
notification it receives is recorded and the pytest side filters by room id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fishjam import FishjamNotifier, RoomOptions
from fishjam.agent import OutgoingAudioTrackOptions

from _scenario import Notifications, Params, PeerSocket, Result, client, main


def _is(kind: str, **fields: str) -> Callable[[Result], bool]:
    return lambda e: e["type"] == kind and all(e.get(k) == v for k, v in fields.items())


async def peer_lifecycle(params: Params) -> Result:
    """Create a room and a WebRTC peer, connect its socket, then delete (the peer and) the room."""
    api = client(params)
    marks: dict[str, float] = {}
    async with Notifications(params) as notes:
        options = RoomOptions(webhook_url=params.get("webhook_url"), batch_webhook_notifications=params.get("batch", False))
        room = api.create_room(options)
        peer, token = api.create_peer(room.id)
        async with PeerSocket(params["url"], token) as socket:
            await notes.wait_for(_is("PeerConnected", peer_id=peer.id), timeout=5)
            status = next(p.status.value for p in api.get_room(room.id).peers if p.id == peer.id)
            if params["delete_peer"]:
                marks["delete_peer"] = time.monotonic()
                api.delete_peer(room.id, peer.id)
            marks["delete_room"] = time.monotonic()
            api.delete_room(room.id)
            await notes.wait_for(_is("RoomDeleted", room_id=room.id), timeout=15)
            await socket.wait_closed(timeout=2)
    return {
        "room_id": room.id,
        "peer_id": peer.id,
        "status_while_connected": status,
        "peer_socket": socket.report(),
        "marks": marks,
        "events": notes.events,
    }


async def agent_lifecycle(params: Params) -> Result:
    """Connect an agent, publish a track, leave, then delete the room."""
    api = client(params)
    marks: dict[str, float] = {}
    async with Notifications(params) as notes:
        room = api.create_room()
        agent = api.create_agent(room.id)
        async with agent.connect() as session:
            marks["connected"] = time.monotonic()
            await notes.wait_for(_is("PeerMetadataUpdated", peer_id=agent.id), timeout=5)
            status = next(p.status.value for p in api.get_room(room.id).peers if p.id == agent.id)
            track = await session.add_track(OutgoingAudioTrackOptions(metadata={"type": "microphone"}))
            await notes.wait_for(_is("TrackAdded", peer_id=agent.id), timeout=5)
            marks["leaving"] = time.monotonic()
        marks["left"] = time.monotonic()
        await notes.wait_for(_is("PeerDisconnected", peer_id=agent.id), timeout=5)
        api.delete_room(room.id)
        await notes.wait_for(_is("RoomDeleted", room_id=room.id), timeout=15)
    return {
        "room_id": room.id,
        "agent_id": agent.id,
        "track_id": track.id,
        "status_while_connected": status,
        "marks": marks,
        "events": notes.events,
    }


async def bad_token(params: Params) -> Result:
    notifier = FishjamNotifier(params["url"], "not-the-management-token")
    notifier.on_server_notification(lambda notification: None)
    try:
        await asyncio.wait_for(notifier.connect(), timeout=10)
    except Exception as exc:  # noqa: BLE001 - recording the exception is the point
        return {"raised": type(exc).__name__, "message": str(exc)}
    return {"raised": None}


if __name__ == "__main__":
    main({"peer_lifecycle": peer_lifecycle, "agent_lifecycle": agent_lifecycle, "bad_token": bad_token})
