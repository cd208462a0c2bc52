"""Record what an SDK importable as ``fishjam`` puts on the wire for a fixed set of calls.

The scenario uses only the public API both SDKs share, so the very same code runs
against either one:

* run as a script with the official ``fishjam-server-sdk`` interpreter, it prints the
  recording as JSON (``FISHJAM_OFFICIAL_PYTHON tests/fishjam/official_wire.py``);
* imported in-process, :func:`collect` records our SDK.

``test_wire_identity.py`` compares the two. Everything is answered locally: REST calls
by an ``httpx.MockTransport``, the agent and notifier sockets by small ``websockets``
servers on 127.0.0.1. Frames and bodies are recorded as hex. ``uuid.uuid4`` is pinned
while recording so the random track ids are the same in both runs.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

FIXED_UUID = uuid.UUID("0123456789abcdef0123456789abcdef")
API_URL = "http://fishjam.test"
MANAGEMENT_TOKEN = "management-token"
ROOM_ID = "room-1"
CLIENT_HEADER = "x-fishjam-api-client"

AGENT_AUTHENTICATED = bytes.fromhex("0a00")
NOTIFIER_AUTHENTICATED = bytes.fromhex("3200")
NOTIFIER_SUBSCRIBED = bytes.fromhex("4a020801")


# Hand-rolled protobuf encoding, so the script needs no protobuf runtime of its own.


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _track(track_id: str, track_type: int, metadata: str) -> bytes:
    return _len_field(1, track_id) + _int_field(2, track_type) + _len_field(3, metadata)


# ServerMessage frames pushed to the notifier after the handshake.
NOTIFICATIONS = [
    _len_field(10, _len_field(1, "room-1")),  # room_created
    _len_field(6, b""),  # authenticated: not a notification, must be skipped
    _len_field(20, _len_field(1, "room-1") + _len_field(2, "peer-1") + _int_field(3, 2)),  # peer_added
    _len_field(32, _len_field(1, "room-1") + _len_field(2, "peer-1") + _int_field(4, 2)),  # vad: skipped
    _len_field(
        17,
        _len_field(1, "room-1") + _len_field(2, "peer-1") + _len_field(4, _track("t-1", 2, '{"a":1}')),
    ),  # track_added
    _len_field(16, _len_field(1, "room-1") + _len_field(2, "peer-1") + _len_field(3, "{}")),  # metadata
    _len_field(2, _len_field(1, "room-1") + _len_field(2, "peer-1") + _int_field(3, 1)),  # peer_connected
    _len_field(11, _len_field(1, "room-1")),  # room_deleted
]

# AgentResponse frames pushed to an agent that is reading with receive().
AGENT_INCOMING = [
    _len_field(
        2, _len_field(1, "peer-1") + _len_field(2, _track("t-1", 2, "{}")) + _len_field(3, b"\x01\x02")
    ),
    _len_field(1, b""),  # a second Authenticated: skipped
    _len_field(3, _len_field(1, "video-1") + _len_field(2, "image/jpeg") + _len_field(3, b"\xff\xd8")),
    _len_field(2, _len_field(1, "peer-2") + _len_field(2, _track("t-2", 2, "null")) + _len_field(3, b"")),
]


@contextmanager
def pinned_uuid4() -> Iterator[None]:
    """Make ``uuid.uuid4()`` deterministic for the duration of the block."""
    original = uuid.uuid4
    uuid.uuid4 = lambda: FIXED_UUID
    try:
        yield
    finally:
        uuid.uuid4 = original


def _port(server: Any) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


def _describe_notification(notification: Any) -> dict[str, Any]:
    from fishjam import events

    names = [name for name in events.__all__ if getattr(events, name) is type(notification)]
    fields: dict[str, Any] = {"type": names[0] if names else repr(type(notification))}
    for attr in ("room_id", "peer_id", "metadata"):
        if hasattr(notification, attr):
            fields[attr] = getattr(notification, attr)
    if hasattr(notification, "peer_type"):
        fields["peer_type"] = int(notification.peer_type)
    if hasattr(notification, "track"):
        track = notification.track
        fields["track"] = [track.id, int(track.type), track.metadata]
    return fields


# Agent socket


async def record_agent_outgoing() -> dict[str, Any]:
    """Auth, three add_track variants, send_chunk, interrupt and capture_image."""
    from fishjam.agent import Agent, OutgoingAudioTrackOptions
    from fishjam.events import TrackEncoding

    frames: list[bytes] = []
    paths: list[str] = []
    finished = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        paths.append(ws.request.path if ws.request else "")
        try:
            frames.append(await ws.recv(decode=False))
            await ws.send(AGENT_AUTHENTICATED)
            async for frame in ws:
                frames.append(frame if isinstance(frame, bytes) else frame.encode())
        finally:
            finished.set()

    track_ids = []
    async with serve(handler, "127.0.0.1", 0) as server:
        agent = Agent("agent-1", ROOM_ID, "agent-token", f"http://127.0.0.1:{_port(server)}")
        with pinned_uuid4():
            async with agent.connect() as session:
                default = await session.add_track(OutgoingAudioTrackOptions())
                pcm24 = await session.add_track(
                    OutgoingAudioTrackOptions(
                        encoding=TrackEncoding.TRACK_ENCODING_PCM16,
                        sample_rate=24000,
                        metadata={"type": "microphone"},
                    )
                )
                opus = await session.add_track(
                    OutgoingAudioTrackOptions(encoding=TrackEncoding.TRACK_ENCODING_OPUS, channels=1)
                )
                stereo = await session.add_track(
                    OutgoingAudioTrackOptions(
                        encoding=TrackEncoding.TRACK_ENCODING_PCM16, channels=2, metadata={"ü": [1, None]}
                    )
                )
                await default.send_chunk(bytes(range(32)))
                await pcm24.send_chunk(b"")
                await pcm24.interrupt()
                await opus.send_chunk(b"\xfc\xff\xfe")
                await session.capture_image("video-track-1")
                await session.capture_image("")
                track_ids = [default.id, pcm24.id, opus.id, stereo.id]
        await asyncio.wait_for(finished.wait(), 5)
    return {"paths": paths, "frames": [frame.hex() for frame in frames], "track_ids": track_ids}


async def record_agent_incoming() -> dict[str, Any]:
    """What receive() yields for data, image and skipped frames, ending at a normal close."""
    from fishjam.agent import Agent

    async def handler(ws: ServerConnection) -> None:
        await ws.recv(decode=False)
        await ws.send(AGENT_AUTHENTICATED)
        for frame in AGENT_INCOMING:
            await ws.send(frame)
        await ws.close()

    received: list[Any] = []
    outcome = "returned"
    async with serve(handler, "127.0.0.1", 0) as server:
        agent = Agent("agent-1", ROOM_ID, "agent-token", f"http://127.0.0.1:{_port(server)}")
        async with agent.connect() as session:
            try:
                async for message in session.receive():
                    if hasattr(message, "peer_id"):
                        track = message.track
                        received.append(
                            [
                                "data",
                                message.peer_id,
                                track.id,
                                int(track.type),
                                track.metadata,
                                message.data.hex(),
                            ]
                        )
                    else:
                        received.append(["image", message.track_id, message.content_type, message.data.hex()])
            except ConnectionClosedOK:
                outcome = "ConnectionClosedOK"
    return {"received": received, "outcome": outcome}


async def record_agent_auth_failure() -> dict[str, Any]:
    """A close right after the auth request becomes AgentAuthError carrying the reason."""
    from fishjam.agent import Agent, AgentAuthError

    async def handler(ws: ServerConnection) -> None:
        await ws.recv(decode=False)
        await ws.close(1000, "invalid token")

    async with serve(handler, "127.0.0.1", 0) as server:
        agent = Agent("agent-1", ROOM_ID, "bad-token", f"http://127.0.0.1:{_port(server)}")
        try:
            async with agent.connect():
                return {"error": None}
        except AgentAuthError as exc:
            return {"error": type(exc).__name__, "reason": exc.reason, "message": str(exc)}


# Notifier socket


async def _run_notifier(
    handler: Callable[[ServerConnection], Any], with_handler: bool
) -> tuple[list[Any], str, str | None]:
    from fishjam import FishjamNotifier

    received: list[Any] = []
    async with serve(handler, "127.0.0.1", 0) as server:
        notifier = FishjamNotifier(f"http://127.0.0.1:{_port(server)}", MANAGEMENT_TOKEN)
        if with_handler:

            @notifier.on_server_notification
            def _collect(notification: Any) -> None:
                received.append(_describe_notification(notification))

        outcome, error = "returned", None
        try:
            await asyncio.wait_for(notifier.connect(), 10)
        except ConnectionClosedOK:
            outcome = "ConnectionClosedOK"
        except RuntimeError as exc:
            outcome, error = "RuntimeError", str(exc)
    return received, outcome, error


async def record_notifier(with_handler: bool) -> dict[str, Any]:
    """Handshake frames (and, with a handler, what gets dispatched)."""
    frames: list[bytes] = []
    paths: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        paths.append(ws.request.path if ws.request else "")
        frames.append(await ws.recv(decode=False))
        await ws.send(NOTIFIER_AUTHENTICATED)
        if with_handler:
            frames.append(await ws.recv(decode=False))
            await ws.send(NOTIFIER_SUBSCRIBED)
            for frame in NOTIFICATIONS:
                await ws.send(frame)
        else:
            try:
                frames.append(await asyncio.wait_for(ws.recv(decode=False), 0.3))
            except (TimeoutError, ConnectionClosed):
                pass
        await ws.close()

    received, outcome, error = await _run_notifier(handler, with_handler)
    return {
        "paths": paths,
        "frames": [frame.hex() for frame in frames],
        "received": received,
        "outcome": outcome,
        "error": error,
    }


async def record_notifier_bad_token() -> dict[str, Any]:
    """A close with reason "invalid token" during auth becomes RuntimeError."""

    async def handler(ws: ServerConnection) -> None:
        await ws.recv(decode=False)
        await ws.close(1000, "invalid token")

    _received, outcome, error = await _run_notifier(handler, True)
    return {"outcome": outcome, "error": error}


# REST


def _peer_json(peer_type: str) -> dict[str, Any]:
    return {
        "id": f"{peer_type}-peer",
        "type": peer_type,
        "status": "disconnected",
        "tracks": [{"id": "track-a", "type": "audio", "metadata": {"source": "mic"}}],
        "metadata": {"peer": {}, "server": {"is_test": True}},
        "subscribeMode": "auto",
        "subscriptions": {"peers": ["p"], "tracks": []},
    }


ROOM_JSON: dict[str, Any] = {
    "id": ROOM_ID,
    "config": {
        "batchWebhookNotifications": False,
        "maxPeers": 0,
        "public": False,
        "roomType": "conference",
        "videoCodec": "h264",
        "webhookUrl": None,
    },
    "peers": [_peer_json("webrtc")],
}


class CannedServer:
    """Answers every management endpoint with plausible JSON and records the requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.peer_websocket_url: str | None = "ws://127.0.0.1:5002/socket/peer/websocket"
        self.override: httpx.Response | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.override is not None:
            return self.override
        method, path = request.method, request.url.path
        if path == "/validate":
            return httpx.Response(200)
        if path == "/moq/access":
            return httpx.Response(200, json={"connection_url": "https://relay.test/x?jwt=t", "token": "t"})
        if path == "/room":
            if method == "POST":
                return httpx.Response(201, json={"data": {"room": ROOM_JSON}})
            return httpx.Response(200, json={"data": [ROOM_JSON]})
        if method == "DELETE":
            return httpx.Response(204)
        if re.fullmatch(r"/room/[^/]+/peer", path):
            peer_type = json.loads(request.content)["type"]
            data: dict[str, Any] = {"peer": _peer_json(peer_type), "token": "peer-token"}
            if self.peer_websocket_url is not None:
                data["peer_websocket_url"] = self.peer_websocket_url
            return httpx.Response(201, json={"data": data})
        if path.endswith("/refresh_token"):
            return httpx.Response(201, json={"data": {"token": "refreshed-token"}})
        if path.endswith(("/subscribe_peer", "/subscribe_tracks")):
            return httpx.Response(200)
        if path.endswith(("/viewer", "/streamer")):
            return httpx.Response(201, json={"token": path.rsplit("/", 1)[1] + "-token"})
        return httpx.Response(200, json={"data": ROOM_JSON})


