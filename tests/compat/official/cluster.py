"""The official SDK against a shoal cluster (tests/cluster/test_cluster_official.py).

``setup`` creates a room, a WebRTC peer and an agent through the node at ``url``.
``agent`` connects that agent to the node at ``agent_url`` (not the room's owner), records
what it hears until ``hear_s`` seconds of audio arrived, then publishes the PCM in
``speak`` (16 kHz mono) and stays connected ``hold_s`` seconds so the participant hears it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from pathlib import Path

from fishjam.agent import Agent, OutgoingAudioTrackOptions
from fishjam.events import TrackEncoding

from _scenario import Params, Result, client, main


def setup(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    peer, peer_token = api.create_peer(room.id)
    agent = api.create_agent(room.id)
    return {
        "room_id": room.id,
        "peer_id": peer.id,
        "peer_token": peer_token,
        "agent_id": agent.id,
        "agent_token": agent._token,
        "agent_socket_base": agent._fishjam_url,  # from peer_websocket_url: the owner node
    }


async def agent(params: Params) -> Result:
    speaking = await asyncio.to_thread(Path(params["speak"]).read_bytes)
    session_agent = Agent(params["agent_id"], params["room_id"], params["agent_token"], params["agent_url"])
    heard: list[bytes] = []
    tracks: set[str] = set()
    enough = asyncio.Event()
    async with session_agent.connect() as session:
        async def listen() -> None:
            async for message in session.receive():
                heard.append(message.data)
                tracks.add(message.track.id)
                if sum(len(chunk) for chunk in heard) >= params["hear_s"] * 32000:
                    enough.set()

        listening = asyncio.create_task(listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enough.wait(), 20)
        options = OutgoingAudioTrackOptions(encoding=TrackEncoding.TRACK_ENCODING_PCM16, sample_rate=16000, channels=1)
        track = await session.add_track(options)
        for start in range(0, len(speaking), 32000):
            await track.send_chunk(speaking[start:start + 32000])
        await asyncio.sleep(params["hold_s"])
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    return {"heard": base64.b64encode(b"".join(heard)).decode(), "tracks": sorted(tracks), "track_id": track.id}


if __name__ == "__main__":
    main({"setup": setup, "agent": agent})
