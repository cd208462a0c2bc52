"""Bad input gets a clear answer and disturbs nobody else.

A "canary" pair of agents in another room streams a tone for the whole module; after
every bad-input case the canary must still be receiving it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from fishjam._proto import agent_notifications_pb2 as A
from fishjam._proto import peer_notifications_pb2 as P
from fishjam._proto import server_notifications_pb2 as SM
from tests.support.agent_client import RawAgent, create_agent, create_room, rest
from tests.support.audio import dominant_frequency, tone
from tests.support.server import ServerProcess


class Canary:
    def __init__(self, sender: RawAgent, receiver: RawAgent, track: str) -> None:
        self.sender, self.receiver, self.track = sender, receiver, track

    async def assert_still_singing(self) -> None:
        """New 500 Hz audio keeps arriving in the canary's room."""
        before = self.receiver.samples_from(self.track)
        await self.receiver.wait_samples(self.track, before + 3200, timeout=5)
        fresh = self.receiver.received[self.track].pcm[before:]
        assert abs(dominant_frequency(fresh, 16000) - 500) < 10


@pytest.fixture
async def canary(server: ServerProcess) -> AsyncIterator[Canary]:
    room = create_room(server)
    sender = await RawAgent.join(server, room)
    receiver = await RawAgent.join(server, room)
    track = await sender.add_track()
    for _ in range(6):  # one minute, in frames well under the 1 MiB limit
        await sender.send_audio(track, tone(500, 10.0, 16000))
    bird = Canary(sender, receiver, track)
    await bird.assert_still_singing()
    yield bird
    await sender.close()
    await receiver.close()


async def closed_with(ws_url: str, *frames: bytes | str, timeout: float = 8.0) -> tuple[int, str]:
    """Open a socket, send ``frames``, and return the close code and reason it gets."""
    async with connect(ws_url, max_size=None) as ws:
        try:
            for frame in frames:
                await ws.send(frame)
            async with asyncio.timeout(timeout):
                async for _ in ws:
                    pass
        except ConnectionClosed:
            pass
        assert ws.close_code is not None, "the server did not close the socket"
        return ws.close_code, ws.close_reason or ""


def agent_auth(token: str) -> bytes:
    return A.AgentRequest(auth_request=A.AgentRequest.AuthRequest(token=token)).SerializeToString()


async def test_bytes_that_are_not_protobuf_close_only_that_socket(server: ServerProcess, canary: Canary) -> None:
    url = f"{server.ws_url}/socket/agent/websocket"
    code, reason = await closed_with(url, b"\xff\xff\xff\xff not protobuf")
    assert code == 1007 and "not a valid AgentRequest" in reason
    await canary.assert_still_singing()


async def test_text_frames_are_refused_with_a_reason(server: ServerProcess, canary: Canary) -> None:
    for path in ("agent", "peer", "server"):
        code, reason = await closed_with(f"{server.ws_url}/socket/{path}/websocket", "hello")
        assert code == 1003 and "text frames are not supported" in reason
    await canary.assert_still_singing()


async def test_frames_over_the_size_limit_close_the_socket(server: ServerProcess, canary: Canary) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    track = await agent.add_track()
    try:
        await agent.send_audio(track, b"\0" * (2 << 20))
    except ConnectionClosed:
        pass  # the server may close while the 2 MiB frame is still being written
    code, _ = await agent.wait_closed()
    assert code == 1009
    await canary.assert_still_singing()


async def test_any_message_before_auth_is_refused(server: ServerProcess, canary: Canary) -> None:
    data = A.AgentRequest(track_data=A.AgentRequest.TrackData(track_id="x", data=b"\0\0")).SerializeToString()
    code, reason = await closed_with(f"{server.ws_url}/socket/agent/websocket", data)
    assert code == 1008 and reason == "the first message must be an AuthRequest, got track_data"
    media = P.PeerMessage(rtc_stats_report=P.PeerMessage.RTCStatsReport(data="{}")).SerializeToString()
    code, reason = await closed_with(f"{server.ws_url}/socket/peer/websocket", media)
    assert code == 1008 and reason == "unauthenticated"
    sub = SM.ServerMessage(subscribe_request=SM.ServerMessage.SubscribeRequest(event_type=1)).SerializeToString()
    code, reason = await closed_with(f"{server.ws_url}/socket/server/websocket", sub)
    assert code == 1008 and reason == "invalid auth request"
    await canary.assert_still_singing()


