"""Agent-to-agent audio with official agents on both sides (agents.md §1.4, §2.3, §2.4).

Agent A publishes pcm16 16 kHz mono; agent B (output 24 kHz) records everything it
receives with its arrival time. The PCM to send comes from files written by the pytest
side, which also analyses what B got. Three phases, each a different tone:

1. ``play``: a short tone sent in a few big chunks, much faster than real time;
2. ``long``: a long tone, interrupted about a second after B starts hearing it;
3. ``after``: a tone sent ``pause_after_interrupt_s`` (default 1.5 s) after the interrupt.

The other scenarios cover several tracks at once, manual subscriptions, a live source
paced in real time, and an agent that joins while a track plays.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

from fishjam import AgentOptions, AgentOutputOptions, FishjamClient
from fishjam.agent import AgentSession, OutgoingAudioTrackOptions, OutgoingTrack
from fishjam.events import TrackEncoding

from _scenario import Params, Result, client, main, poll


class Recorder:
    """Everything agent B receives, with arrival times."""

    def __init__(self) -> None:
        self.chunks: list[Result] = []
        self.arrived = asyncio.Event()

    async def run(self, session: AgentSession) -> None:
        async for message in session.receive():
            self.chunks.append({
                "t": time.monotonic(),
                "peer_id": message.peer_id,
                "track_id": message.track.id,
                "track_type": int(message.track.type),
                "track_metadata": message.track.metadata,
                "data": base64.b64encode(message.data).decode(),
            })
            self.arrived.set()

    async def first_after(self, mark: float, timeout: float) -> float | None:
        """Arrival time of the first chunk after ``mark``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for chunk in self.chunks:
                if chunk["t"] > mark:
                    return float(chunk["t"])
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        return None

    async def quiet(self, mark: float, gap: float, timeout: float) -> None:
        """Wait until audio arrived after ``mark`` and then nothing came for ``gap`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = max((c["t"] for c in self.chunks if c["t"] > mark), default=None)
            if last is not None and time.monotonic() - last >= gap:
                return
            await asyncio.sleep(0.05)


def load(params: Params, *names: str) -> dict[str, bytes]:
    """The PCM files the pytest side wrote, by parameter name."""
    return {name: Path(params[name]).read_bytes() for name in names}


async def send(track: OutgoingTrack, data: bytes, chunk_bytes: int) -> None:
    for start in range(0, len(data), chunk_bytes):
        await track.send_chunk(data[start:start + chunk_bytes])


async def tone_and_interrupt(params: Params) -> Result:
    pcm = load(params, "play", "long", "after")
    api = client(params)
    room = api.create_room()
    listener = api.create_agent(room.id, AgentOptions(output=AgentOutputOptions(audio_sample_rate=24000)))
    speaker = api.create_agent(room.id)
    recorder, echo = Recorder(), Recorder()
    marks: dict[str, float] = {}
    async with listener.connect() as listening, speaker.connect() as speaking:
        receiving = asyncio.create_task(recorder.run(listening))
        echoing = asyncio.create_task(echo.run(speaking))
        options = OutgoingAudioTrackOptions(
            encoding=TrackEncoding.TRACK_ENCODING_PCM16, sample_rate=16000, channels=1, metadata={"role": "tts"}
        )
        track = await speaking.add_track(options)

        marks["play"] = time.monotonic()
        await send(track, pcm["play"], chunk_bytes=16000)  # 0.5 s per chunk
        await recorder.quiet(marks["play"], gap=0.5, timeout=10)

        marks["long"] = time.monotonic()
        await send(track, pcm["long"], chunk_bytes=32000)  # 1 s per chunk
        heard = await recorder.first_after(marks["long"], timeout=5)
        await asyncio.sleep(1.0 - (time.monotonic() - (heard or time.monotonic())))
        marks["interrupt"] = time.monotonic()
        await track.interrupt()
        await asyncio.sleep(params.get("pause_after_interrupt_s", 1.5))

        marks["after"] = time.monotonic()
        await send(track, pcm["after"], chunk_bytes=64000)
        await recorder.quiet(marks["after"], gap=0.5, timeout=10)
        marks["end"] = time.monotonic()
        receiving.cancel()
        echoing.cancel()
        await asyncio.gather(receiving, echoing, return_exceptions=True)
    api.delete_room(room.id)
    return {
        "speaker_id": speaker.id,
        "listener_id": listener.id,
        "track_id": track.id,
        "marks": marks,
        "chunks": recorder.chunks,
        "speaker_heard": echo.chunks,
    }


async def two_tracks(params: Params) -> Result:
    """One agent plays a 16 kHz mono and a 24 kHz stereo track at once; a default agent listens."""
    pcm = load(params, "mono", "stereo")
    api = client(params)
    room = api.create_room()
    listener, speaker = api.create_agent(room.id), api.create_agent(room.id)
    recorder = Recorder()
    async with listener.connect() as listening, speaker.connect() as speaking:
        receiving = asyncio.create_task(recorder.run(listening))
        mono = await speaking.add_track(OutgoingAudioTrackOptions(sample_rate=16000, channels=1))
        stereo = await speaking.add_track(OutgoingAudioTrackOptions(sample_rate=24000, channels=2))
        start = time.monotonic()
        await send(mono, pcm["mono"], chunk_bytes=64000)
        await send(stereo, pcm["stereo"], chunk_bytes=64000)
        await recorder.quiet(start, gap=0.5, timeout=10)
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
    api.delete_room(room.id)
    return {"speaker_id": speaker.id, "mono": mono.id, "stereo": stereo.id, "start": start, "chunks": recorder.chunks}


async def manual_subscription(params: Params) -> Result:
    """A manual-mode agent hears nothing until it is subscribed to the speaking agent."""
    pcm = load(params, "unsubscribed", "subscribed")
    api = client(params)
    room = api.create_room()
    listener = api.create_agent(room.id, AgentOptions(subscribe_mode="manual"))
    speaker = api.create_agent(room.id)
    recorder = Recorder()
    marks: dict[str, float] = {}
    async with listener.connect() as listening, speaker.connect() as speaking:
        receiving = asyncio.create_task(recorder.run(listening))
        track = await speaking.add_track(OutgoingAudioTrackOptions())
        marks["unsubscribed"] = time.monotonic()
        await send(track, pcm["unsubscribed"], chunk_bytes=64000)
        await asyncio.sleep(params["wait_s"])
        marks["subscribed"] = time.monotonic()
        api.subscribe_peer(room.id, listener.id, speaker.id)
        await send(track, pcm["subscribed"], chunk_bytes=64000)
        await recorder.quiet(marks["subscribed"], gap=0.5, timeout=10)
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
    api.delete_room(room.id)
    return {"speaker_id": speaker.id, "track_id": track.id, "marks": marks, "chunks": recorder.chunks}


async def paced(params: Params) -> Result:
    """A live source: chunks of ``chunk_ms`` sent every ``chunk_ms``, as a streaming TTS would."""
    pcm = load(params, "tone")
    api = client(params)
    room = api.create_room()
    listener, speaker = api.create_agent(room.id), api.create_agent(room.id)
    recorder = Recorder()
    async with listener.connect() as listening, speaker.connect() as speaking:
        receiving = asyncio.create_task(recorder.run(listening))
        track = await speaking.add_track(OutgoingAudioTrackOptions())
        step = params["chunk_ms"] / 1000
        size = int(16000 * 2 * step)
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(pcm["tone"]), size)):
            await asyncio.sleep(max(0.0, start + index * step - time.monotonic()))
            await track.send_chunk(pcm["tone"][offset:offset + size])
        await recorder.quiet(start, gap=0.5, timeout=10)
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
    api.delete_room(room.id)
    return {"start": start, "chunks": recorder.chunks}


async def one_track_subscribed(params: Params) -> Result:
    """A manual agent subscribed (subscribe_tracks) to one of two tracks hears only that one."""
    pcm = load(params, "wanted", "unwanted")
    api = client(params)
    room = api.create_room()
    listener = api.create_agent(room.id, AgentOptions(subscribe_mode="manual"))
    speaker = api.create_agent(room.id)
    recorder = Recorder()
    async with listener.connect() as listening, speaker.connect() as speaking:
        receiving = asyncio.create_task(recorder.run(listening))
        wanted = await speaking.add_track(OutgoingAudioTrackOptions())
        unwanted = await speaking.add_track(OutgoingAudioTrackOptions())
        await poll(lambda: len(_tracks(api, room.id, speaker.id)) == 2, timeout=5)
        api.subscribe_tracks(room.id, listener.id, [wanted.id])
        start = time.monotonic()
        await send(wanted, pcm["wanted"], chunk_bytes=64000)
        await send(unwanted, pcm["unwanted"], chunk_bytes=64000)
        await recorder.quiet(start, gap=0.5, timeout=10)
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
    api.delete_room(room.id)
    return {"wanted": wanted.id, "unwanted": unwanted.id, "chunks": recorder.chunks}


def _tracks(api: FishjamClient, room_id: str, peer_id: str) -> list[object]:
    return next(p.tracks for p in api.get_room(room_id).peers if p.id == peer_id)


async def late_listener(params: Params) -> Result:
    """An auto-mode agent that connects while a track is playing hears the rest of it."""
    pcm = load(params, "tone")
    api = client(params)
    room = api.create_room()
    listener, speaker = api.create_agent(room.id), api.create_agent(room.id)
    recorder = Recorder()
    async with speaker.connect() as speaking:
        track = await speaking.add_track(OutgoingAudioTrackOptions())
        start = time.monotonic()
        await send(track, pcm["tone"], chunk_bytes=64000)
        await asyncio.sleep(params["join_after_s"])
        async with listener.connect() as listening:
            joined = time.monotonic()
            receiving = asyncio.create_task(recorder.run(listening))
            await recorder.quiet(joined, gap=0.5, timeout=10)
            receiving.cancel()
            await asyncio.gather(receiving, return_exceptions=True)
    api.delete_room(room.id)
    return {"track_id": track.id, "start": start, "joined": joined, "chunks": recorder.chunks}


if __name__ == "__main__":
    main({"tone_and_interrupt": tone_and_interrupt, "two_tracks": two_tracks, "manual_subscription": manual_subscription,
          "paced": paced, "one_track_subscribed": one_track_subscribed, "late_listener": late_listener})