def make_client(transport: httpx.BaseTransport) -> Any:
    """A FishjamClient whose HTTP goes to ``transport``, for either SDK."""
    import fishjam

    factory: Any = fishjam.FishjamClient
    try:
        # Ours takes the transport directly ...
        return factory(API_URL, MANAGEMENT_TOKEN, transport=transport)
    except TypeError:
        # ... the official client builds its httpx.Client lazily from these arguments.
        client = factory(API_URL, MANAGEMENT_TOKEN)
        client.client._httpx_args["transport"] = transport
        return client


def _request_record(request: httpx.Request) -> dict[str, Any]:
    headers = []
    for name, value in request.headers.raw:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        if key.lower() == CLIENT_HEADER:
            text = re.sub(r"/.*$", "/<version>", text)
        headers.append([key, text])
    return {
        "method": request.method,
        "path": request.url.raw_path.split(b"?", 1)[0].decode(),
        "query": request.url.query.decode(),
        "headers": headers,
        "content_type": request.headers.get("content-type"),
        "body": request.content.hex(),
    }


def _enum_text(value: Any) -> Any:
    return None if value is None or type(value).__name__ == "Unset" else str(value)


def _describe_peer(peer: Any) -> dict[str, Any]:
    metadata = peer.metadata
    return {
        "id": peer.id,
        "type": _enum_text(peer.type_),
        "status": _enum_text(peer.status),
        "subscribe_mode": _enum_text(peer.subscribe_mode),
        "metadata": None if metadata is None else dict(metadata.additional_properties),
        "subscriptions": [list(peer.subscriptions.peers), list(peer.subscriptions.tracks)],
        "tracks": [
            [
                t.id,
                _enum_text(t.type_),
                None if t.metadata is None else dict(t.metadata.additional_properties),
            ]
            for t in peer.tracks
        ],
    }


