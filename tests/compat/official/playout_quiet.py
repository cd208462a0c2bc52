"""An official agent plays, is interrupted and listens in a room where another agent asked
for shoal's playout events (docs/protocol-extensions.md); it never asks, so it gets none.

The scenario reports what the official SDK yielded; the pytest side compares the server's
count of playout events sent with what the agent that asked received.
"""

from __future__ import annotations

import asyncio
import math
import struct

from fishjam.agent import OutgoingAudioTrackOptions

from _scenario import Params, Result, client, main


async def quiet(params: Params) -> Result:
    api = client(params)
    agent = api.create_agent(params["room_id"])
    kinds: dict[str, int] = {}
    pcm = b"".join(struct.pack("<h", round(8000 * math.sin(2 * math.pi * 330 * i / 16000))) for i in range(16000))
    async with agent.connect() as session:
        async def listen() -> None:
            async for message in session.receive():
                name = type(message).__name__
                kinds[name] = kinds.get(name, 0) + 1

        listener = asyncio.create_task(listen())
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
        for start in range(0, len(pcm), 640):
            await track.send_chunk(pcm[start:start + 640])
        await asyncio.sleep(0.4)
        await track.interrupt()
        await asyncio.sleep(0.6)
        listener.cancel()
    return {"kinds": kinds}


if __name__ == "__main__":
    main({"quiet": quiet})
