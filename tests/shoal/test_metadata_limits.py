"""Metadata limits (issue 10, hole 2): nesting depth, string length and size are checked at the edge.

Too-deep metadata once made ``GET /room`` answer 500 for everyone (pydantic's serializer gives
up at 255 levels) and, at ~990 levels, dropped the socket without a close frame. Each case
here sends metadata over a limit through one entry point and checks three things: the client
is told which limit (400 or close 1008), nothing was stored (no peer, no track), and the room
listing still works for everyone.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from fishjam._proto import agent_notifications_pb2 as A
from fishjam._proto import peer_notifications_pb2 as P
from fishjam._proto.media_events.peer import peer_pb2 as CE
from fishjam._proto.notifications import shared_pb2 as S
from tests.support.agent_client import RawAgent, create_room, create_webrtc_peer, rest
from tests.support.server import ServerProcess


def nested_text(depth: int) -> str:
    """JSON text of objects nested ``depth`` levels (built as text: json.dumps itself recurses)."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def nested(depth: int) -> Any:
    return json.loads(nested_text(depth))


def assert_listing_works(server: ServerProcess, room: str) -> dict[str, Any]:
    """``GET /room`` and ``GET /room/{id}`` answer 200 (once 500 for everyone); returns the room."""
    with rest(server) as client:
        listing = client.get("/room")
        one = client.get(f"/room/{room}")
    assert listing.status_code == 200, listing.text
    assert one.status_code == 200, one.text
    data: dict[str, Any] = one.json()["data"]
    return data


def post_peer(server: ServerProcess, room: str, body: bytes) -> httpx.Response:
    with rest(server) as client:
        return client.post(f"/room/{room}/peer", content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        (nested(300), "nested deeper than 32"),
        (nested(33), "nested deeper than 32"),
        ({"name": "x" * 20_000}, "string longer than 16384"),
        ({"x" * 20_000: 1}, "string longer than 16384"),
        ({f"k{i}": "y" * 10_000 for i in range(8)}, "larger than 65536 bytes"),
    ],
    ids=["depth-300", "depth-33", "long-value", "long-key", "too-many-bytes"],
)
def test_rest_peer_metadata_over_a_limit_gets_400_and_creates_no_peer(
    server: ServerProcess, metadata: Any, fragment: str
) -> None:
    room = create_room(server)
    body = json.dumps({"type": "webrtc", "options": {"metadata": metadata}}).encode()
    response = post_peer(server, room, body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["errors"]
    assert assert_listing_works(server, room)["peers"] == []


def test_rest_peer_metadata_within_the_limits_is_accepted(server: ServerProcess) -> None:
    room = create_room(server)
    metadata = {"deep": nested(31), "name": "x" * 16_000}
    response = post_peer(server, room, json.dumps({"type": "webrtc", "options": {"metadata": metadata}}).encode())
    assert response.status_code == 201, response.text
    assert assert_listing_works(server, room)["peers"][0]["metadata"]["server"] == metadata


def test_a_100k_deep_raw_body_gets_400(server: ServerProcess) -> None:
    room = create_room(server)
    depth = 100_000
    body = ('{"type":"webrtc","options":{"metadata":{"a":' + "[" * depth + "]" * depth + "}}}").encode()
    response = post_peer(server, room, body)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["errors"], str)
    assert assert_listing_works(server, room)["peers"] == []


# agent AddTrack ---------------------------------------------------------------------------


async def add_track_with_metadata(agent: RawAgent, metadata: str) -> str:
    track_id = "0123456789abcdef0123456789abcdef"
    params = A.AgentRequest.AddTrack.CodecParameters(encoding=S.TRACK_ENCODING_PCM16, sample_rate=16000, channels=1)
    track = S.Track(id=track_id, type=S.TRACK_TYPE_AUDIO, metadata=metadata)
    await agent.send(A.AgentRequest(add_track=A.AgentRequest.AddTrack(track=track, codec_params=params)))
    return track_id


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        (nested_text(300), "nested deeper than 32"),
        (nested_text(990), "nested deeper than 32"),
        ("[" * 5000, "nested deeper than 32"),  # not even JSON: agents' invalid JSON is kept as text
        (json.dumps({"name": "x" * 20_000}), "string longer than 16384"),
        ("not json " * 2500, "string longer than 16384"),
        (json.dumps([("y" * 10_000) for _ in range(8)]), "larger than 65536 bytes"),
        ('{"n": 1e999}', "NaN and Infinity"),  # reads as inf: not kept as text, not listable as JSON
        ('{"n": NaN}', "NaN and Infinity"),
    ],
    ids=["depth-300", "depth-990", "unclosed", "long-string", "long-invalid-json", "too-many-bytes", "inf", "nan"],
)
async def test_agent_track_metadata_over_a_limit_closes_the_socket_and_publishes_nothing(
    server: ServerProcess, metadata: str, fragment: str
) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    await add_track_with_metadata(agent, metadata)
    code, reason = await agent.wait_closed()
    assert code == 1008 and "AddTrack" in reason and fragment in reason, reason
    peers = assert_listing_works(server, room)["peers"]
    assert [peer["tracks"] for peer in peers] == [[]]