def _describe_room(room: Any) -> dict[str, Any]:
    config = room.config
    return {
        "id": room.id,
        "config": [
            config.batch_webhook_notifications,
            config.max_peers,
            config.public,
            _enum_text(config.room_type),
            _enum_text(config.video_codec),
            config.webhook_url,
        ],
        "peers": [_describe_peer(peer) for peer in room.peers],
    }


def _describe_result(result: Any) -> Any:
    if result is None or isinstance(result, str):
        return result
    if isinstance(result, tuple):
        return [_describe_result(item) for item in result]
    if isinstance(result, list):
        return [_describe_result(item) for item in result]
    if hasattr(result, "peers") and hasattr(result, "config"):
        return _describe_room(result)
    if hasattr(result, "subscribe_mode"):
        return _describe_peer(result)
    if hasattr(result, "connection_url"):
        return {"connection_url": result.connection_url, "token": result.token}
    if hasattr(result, "room_id") and hasattr(result, "_socket_url"):
        return {"id": result.id, "room_id": result.room_id, "socket_url": result._socket_url}
    return repr(result)


def rest_calls(client: Any) -> list[tuple[str, Callable[[], Any]]]:
    """The REST calls whose requests are compared, by name."""
    from fishjam import AgentOptions, AgentOutputOptions, PeerOptions, PeerOptionsVapi, RoomOptions

    full_room = RoomOptions(
        max_peers=10,
        video_codec="vp8",
        webhook_url="http://127.0.0.1:5000/webhook",
        room_type="audio_only",
        public=True,
        batch_webhook_notifications=True,
    )
    return [
        ("check_credentials", lambda: client.check_credentials()),
        ("create_room_default", lambda: client.create_room()),
        ("create_room_options", lambda: client.create_room(full_room)),
        ("create_room_codec_only", lambda: client.create_room(RoomOptions(video_codec="h264"))),
        (
            "create_room_livestream",
            lambda: client.create_room(RoomOptions(room_type="livestream", public=True)),
        ),
        ("get_all_rooms", lambda: client.get_all_rooms()),
        ("get_room", lambda: client.get_room(ROOM_ID)),
        ("get_room_quoted_id", lambda: client.get_room("a b/c?d#é")),
        ("create_peer_default", lambda: client.create_peer(ROOM_ID)),
        (
            "create_peer_metadata_manual",
            lambda: client.create_peer(
                ROOM_ID,
                PeerOptions(
                    metadata={"name": "Zoë 🐟", "is_test": True, "nested": {"b": [1, 2.5, None]}, "a": ""},
                    subscribe_mode="manual",
                ),
            ),
        ),
        ("create_peer_empty_metadata", lambda: client.create_peer(ROOM_ID, PeerOptions(metadata={}))),
        ("create_agent_default", lambda: client.create_agent(ROOM_ID)),
        (
            "create_agent_24k_manual",
            lambda: client.create_agent(
                ROOM_ID,
                AgentOptions(output=AgentOutputOptions(audio_sample_rate=24000), subscribe_mode="manual"),
            ),
        ),
        (
            "create_vapi_agent",
            lambda: client.create_vapi_agent(
                ROOM_ID, PeerOptionsVapi(api_key="test_api_key", call_id="test-call-id")
            ),
        ),
        (
            "create_vapi_agent_auto_close",
            lambda: client.create_vapi_agent(
                ROOM_ID, PeerOptionsVapi(api_key="k", call_id="c-1", auto_close=True)
            ),
        ),
        ("subscribe_peer", lambda: client.subscribe_peer(ROOM_ID, "agent-1", "peer-2")),
        ("subscribe_tracks", lambda: client.subscribe_tracks(ROOM_ID, "agent-1", ["track-a", "track-b"])),
        ("subscribe_tracks_empty", lambda: client.subscribe_tracks(ROOM_ID, "agent-1", [])),
        ("refresh_peer_token", lambda: client.refresh_peer_token(ROOM_ID, "peer-1")),
        ("delete_peer", lambda: client.delete_peer(ROOM_ID, "peer-1")),
        ("delete_room", lambda: client.delete_room(ROOM_ID)),
        ("viewer_token", lambda: client.create_livestream_viewer_token(ROOM_ID)),
        ("streamer_token", lambda: client.create_livestream_streamer_token(ROOM_ID)),
        ("moq_access_publish", lambda: client.create_moq_access(publish_path="stream")),
        ("moq_access_ttl", lambda: client.create_moq_access(subscribe_path="s", ttl=60)),
        ("moq_access_empty", lambda: client.create_moq_access()),
    ]


