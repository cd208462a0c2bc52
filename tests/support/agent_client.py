"""A raw agent-socket client for server tests: exact control over every frame sent."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from fishjam._proto import agent_notifications_pb2 as A
from fishjam._proto.notifications import shared_pb2 as S
from tests.support.server import ServerProcess

PCM16 = S.TRACK_ENCODING_PCM16
OPUS = S.TRACK_ENCODING_OPUS


def rest(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {server.token}"}, timeout=10)


def create_room(server: ServerProcess, **config: Any) -> str:
    with rest(server) as client:
        response = client.post("/room", json=config)
        response.raise_for_status()
        room_id: str = response.json()["data"]["room"]["id"]
        return room_id


def create_agent(server: ServerProcess, room_id: str, rate: int = 16000, mode: str = "auto") -> tuple[str, str]:
    body = {"type": "agent", "options": {"output": {"audioFormat": "pcm16", "audioSampleRate": rate}, "subscribeMode": mode}}
    with rest(server) as client:
        response = client.post(f"/room/{room_id}/peer", json=body)
        response.raise_for_status()
        data = response.json()["data"]
        return data["peer"]["id"], data["token"]


def create_webrtc_peer(server: ServerProcess, room_id: str, mode: str = "auto", metadata: Any = None) -> tuple[str, str]:
    """A WebRTC peer (for ``shoal.testing.WebRTCPeer``); returns its id and token."""
    options: dict[str, Any] = {"subscribeMode": mode}
    if metadata is not None:
        options["metadata"] = metadata
    with rest(server) as client:
        response = client.post(f"/room/{room_id}/peer", json={"type": "webrtc", "options": options})
        response.raise_for_status()
        data = response.json()["data"]
        return data["peer"]["id"], data["token"]


@dataclass
class Received:
    """Audio received from one source track, with the arrival time of every chunk."""

    peer_id: str
    track_id: str
    metadata: str
    chunks: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    metadata_changes: dict[int, str] = field(default_factory=dict)
    """Chunk index → the track metadata from that chunk on (when it differs from before)."""

    def metadata_of(self, index: int) -> str:
        """The track metadata the ``index``-th chunk carried."""
        current = self.metadata
        for start, value in sorted(self.metadata_changes.items()):
            if start <= index:
                current = value
        return current

    @property
    def pcm(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.chunks), dtype="<i2")


class RawAgent:
    """Connects to /socket/agent/websocket and records everything it receives."""

    def __init__(self, server: ServerProcess, peer_id: str, token: str) -> None:
        self.server = server
        self.peer_id = peer_id
        self.token = token
        self.ws: ClientConnection | None = None
        self.received: dict[str, Received] = {}
        self.images: list[A.AgentResponse.TrackImage] = []
        self.closed: ConnectionClosed | None = None
        self.kinds: list[str] = []  # the AgentResponse member of every message after Authenticated ("" if none)
        self.auth_frame = b""
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def join(cls, server: ServerProcess, room_id: str, rate: int = 16000, mode: str = "auto") -> RawAgent:
        peer_id, token = create_agent(server, room_id, rate, mode)
        agent = cls(server, peer_id, token)
        await agent.connect()
        return agent

    async def connect(self, authenticate: bool = True, query: str = "") -> None:
        self.ws = await connect(f"{self.server.ws_url}/socket/agent/websocket{query}", max_size=None)
        if authenticate:
            await self.send(A.AgentRequest(auth_request=A.AgentRequest.AuthRequest(token=self.token)))
            self.auth_frame = await self.ws.recv(decode=False)
            first = A.AgentResponse()
            first.ParseFromString(self.auth_frame)
            assert first.WhichOneof("content") == "authenticated"
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                message = A.AgentResponse()
                message.ParseFromString(frame)  # type: ignore[arg-type]
                self.kinds.append(message.WhichOneof("content") or "")
                if message.WhichOneof("content") == "track_data":
                    data = message.track_data
                    entry = self.received.setdefault(
                        data.track.id, Received(data.peer_id, data.track.id, data.track.metadata)
                    )
                    if data.track.metadata != entry.metadata_of(len(entry.chunks)):
                        entry.metadata_changes[len(entry.chunks)] = data.track.metadata
                    entry.chunks.append(data.data)
                    entry.times.append(time.monotonic())
                elif message.WhichOneof("content") == "track_image":
                    self.images.append(message.track_image)
        except ConnectionClosed as exc:
            self.closed = exc
        else:
            self.closed = None

    async def send(self, message: A.AgentRequest) -> None:
        assert self.ws is not None
        await self.ws.send(message.SerializeToString())

    async def add_track(
        self,
        rate: int = 16000,
        channels: int = 1,
        encoding: int = PCM16,
        metadata: str = "null",
        track_id: str | None = None,
    ) -> str:
        """Send ``AddTrack`` (with a fresh UUID unless ``track_id`` is given); returns the track id."""
        track_id = track_id or uuid.uuid4().hex
        params = A.AgentRequest.AddTrack.CodecParameters(encoding=encoding, sample_rate=rate, channels=channels)
        track = S.Track(id=track_id, type=S.TRACK_TYPE_AUDIO, metadata=metadata)
        await self.send(A.AgentRequest(add_track=A.AgentRequest.AddTrack(track=track, codec_params=params)))
        return track_id

    async def send_audio(self, track_id: str, data: bytes) -> None:
        await self.send(A.AgentRequest(track_data=A.AgentRequest.TrackData(track_id=track_id, data=data)))

    async def interrupt(self, track_id: str) -> None:
        await self.send(A.AgentRequest(interrupt_track=A.AgentRequest.InterruptTrack(track_id=track_id)))

    async def remove_track(self, track_id: str) -> None:
        await self.send(A.AgentRequest(remove_track=A.AgentRequest.RemoveTrack(track_id=track_id)))

    async def capture_image(self, track_id: str) -> None:
        await self.send(A.AgentRequest(capture_image=A.AgentRequest.CaptureImage(track_id=track_id)))

    def samples_from(self, track_id: str) -> int:
        entry = self.received.get(track_id)
        return len(entry.pcm) if entry else 0

    async def wait_samples(self, track_id: str, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.samples_from(track_id) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.samples_from(track_id)} of {count} samples arrived")
            await asyncio.sleep(0.01)

    async def wait_closed(self, timeout: float = 5.0) -> tuple[int, str]:
        """Wait until the server closes the socket; returns its close code and reason."""
        assert self.ws is not None
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        if self._reader is not None:
            await self._reader
        assert self.ws.close_code is not None
        return self.ws.close_code, self.ws.close_reason or ""

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
