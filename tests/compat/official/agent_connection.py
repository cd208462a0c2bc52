"""Agents created and connected through the official SDK (agents.md §1, rest-api.md §8.3)."""

from __future__ import annotations

import asyncio
import time

from fishjam import AgentOptions, AgentOutputOptions, FishjamClient
from fishjam.agent import Agent, AgentAuthError, AgentSession, OutgoingAudioTrackOptions
from websockets.exceptions import ConnectionClosed

from _scenario import Params, Result, client, main, poll


def _agent(api: FishjamClient, room_id: str, agent_id: str) -> Result | None:
    return next((p.to_dict() for p in api.get_room(room_id).peers if p.id == agent_id), None)


async def _status_after_leaving(api: FishjamClient, room_id: str, agent_id: str) -> Result:
    """Poll until the agent is reported disconnected (at most 2 s); report how long that took."""
    left = time.monotonic()

    def status() -> str | None:
        peer = _agent(api, room_id, agent_id)
        return peer["status"] if peer else None

    await poll(lambda: status() != "connected", timeout=2)
    return {"status": status(), "after_s": time.monotonic() - left}


async def create(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    default = api.create_agent(room.id)
    options = AgentOptions(output=AgentOutputOptions(audio_sample_rate=24000), subscribe_mode="manual")
    custom = api.create_agent(room.id, options)
    peers = {p.id: p.to_dict() for p in api.get_room(room.id).peers}
    api.delete_peer(room.id, default.id)
    api.delete_peer(room.id, custom.id)
    after_delete = len(api.get_room(room.id).peers)
    try:
        async with default.connect():
            deleted_connects: Result = {"raised": None}
    except AgentAuthError as exc:
        deleted_connects = {"raised": type(exc).__name__, "reason": exc.reason}
    api.delete_room(room.id)
    return {
        "default": peers[default.id],
        "custom": peers[custom.id],
        "peers_after_delete": after_delete,
        "deleted_agent_connects": deleted_connects,
    }


async def connect_and_leave(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    agent = api.create_agent(room.id)
    before = _agent(api, room.id, agent.id)
    async with agent.connect():
        inside = [p.to_dict() for p in api.get_room(room.id).peers]
    after = await _status_after_leaving(api, room.id, agent.id)
    delete = api.delete_peer(room.id, agent.id)
    api.delete_room(room.id)
    return {"agent_id": agent.id, "before": before, "inside": inside, "after": after, "delete": repr(delete)}


async def fake_token(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    agent = api.create_agent(room.id)
    try:
        async with Agent("fake-id", room.id, "fake-token", agent._fishjam_url).connect():
            result: Result = {"raised": None}
    except AgentAuthError as exc:
        result = {"raised": type(exc).__name__, "reason": exc.reason}
    result["real_agent_status"] = (_agent(api, room.id, agent.id) or {}).get("status")
    api.delete_room(room.id)
    return result


async def _publish_and_list(api: FishjamClient, room_id: str, agent_id: str, session: AgentSession) -> Result:
    track = await session.add_track(OutgoingAudioTrackOptions(metadata={"type": "microphone"}))
    await poll(lambda: (_agent(api, room_id, agent_id) or {}).get("tracks"), timeout=5)
    return {"track_id": track.id, "peer": _agent(api, room_id, agent_id)}


async def reconnect(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    agent = api.create_agent(room.id)
    sessions = []
    for _ in range(2):
        async with agent.connect() as session:
            published = await _publish_and_list(api, room.id, agent.id, session)
        sessions.append({**published, "after": await _status_after_leaving(api, room.id, agent.id)})
    api.delete_room(room.id)
    return {"sessions": sessions}


async def _receive_until_closed(session: AgentSession) -> Result:
    try:
        async for _ in session.receive():
            pass
        how = "iterator ended"
    except ConnectionClosed as exc:
        how = type(exc).__name__
    ws = session._ws
    return {"how": how, "at": time.monotonic(), "code": ws.close_code, "reason": ws.close_reason}


async def replaced(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    agent = api.create_agent(room.id)
    async with agent.connect() as first:
        first_published = await _publish_and_list(api, room.id, agent.id, first)
        first_receiving = asyncio.create_task(_receive_until_closed(first))
        await asyncio.sleep(0.2)
        second_connected_at = time.monotonic()
        async with agent.connect() as second:
            done, _ = await asyncio.wait({first_receiving}, timeout=3)
            first_end = first_receiving.result() if done else None
            await asyncio.sleep(0.3)
            peers = [p.to_dict() for p in api.get_room(room.id).peers]
            second_open = second._ws.close_code is None
            published = await _publish_and_list(api, room.id, agent.id, second)
        if not done:
            first_receiving.cancel()
    api.delete_room(room.id)
    return {
        "agent_id": agent.id,
        "first_published": first_published,
        "first_end": first_end,
        "first_ended_after_s": first_end["at"] - second_connected_at if first_end else None,
        "peers": peers,
        "second_open": second_open,
        "second_published": published,
    }


async def deleted_while_connected(params: Params) -> Result:
    """One agent is removed with delete_peer, another with delete_room, both while connected."""
    api = client(params)
    room = api.create_room()
    by_peer, by_room = api.create_agent(room.id), api.create_agent(room.id)
    async with by_peer.connect() as first, by_room.connect() as second:
        receiving = [asyncio.create_task(_receive_until_closed(s)) for s in (first, second)]
        marks = {"delete_peer": time.monotonic()}
        api.delete_peer(room.id, by_peer.id)
        done, _ = await asyncio.wait({receiving[0]}, timeout=3)
        first_end = receiving[0].result() if done else None
        peers_left = [p.id for p in api.get_room(room.id).peers]
        marks["delete_room"] = time.monotonic()
        api.delete_room(room.id)
        done, _ = await asyncio.wait({receiving[1]}, timeout=3)
        second_end = receiving[1].result() if done else None
        for task in receiving:
            task.cancel()
    return {
        "by_room_id": by_room.id,
        "marks": marks,
        "peer_deleted_end": first_end,
        "peers_left": peers_left,
        "room_deleted_end": second_end,
    }


if __name__ == "__main__":
    main({
        "create": create, "connect_and_leave": connect_and_leave, "fake_token": fake_token,
        "reconnect": reconnect, "replaced": replaced, "deleted_while_connected": deleted_while_connected,
    })