def record_rest() -> dict[str, Any]:
    """Requests (method, path, query, headers, body) and parsed results per call."""
    canned = CannedServer()
    client = make_client(httpx.MockTransport(canned))
    calls: dict[str, Any] = {}
    for name, call in rest_calls(client):
        before = len(canned.requests)
        try:
            result: Any = _describe_result(call())
        except Exception as exc:  # recorded, so differences show up in the comparison
            result = {"raised": type(exc).__name__, "message": str(exc)}
        calls[name] = {
            "requests": [_request_record(r) for r in canned.requests[before:]],
            "result": result,
        }
    return calls


def record_agent_urls() -> dict[str, Any]:
    """The agent socket URL derived from each shape of ``peer_websocket_url``."""
    canned = CannedServer()
    client = make_client(httpx.MockTransport(canned))
    urls: dict[str, Any] = {}
    for given in [
        "ws://127.0.0.1:5002/socket/peer/websocket",
        "http://127.0.0.1:5002/socket/peer/websocket",
        "wss://media.example/tenant-1/socket/agent/websocket",
        "127.0.0.1:5002/socket/peer/websocket",
        "https://media.example/prefix",
        "",
        None,
    ]:
        canned.peer_websocket_url = given
        urls[repr(given)] = client.create_agent(ROOM_ID)._socket_url
    return urls


