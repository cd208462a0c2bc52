"""Bridge a room to the Gemini Live API: participants talk to a native-audio model.

The agent hears the room at 16 kHz (Gemini's input rate) and streams it as ``realtimeInput``;
the model answers with 24 kHz PCM, which goes to the agent's 24 kHz track as it comes (faster
than real time: the server queues and paces it). Turn detection is Gemini's (automatic
activity detection). When Gemini reports the answer ``interrupted`` (the caller spoke over
it), the bridge interrupts the track, so the server drops what it still has queued and the
caller hears the bot stop at once, not seconds of already-generated audio later.

    GEMINI_API_KEY=... python examples/gemini_live_bridge.py --url http://127.0.0.1:5002 --token TOKEN --room ROOM

It prints one JSON line per event (``ready``, ``answering``, ``interrupted``, ``answered``).
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

IN_RATE = 16000
OUT_RATE = 24000
DEFAULT_MODEL = "models/gemini-live-2.5-flash-preview"
DEFAULT_URL = "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


async def room_to_model(session: AgentSession, model: ClientConnection) -> None:
    async for message in session.receive():
        if isinstance(message, IncomingTrackData):
            await model.send(json.dumps({"realtimeInput": {"audio": {
                "mimeType": f"audio/pcm;rate={IN_RATE}", "data": base64.b64encode(message.data).decode(),
            }}}))


async def model_to_room(model: ClientConnection, track: OutgoingTrack) -> None:
    answering = False
    async for raw in model:
        content = json.loads(raw).get("serverContent")
        if content is None:
            continue
        if content.get("interrupted"):
            if track.queued_duration > 0:
                dropped_s = track.queued_duration
                await track.interrupt()
                say("interrupted", dropped_ms=round(dropped_s * 1000))
            answering = False
        for part in content.get("modelTurn", {}).get("parts", []):
            blob = part.get("inlineData")
            if blob and blob.get("mimeType", "").startswith("audio/pcm"):
                if not answering:
                    answering = True
                    say("answering")
                await track.send_chunk(base64.b64decode(blob["data"]))
        if content.get("turnComplete"):
            answering = False
            say("answered")


async def run_bridge(url: str, token: str, room_id: str, model_url: str, model_name: str, api_key: str) -> None:
    client = FishjamClient(url, token)
    agent = await asyncio.to_thread(client.create_agent, room_id, AgentOptions(output=AgentOutputOptions(audio_sample_rate=IN_RATE)))
    separator = "&" if "?" in model_url else "?"
    async with (
        agent.connect(playout_events=True) as session,
        connect(f"{model_url}{separator}key={api_key}", max_size=2**24) as model,
    ):
        await model.send(json.dumps({"setup": {
            "model": model_name,
            "generationConfig": {"responseModalities": ["AUDIO"]},
            "systemInstruction": {"parts": [{"text": "You are a helpful voice assistant in a call. Keep answers short."}]},
        }}))
        reply = json.loads(await model.recv())
        if "setupComplete" not in reply:
            raise SystemExit(f"Gemini did not accept the setup: {reply}")
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=OUT_RATE, metadata={"name": "gemini-live"}))
        say("ready", agent_id=agent.id, track_id=track.id, playout_events=session.playout_events)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(room_to_model(session, model))
            tasks.create_task(model_to_room(model, track))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the shoal (or Fishjam) server's HTTP URL")
    parser.add_argument("--token", required=True, help="the management token")
    parser.add_argument("--room", required=True, help="the room the agent joins")
    parser.add_argument("--model-url", default=DEFAULT_URL, help="the Live API WebSocket URL (without the key)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"the model (default {DEFAULT_MODEL})")
    args = parser.parse_args()
    api_key = os.environ.get("GEMINI_API_KEY")
    if not api_key:
        sys.exit("set GEMINI_API_KEY")
    try:
        asyncio.run(run_bridge(args.url, args.token, args.room, args.model_url, args.model, api_key))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
