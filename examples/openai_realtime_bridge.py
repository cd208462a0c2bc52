"""Bridge a room to the OpenAI Realtime API: participants talk to a speech-to-speech model.

The agent hears the room at 24 kHz and appends it to the model's input buffer; the model's
audio deltas go to the agent's 24 kHz track as they come (faster than real time: the server
queues and paces them). Turn detection is the model's (``server_vad``). When it reports that
the caller started speaking while the answer is still playing, the bridge interrupts the
track (the server drops what is queued) and tells the model how much of the answer was
actually heard (``conversation.item.truncate`` with ``audio_end_ms``), so the conversation
history holds what the caller heard, not what was generated. That figure comes from shoal's
playout events; elsewhere from local pacing.

    OPENAI_API_KEY=... python examples/openai_realtime_bridge.py --url http://127.0.0.1:5002 --token TOKEN --room ROOM

It prints one JSON line per event (``ready``, ``answering``, ``interrupted``, ``answered``).
Best with one participant: everyone's audio goes into the one input buffer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from fishjam import AgentOptions, AgentOutputOptions, FishjamClient
from fishjam.agent import AgentSession, IncomingTrackData, OutgoingAudioTrackOptions, OutgoingTrack

RATE = 24000
BYTES_PER_MS = RATE * 2 // 1000
DEFAULT_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


class Answer:
    """The model's audio item being played: how much was sent, to work out how much was heard."""

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id
        self.sent_ms = 0.0


async def room_to_model(session: AgentSession, model: ClientConnection) -> None:
    async for message in session.receive():
        if isinstance(message, IncomingTrackData):
            await model.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(message.data).decode()}))


async def model_to_room(model: ClientConnection, track: OutgoingTrack) -> None:
    answer: Answer | None = None
    async for raw in model:
        event = json.loads(raw)
        kind = event.get("type")
        if kind == "response.output_audio.delta":
            if answer is None or answer.item_id != event["item_id"]:
                answer = Answer(event["item_id"])
                say("answering", item_id=answer.item_id)
            pcm = base64.b64decode(event["delta"])
            await track.send_chunk(pcm)
            answer.sent_ms += len(pcm) / BYTES_PER_MS
        elif kind == "input_audio_buffer.speech_started" and answer is not None:
            queued_ms = track.queued_duration * 1000
            if queued_ms > 0:
                await track.interrupt()
                heard_ms = max(0, round(answer.sent_ms - queued_ms))
                await model.send(json.dumps({
                    "type": "conversation.item.truncate", "item_id": answer.item_id,
                    "content_index": 0, "audio_end_ms": heard_ms,
                }))
                say("interrupted", item_id=answer.item_id, audio_end_ms=heard_ms)
            answer = None
        elif kind == "response.done":
            say("answered", status=event.get("response", {}).get("status"))
        elif kind == "error":
            say("model_error", error=event.get("error"))


async def run_bridge(url: str, token: str, room_id: str, model_url: str, api_key: str) -> None:
    client = FishjamClient(url, token)
    agent = await asyncio.to_thread(client.create_agent, room_id, AgentOptions(output=AgentOutputOptions(audio_sample_rate=RATE)))
    async with (
        agent.connect(playout_events=True) as session,
        connect(model_url, additional_headers={"Authorization": f"Bearer {api_key}"}, max_size=2**24) as model,
    ):
        await model.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime",
            "instructions": "You are a helpful voice assistant in a call. Keep answers short.",
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": RATE}, "turn_detection": {"type": "server_vad"}},
                "output": {"format": {"type": "audio/pcm", "rate": RATE}},
            },
        }}))
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=RATE, metadata={"name": "openai-realtime"}))
        say("ready", agent_id=agent.id, track_id=track.id, playout_events=session.playout_events)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(room_to_model(session, model))
            tasks.create_task(model_to_room(model, track))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the shoal (or Fishjam) server's HTTP URL")
    parser.add_argument("--token", required=True, help="the management token")
    parser.add_argument("--room", required=True, help="the room the agent joins")
    parser.add_argument("--model-url", default=DEFAULT_URL, help=f"the Realtime API WebSocket URL (default {DEFAULT_URL})")
    args = parser.parse_args()
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        sys.exit("set OPENAI_API_KEY")
    try:
        asyncio.run(run_bridge(args.url, args.token, args.room, args.model_url, api_key))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