async def test_agent_track_metadata_within_the_limits_is_published(server: ServerProcess) -> None:
    room = create_room(server)
    agent = await RawAgent.join(server, room)
    await add_track_with_metadata(agent, nested_text(32))
    for _ in range(100):
        peers = assert_listing_works(server, room)["peers"]
        if peers[0]["tracks"]:
            break
        await asyncio.sleep(0.05)
    assert peers[0]["tracks"][0]["metadata"] == nested(32)
    assert agent.closed is None
    await agent.close()


# WebRTC participant ---------------------------------------------------------------------------


async def raw_peer(server: ServerProcess, room: str) -> ClientConnection:
    _, token = create_webrtc_peer(server, room)
    ws = await connect(f"{server.ws_url}/socket/peer/websocket", max_size=None)
    auth = P.PeerMessage(auth_request=P.PeerMessage.AuthRequest(token=token, sdk_version="web-0.25.1"))
    await ws.send(auth.SerializeToString())
    reply = P.PeerMessage()
    reply.ParseFromString(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[arg-type]
    assert reply.WhichOneof("content") == "authenticated"
    return ws


async def send_media(ws: ClientConnection, event: CE.MediaEvent) -> None:
    await ws.send(P.PeerMessage(peer_media_event=event).SerializeToString())


async def close_of(ws: ClientConnection) -> tuple[int, str]:
    try:
        async with asyncio.timeout(10):
            async for _ in ws:
                pass
    except ConnectionClosed:
        pass
    assert ws.close_code is not None, "the server did not close the socket"
    return ws.close_code, ws.close_reason or ""


def connect_event(metadata_json: str) -> CE.MediaEvent:
    return CE.MediaEvent(connect=CE.MediaEvent.Connect(metadata_json=metadata_json))


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        (nested_text(300), "nested deeper than 32"),
        (nested_text(990), "nested deeper than 32"),
        (json.dumps({"name": "x" * 20_000}), "string longer than 16384"),
    ],
    ids=["depth-300", "depth-990", "long-string"],
)
async def test_participant_connect_metadata_over_a_limit_closes_with_1008(
    server: ServerProcess, metadata: str, fragment: str
) -> None:
    room = create_room(server)
    ws = await raw_peer(server, room)
    await send_media(ws, connect_event(metadata))
    code, reason = await close_of(ws)
    assert code == 1008 and "connect" in reason and fragment in reason, reason
    peers = assert_listing_works(server, room)["peers"]
    assert peers[0]["metadata"]["peer"] == {}


async def test_participant_metadata_update_over_a_limit_closes_with_1008(server: ServerProcess) -> None:
    room = create_room(server)
    ws = await raw_peer(server, room)
    await send_media(ws, connect_event(json.dumps({"name": "ok"})))
    reply = P.PeerMessage()
    reply.ParseFromString(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[arg-type]
    assert reply.server_media_event.WhichOneof("content") == "connected"
    update = CE.MediaEvent.UpdateEndpointMetadata(metadata_json=nested_text(300))
    await send_media(ws, CE.MediaEvent(update_endpoint_metadata=update))
    code, reason = await close_of(ws)
    assert code == 1008 and "update_endpoint_metadata" in reason and "nested deeper than 32" in reason, reason
    peers = assert_listing_works(server, room)["peers"]
    assert peers[0]["metadata"]["peer"] == {"name": "ok"}


async def test_participant_track_metadata_over_a_limit_closes_with_1008(server: ServerProcess) -> None:
    room = create_room(server)
    ws = await raw_peer(server, room)
    await send_media(ws, connect_event(""))
    update = CE.MediaEvent.UpdateTrackMetadata(track_id="t1", metadata_json=nested_text(300))
    await send_media(ws, CE.MediaEvent(update_track_metadata=update))
    code, reason = await close_of(ws)
    assert code == 1008 and "update_track_metadata" in reason and "nested deeper than 32" in reason, reason
    ws = await raw_peer(server, room)
    await send_media(ws, connect_event(""))
    offer = CE.MediaEvent.SdpOffer(sdp="v=0\r\n", track_id_to_metadata_json={"t1": nested_text(300)})
    await send_media(ws, CE.MediaEvent(sdp_offer=offer))
    code, reason = await close_of(ws)
    assert code == 1008 and "sdp_offer" in reason and "nested deeper than 32" in reason, reason
    assert_listing_works(server, room)


@pytest.mark.parametrize("number", ["1e999", "-1e999", "NaN", "Infinity"])
def test_rest_peer_metadata_that_reads_as_infinity_gets_400(server: ServerProcess, number: str) -> None:
    """``1e999`` parses to inf; stored, it would be listed as ``Infinity``, which ``JSON.parse`` rejects."""
    room = create_room(server)
    response = post_peer(server, room, b'{"type": "webrtc", "options": {"metadata": {"n": ' + number.encode() + b"}}}")
    assert response.status_code == 400, response.text
    assert "errors" in response.json()
    assert assert_listing_works(server, room)["peers"] == []

