"""Local stand-ins for the two speech-to-speech cloud APIs, speaking their documented WebSocket protocols.

The only fakes the tests use (the real services live on the internet). Both behave like the
services with server-side turn detection: they hear the caller's audio, decide speech by level
(3 loud 20 ms frames start it, 500 ms of quiet ends it), answer each utterance with a tone
streamed faster than real time (as the services do), and stop answering when the caller
speaks over the answer.

* :class:`FakeOpenAIRealtime`: ``session.update``, ``input_audio_buffer.append`` in;
  ``session.created``/``updated``, ``input_audio_buffer.speech_started``/``speech_stopped``,
  ``response.created``, ``response.output_audio.delta``/``done``, ``response.done`` out; it
  records ``conversation.item.truncate``. PCM16 at 24 kHz both ways; ``Authorization: Bearer``.
* :class:`FakeGeminiLive`: ``setup`` then ``realtimeInput.audio`` (``audio/pcm;rate=16000``) in;
  ``setupComplete`` and ``serverContent`` (``modelTurn`` parts of ``inlineData``
  ``audio/pcm;rate=24000``, ``interrupted``, ``turnComplete``) out; the key in ``?key=``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

OUT_RATE = 24000
LOUD = 1000.0  # RMS of a 20 ms frame that counts as speech
ONSET_FRAMES = 3
QUIET_FRAMES = 25  # 500 ms


class _TurnDetector:
    """Speech and silence by level, frame by frame, at the input rate."""

    def __init__(self, rate: int) -> None:
        self._frame = rate // 50
        self._pending = np.zeros(0, dtype=np.int16)
        self._loud_run = 0
        self._quiet_run = 0
        self.speaking = False
        self.frames = 0

    def feed(self, pcm: bytes) -> list[str]:
        """The changes (``"start"``/``"stop"``) this audio makes."""
        self._pending = np.concatenate([self._pending, np.frombuffer(pcm, dtype=np.int16)])
        changes = []
        while len(self._pending) >= self._frame:
            frame, self._pending = self._pending[: self._frame], self._pending[self._frame :]
            self.frames += 1
            loud = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) > LOUD
            self._loud_run = self._loud_run + 1 if loud else 0
            self._quiet_run = 0 if loud else self._quiet_run + 1
            if not self.speaking and self._loud_run >= ONSET_FRAMES:
                self.speaking = True
                changes.append("start")
            elif self.speaking and self._quiet_run >= QUIET_FRAMES:
                self.speaking = False
                changes.append("stop")
        return changes


def reply_tone(freq: float, seconds: float) -> bytes:
    t = np.arange(int(seconds * OUT_RATE)) / OUT_RATE
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16).tobytes()


class _FakeService:
    """A WebSocket server on 127.0.0.1 answering each utterance with ``replies`` in turn (Hz, seconds)."""

    in_rate = OUT_RATE

    def __init__(self, replies: list[tuple[float, float]]) -> None:
        self.replies = list(replies)
        self.received: list[dict[str, Any]] = []  # every client message but the audio
        self.interrupted = 0
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}{self.path}"

    path = "/"

    async def __aenter__(self) -> _FakeService:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=2**24)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            await self._serve(ws)
        except ConnectionClosed:
            pass  # the bridge went away (the test stops it)

    async def _serve(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    async def _stream_reply(self, ws: ServerConnection, send_chunk: Any) -> None:
        """Stream the next reply (if any is left) in 100 ms chunks, 5x faster than real time."""
        if not self.replies:
            return
        freq, seconds = self.replies.pop(0)
        audio = reply_tone(freq, seconds)
        step = OUT_RATE * 2 // 10
        for start in range(0, len(audio), step):
            await send_chunk(audio[start : start + step])
            await asyncio.sleep(0.02)


class FakeOpenAIRealtime(_FakeService):
    """OpenAI Realtime API (GA event names), server VAD on, PCM16 24 kHz."""

    path = "/v1/realtime?model=gpt-realtime"
    api_key = "test-openai-key"

    async def _serve(self, ws: ServerConnection) -> None:
        request = ws.request
        if request is None or request.headers.get("Authorization") != f"Bearer {self.api_key}":
            await ws.close(1008, "invalid_api_key")
            return
        await ws.send(json.dumps({"type": "session.created", "event_id": _id("event"), "session": {"type": "realtime"}}))
        detector = _TurnDetector(self.in_rate)
        responding: asyncio.Task[None] | None = None
        async for raw in ws:
            event = json.loads(raw)
            kind = event.get("type")
            if kind != "input_audio_buffer.append":
                self.received.append(event)
            if kind == "session.update":
                await ws.send(json.dumps({"type": "session.updated", "event_id": _id("event"), "session": event["session"]}))
            elif kind == "input_audio_buffer.append":
                for change in detector.feed(base64.b64decode(event["audio"])):
                    ms = detector.frames * 20
                    if change == "start":
                        if responding is not None and not responding.done():
                            responding.cancel()  # server VAD interrupts the response
                            self.interrupted += 1
                        await ws.send(json.dumps({"type": "input_audio_buffer.speech_started", "audio_start_ms": ms, "item_id": _id("item")}))
                    else:
                        await ws.send(json.dumps({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms, "item_id": _id("item")}))
                        responding = asyncio.create_task(self._respond(ws))

    async def _respond(self, ws: ServerConnection) -> None:
        response_id, item_id = _id("resp"), _id("item")
        await ws.send(json.dumps({"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}))

        async def delta(chunk: bytes) -> None:
            await ws.send(json.dumps({
                "type": "response.output_audio.delta", "response_id": response_id, "item_id": item_id,
                "output_index": 0, "content_index": 0, "delta": base64.b64encode(chunk).decode(),
            }))

        try:
            await self._stream_reply(ws, delta)
        except asyncio.CancelledError:
            await ws.send(json.dumps({"type": "response.done", "response": {"id": response_id, "status": "cancelled"}}))
            raise
        await ws.send(json.dumps({"type": "response.output_audio.done", "response_id": response_id, "item_id": item_id}))
        await ws.send(json.dumps({"type": "response.done", "response": {"id": response_id, "status": "completed"}}))


class FakeGeminiLive(_FakeService):
    """Gemini Live API (BidiGenerateContent), automatic activity detection on, audio in 16 kHz, out 24 kHz."""

    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    api_key = "test-gemini-key"
    in_rate = 16000

    async def _serve(self, ws: ServerConnection) -> None:
        request = ws.request
        key = parse_qs(urlparse(request.path).query).get("key", [""])[0] if request is not None else ""
        if key != self.api_key:
            await ws.close(1008, "API key not valid")
            return
        setup = json.loads(await ws.recv())
        self.received.append(setup)
        if "setup" not in setup:
            await ws.close(1007, "the first message must be setup")
            return
        await ws.send(json.dumps({"setupComplete": {}}))
        detector = _TurnDetector(self.in_rate)
        responding: asyncio.Task[None] | None = None
        async for raw in ws:
            message = json.loads(raw)
            audio = message.get("realtimeInput", {}).get("audio")
            if audio is None:
                self.received.append(message)
                continue
            assert audio["mimeType"] == "audio/pcm;rate=16000", audio["mimeType"]
            for change in detector.feed(base64.b64decode(audio["data"])):
                if change == "start" and responding is not None and not responding.done():
                    responding.cancel()
                    self.interrupted += 1
                    await ws.send(json.dumps({"serverContent": {"interrupted": True}}))
                elif change == "stop":
                    responding = asyncio.create_task(self._respond(ws))

    async def _respond(self, ws: ServerConnection) -> None:
        async def part(chunk: bytes) -> None:
            await ws.send(json.dumps({"serverContent": {"modelTurn": {"parts": [
                {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": base64.b64encode(chunk).decode()}}
            ]}}}))

        await self._stream_reply(ws, part)
        await ws.send(json.dumps({"serverContent": {"generationComplete": True}}))
        await ws.send(json.dumps({"serverContent": {"turnComplete": True}}))


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"
