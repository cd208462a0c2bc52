"""Parrot: an agent that repeats each utterance after the speaker stops, and stops when spoken over.

It uses shoal's two agent extensions (docs/protocol-extensions.md): voice activity says when
a participant starts and stops speaking, playout events say whether the parrot is still
talking. While a participant speaks, their audio is kept (with the 300 ms before speech was
detected, so the first syllable is not cut); when they fall silent, it is played back
without the hangover's silence. A participant who starts speaking while the parrot talks
interrupts it at once: what it still had queued is dropped.

Run against a shoal server (``scripts/serve.sh`` prints the URL and token):

    python examples/parrot.py --url http://127.0.0.1:5002 --token TOKEN [--room ROOM_ID]

Without ``--room`` it creates a room and prints a peer token to join it with. It prints one
line per event (``ready``, ``heard``, ``repeating``, ``interrupted``) as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from fishjam import AgentOptions, AgentOutputOptions, FishjamClient
from fishjam.agent import (
    AgentSession,
    IncomingTrackData,
    IncomingVoiceActivity,
    OutgoingAudioTrackOptions,
    OutgoingTrack,
)

RATE = 16000
BYTES_PER_S = RATE * 2
PRE_ROLL_S = 0.3
"""Audio kept from before speech was detected (the detector needs 60 ms of speech to decide)."""
HANGOVER_S = 0.5
"""shoal reports silence this long after the last loud packet: that much silence ends each utterance."""
KEEP_AFTER_S = 0.1
"""Of that trailing silence, the parrot keeps this much."""
MIN_UTTERANCE_S = 0.2


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


class Parrot:
    """One agent session: hears everyone, repeats each utterance on its own track."""

    def __init__(self, session: AgentSession, track: OutgoingTrack, report: Callable[..., None] = say) -> None:
        """``report(event, **fields)`` is told what the parrot does (default: a JSON line on stdout)."""
        self.session = session
        self.track = track
        self._say = report
        self._recent: dict[str, deque[bytes]] = {}  # per participant: the last PRE_ROLL_S of audio
        self._speaking: dict[str, bytearray] = {}  # per participant speaking now: the utterance so far
        self.max_utterance_s = 60.0
        """A longer utterance keeps only its end (memory stays bounded)."""

    async def run(self) -> None:
        async for message in self.session.receive():
            if isinstance(message, IncomingTrackData):
                self._audio(message.peer_id, message.data)
            elif isinstance(message, IncomingVoiceActivity):
                await self._activity(message)

    def _audio(self, peer_id: str, pcm: bytes) -> None:
        recent = self._recent.setdefault(peer_id, deque(maxlen=int(PRE_ROLL_S * 50)))  # 20 ms frames
        recent.append(pcm)
        utterance = self._speaking.get(peer_id)
        if utterance is not None:
            utterance += pcm
            excess = len(utterance) - int(self.max_utterance_s * BYTES_PER_S)
            if excess > 0:
                del utterance[: excess + excess % 2]

    async def _activity(self, event: IncomingVoiceActivity) -> None:
        if event.speech:
            if self.track.queued_duration > 0:  # spoken over: stop talking now
                await self.track.interrupt()
                self._say("interrupted", peer_id=event.peer_id)
            self._speaking[event.peer_id] = bytearray(b"".join(self._recent.get(event.peer_id, ())))
            return
        utterance = self._speaking.pop(event.peer_id, None)
        if utterance is None:
            return
        cut = int((HANGOVER_S - KEEP_AFTER_S) * BYTES_PER_S)
        audio = bytes(utterance[: max(0, len(utterance) - cut) // 2 * 2])
        seconds = len(audio) / BYTES_PER_S
        self._say("heard", peer_id=event.peer_id, seconds=round(seconds, 3))
        if seconds >= MIN_UTTERANCE_S:
            await self.track.send_chunk(audio)
            self._say("repeating", peer_id=event.peer_id, seconds=round(seconds, 3))


async def run_parrot(url: str, token: str, room_id: str) -> None:
    """Join ``room_id`` as an agent and repeat what is said until cancelled."""
    client = FishjamClient(url, token)
    options = AgentOptions(output=AgentOutputOptions(audio_sample_rate=RATE))
    agent = await asyncio.to_thread(client.create_agent, room_id, options)
    async with agent.connect(playout_events=True, vad_events=True) as session:
        if not (session.playout_events and session.vad_events):
            raise SystemExit("this server sends no voice activity or playout events (the parrot needs shoal)")
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=RATE, metadata={"name": "parrot"}))
        say("ready", agent_id=agent.id, track_id=track.id)
        await Parrot(session, track).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the server's HTTP URL")
    parser.add_argument("--token", required=True, help="the management token")
    parser.add_argument("--room", help="an existing room id (default: a new room)")
    args = parser.parse_args()
    room_id = args.room
    if room_id is None:
        client = FishjamClient(args.url, args.token)
        room = client.create_room()
        _, peer_token = client.create_peer(room.id)
        room_id = room.id
        say("room", room_id=room_id, peer_token=peer_token)
    try:
        asyncio.run(run_parrot(args.url, args.token, room_id))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