async def test_a_socket_that_never_authenticates_is_closed_after_the_timeout(
    server: ServerProcess, canary: Canary
) -> None:
    started = time.monotonic()
    code, reason = await closed_with(f"{server.ws_url}/socket/agent/websocket", timeout=15)
    assert code == 1008 and reason.startswith("authentication timeout")
    assert 4.5 < time.monotonic() - started < 10
    await canary.assert_still_singing()


async def test_bad_tokens_get_the_exact_reasons_clients_understand(server: ServerProcess, canary: Canary) -> None:
    room = create_room(server)
    peer_id, token = create_agent(server, room)
    url = f"{server.ws_url}/socket/agent/websocket"
    assert await closed_with(url, agent_auth("nonsense")) == (1008, "invalid token")
    assert await closed_with(url, agent_auth("")) == (1008, "missing token")
    with rest(server) as client:
        client.delete(f"/room/{room}/peer/{peer_id}")
    assert await closed_with(url, agent_auth(token)) == (1008, "invalid token")
    await canary.assert_still_singing()


async def test_track_data_for_an_unknown_track_closes_the_socket_and_reports_a_crash(
    server: ServerProcess, canary: Canary
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    await agent.send_audio("0123456789abcdef0123456789abcdef", b"\0\0")
    code, reason = await agent.wait_closed()
    assert code == 1008 and "TrackData for unknown track" in reason
    await canary.assert_still_singing()


@pytest.mark.parametrize(
    ("rate", "channels", "expected"),
    [(44100, 1, "pcm16 sample rate 44100 not supported"), (16000, 3, "3 channels not supported")],
)
async def test_add_track_with_unsupported_format_is_refused(
    server: ServerProcess, canary: Canary, rate: int, channels: int, expected: str
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    await agent.add_track(rate=rate, channels=channels)
    code, reason = await agent.wait_closed()
    assert code == 1008 and expected in reason
    await canary.assert_still_singing()


async def test_odd_length_pcm_is_carried_over_not_lost(server: ServerProcess, canary: Canary) -> None:
    room = create_room(server)
    sender = await RawAgent.join(server, room)
    receiver = await RawAgent.join(server, room)
    track = await sender.add_track()
    audio = tone(700, 0.2, 16000)
    await sender.send_audio(track, audio[:1001])
    await sender.send_audio(track, audio[1001:])
    await receiver.wait_samples(track, 3200)
    assert receiver.received[track].pcm.tobytes()[: len(audio)] == audio
    assert sender.closed is None
    await sender.close()
    await receiver.close()
    await canary.assert_still_singing()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"maxPeers": "nan"}', "maxPeers"),
        (b'{"videoCodec": "h420"}', "videoCodec"),
        (b'{"roomType": "party"}', "roomType"),
        (b'{"surprise": 1}', "unknown field"),
        (b'{"webhookUrl": "ftp://nowhere"}', "webhookUrl"),
    ],
)
def test_malformed_room_bodies_get_400_with_an_errors_string(server: ServerProcess, body: bytes, fragment: str) -> None:
    with rest(server) as client:
        response = client.post("/room", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert fragment in response.json()["errors"]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "robot"},
        {"type": "agent", "options": {"output": {"audioSampleRate": 44100}}},
        {"type": "webrtc", "options": {"subscribeMode": "sometimes"}},
        {"type": "vapi", "options": {"apiKey": "k", "callId": "bad id!"}},
        {},
    ],
)
def test_malformed_peer_bodies_get_400(server: ServerProcess, body: dict[str, object]) -> None:
    room = create_room(server)
    with rest(server) as client:
        response = client.post(f"/room/{room}/peer", json=body)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["errors"], str)


def test_unknown_room_and_peer_ids_get_404(server: ServerProcess) -> None:
    room = create_room(server)
    with rest(server) as client:
        cases = [
            client.get("/room/invalid_id"),
            client.delete("/room/515c8b52-168b-4b39-a227-4d6b4f102a56"),
            client.post("/room/invalid_id/peer", json={"type": "webrtc"}),
            client.delete(f"/room/{room}/peer/invalid_peer_id"),
            client.post(f"/room/{room}/peer/invalid_peer_id/refresh_token"),
        ]
    for response in cases:
        assert response.status_code == 404
        assert "does not exist" in response.json()["errors"]


def test_rest_calls_without_a_valid_token_get_401_before_the_body_is_read(server: ServerProcess) -> None:
    response = httpx.post(f"{server.url}/room", content=b"{bad", headers={"authorization": "Bearer wrong"})
    assert response.status_code == 401 and response.json() == {"errors": "Invalid token"}
    assert httpx.get(f"{server.url}/room").json() == {"errors": "Missing token"}
    assert httpx.get(f"{server.url}/validate", headers={"authorization": "Bearer wrong"}).status_code == 404