# Error statuses on GET /room/{id}: (status, body, content type).
ERROR_CASES = [
    (400, b'{"errors":"bad request"}', "application/json"),
    (401, b'{"errors":"Invalid token"}', "application/json"),
    (402, b'{"errors":"quota"}', "application/json"),
    (404, b'{"errors":"Room x does not exist"}', "application/json"),
    (409, b'{"errors":"conflict"}', "application/json"),
    (422, b'{"errors":"unprocessable"}', "application/json"),
    (500, b'{"errors":"crash"}', "application/json"),
    (502, b"Bad Gateway", "text/plain"),
    (503, b'{"errors":"unavailable"}', "application/json"),
]


def record_errors() -> dict[str, Any]:
    """Which exception each failure status raises, and with what message."""
    canned = CannedServer()
    client = make_client(httpx.MockTransport(canned))
    errors: dict[str, Any] = {}
    for status, body, content_type in ERROR_CASES:
        canned.override = httpx.Response(status, content=body, headers={"content-type": content_type})
        try:
            client.get_room("x")
            errors[str(status)] = None
        except Exception as exc:
            errors[str(status)] = {"raised": type(exc).__name__, "message": str(exc)}
    canned.override = httpx.Response(404)
    try:
        client.check_credentials()
        errors["validate_404"] = None
    except Exception as exc:
        errors["validate_404"] = {"raised": type(exc).__name__, "message": str(exc)}
    return errors


