"""Parrot as a Pipecat bot: repeats each utterance after the speaker stops, stops when spoken over.

The same behaviour as ``examples/parrot.py``, built the way Pipecat bots are: a pipeline of
``FishjamTransport.input()``, one processor and ``FishjamTransport.output()``, all offline (no
cloud keys). The transport turns shoal's voice activity into Pipecat's VAD frames; the
processor keeps each utterance (with 300 ms of pre-roll), answers with it as TTS audio when the
speaker stops, and broadcasts an interruption when someone speaks while the bot is talking
(the transport then drops what the server still has queued). "Talking" is Pipecat's
``BotStartedSpeakingFrame``/``BotStoppedSpeakingFrame``, which the transport times by the
server's playout events.

Run against a shoal server (``scripts/serve.sh`` prints the URL and token); needs
``pip install 'shoal[pipecat]'``:

    python examples/pipecat_parrot.py --url http://127.0.0.1:5002 --token TOKEN [--room ROOM_ID]

Without ``--room`` it creates a room and prints a peer token to join it with. It prints one
line per event (``ready``, ``heard``, ``repeating``, ``interrupted``) as JSON, like parrot.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from typing import Any

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from fishjam import AgentOptions, AgentOutputOptions, FishjamClient
from fishjam.integrations.pipecat import FishjamParams, FishjamTransport

RATE = 16000
BYTES_PER_S = RATE * 2
PRE_ROLL_S = 0.3
HANGOVER_S = 0.5  # the server reports silence this long after the last loud packet
KEEP_AFTER_S = 0.1
MIN_UTTERANCE_S = 0.2
MAX_UTTERANCE_S = 60.0


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


class ParrotProcessor(FrameProcessor):
    """Keeps what each participant says between VAD start and stop; repeats the loudest utterance."""

    def __init__(self) -> None:
        super().__init__(name="parrot")
        self._recent: dict[str, deque[bytes]] = {}
        self._utterances: dict[str, bytearray] | None = None
        self._bot_speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, UserAudioRawFrame):
            self._audio(frame.user_id, frame.audio)
            return  # consumed: nothing after the parrot wants participants' audio
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            if self._bot_speaking:
                await self.broadcast_interruption()
                say("interrupted")
            self._utterances = {user: bytearray(b"".join(recent)) for user, recent in self._recent.items()}
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            await self._repeat()
        await self.push_frame(frame, direction)

    def _audio(self, user: str, pcm: bytes) -> None:
        self._recent.setdefault(user, deque(maxlen=int(PRE_ROLL_S * 50))).append(pcm)
        if self._utterances is not None:
            utterance = self._utterances.setdefault(user, bytearray())
            utterance += pcm
            excess = len(utterance) - int(MAX_UTTERANCE_S * BYTES_PER_S)
            if excess > 0:
                del utterance[: excess + excess % 2]

    async def _repeat(self) -> None:
        utterances, self._utterances = self._utterances or {}, None
        if not utterances:
            return
        loudest = max(utterances.values(), key=lambda pcm: float(np.abs(np.frombuffer(pcm[: len(pcm) // 2 * 2], np.int16)).mean() if len(pcm) > 1 else 0.0))
        cut = int((HANGOVER_S - KEEP_AFTER_S) * BYTES_PER_S)
        audio = bytes(loudest[: max(0, len(loudest) - cut) // 2 * 2])
        seconds = len(audio) / BYTES_PER_S
        say("heard", seconds=round(seconds, 3))
        if seconds < MIN_UTTERANCE_S:
            return
        await self.push_frame(TTSStartedFrame())
        await self.push_frame(TTSAudioRawFrame(audio=audio, sample_rate=RATE, num_channels=1))
        await self.push_frame(TTSStoppedFrame())
        say("repeating", seconds=round(seconds, 3))


async def run_bot(url: str, token: str, room_id: str) -> None:
    client = FishjamClient(url, token)
    options = AgentOptions(output=AgentOutputOptions(audio_sample_rate=RATE))
    agent = await asyncio.to_thread(client.create_agent, room_id, options)
    transport = FishjamTransport(
        agent,
        FishjamParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE, track_metadata={"name": "pipecat-parrot"}),
        management_token=token,
    )
    worker = PipelineWorker(
        Pipeline([transport.input(), ParrotProcessor(), transport.output()]),
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )

    @worker.event_handler("on_pipeline_started")
    async def _started(worker: PipelineWorker, frame: Frame) -> None:
        track = transport.track
        if not transport.server_playout_events:
            logger.warning("this server sends no playout events: bot speech is timed by local pacing")
        say("ready", agent_id=agent.id, track_id=track.id if track else None)

    @transport.event_handler("on_participant_joined")
    async def _joined(transport: FishjamTransport, peer_id: str) -> None:
        say("joined", peer_id=peer_id)

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the server's HTTP URL")
    parser.add_argument("--token", required=True, help="the management token")
    parser.add_argument("--room", help="an existing room id (default: a new room)")
    parser.add_argument("--log-level", default="WARNING", help="Pipecat's log level (default WARNING)")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    room_id = args.room
    if room_id is None:
        client = FishjamClient(args.url, args.token)
        room = client.create_room()
        _, peer_token = client.create_peer(room.id)
        room_id = room.id
        say("room", room_id=room_id, peer_token=peer_token)
    try:
        asyncio.run(run_bot(args.url, args.token, room_id))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