def record_deprecation() -> list[Any]:
    """Warnings raised by the ``x-fishjam-api-deprecated`` header: once per client."""
    canned = CannedServer()
    notice = json.dumps({"status": "deprecated", "message": "please upgrade"})
    client = make_client(httpx.MockTransport(canned))
    seen: list[Any] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            canned.override = httpx.Response(
                200, json={"data": ROOM_JSON}, headers={"x-fishjam-api-deprecated": notice}
            )
            client.get_room(ROOM_ID)
        seen = [[w.category.__name__, str(w.message)] for w in caught if not issubclass(w.category, ResourceWarning)]
    unsupported = make_client(httpx.MockTransport(canned))
    canned.override = httpx.Response(
        200,
        json={"data": ROOM_JSON},
        headers={"x-fishjam-api-deprecated": json.dumps({"status": "unsupported", "message": "too old"})},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unsupported.get_room(ROOM_ID)
        # ResourceWarnings come from the garbage collector at random moments; not ours to compare.
        seen += [[w.category.__name__, str(w.message)] for w in caught if not issubclass(w.category, ResourceWarning)]
    return seen


async def collect() -> dict[str, Any]:
    """Run every scenario against whichever ``fishjam`` is importable."""
    import fishjam

    return {
        "sdk": {"version": fishjam.__version__, "module": fishjam.__file__},
        "agent": await record_agent_outgoing(),
        "agent_incoming": await record_agent_incoming(),
        "agent_auth_failure": await record_agent_auth_failure(),
        "notifier": await record_notifier(with_handler=True),
        "notifier_no_handler": await record_notifier(with_handler=False),
        "notifier_bad_token": await record_notifier_bad_token(),
        "rest": record_rest(),
        "agent_urls": record_agent_urls(),
        "errors": record_errors(),
        "deprecation": record_deprecation(),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(collect()), indent=1, sort_keys=True))
