"""Fuzz benchmark: a million generated inputs at a live server's sockets and REST, a canary room counted.

It starts a shoal server (or takes ``--url``/``--token``/``--log`` of one on this machine),
sets up a canary room — one agent publishing a 500 Hz 16 kHz tone paced in real time, one
agent listening — and measures the canary alone for a baseline (``--baseline-seconds``).
Then worker processes (``--workers``) throw ``--inputs`` generated inputs at the server,
at most ``--max-seconds``, over many connections at once (``--lanes`` per worker):

* **agent socket**: authenticated connections each carrying dozens of pipelined frames —
  ``AddTrack`` with hostile metadata (deep, huge, control characters, NaN, 4301-digit
  numbers, invalid JSON), ``TrackData`` of random bytes (Opus packets with a valid TOC
  and a random body), ``InterruptTrack``/``RemoveTrack`` — and often a last frame that
  must close the socket: garbage, a truncated or bit-flipped message, a text frame,
  unknown or malformed track ids, a second auth, an invalid ``AddTrack``;
* **peer socket**: ``connect`` and floods of ``update_endpoint_metadata``,
  ``update_track_metadata``, stats reports, candidates, ignored simulcast events with
  random fields, then a last frame as above (bad SDP, invalid JSON, server-only messages);
* **notifier socket**: auth and subscribe (sometimes with a wrong token), then a frame it
  must refuse;
* **unauthenticated**: one random frame (garbage, random messages generated from the
  protobuf descriptors, hostile tokens) on a fresh socket of a random kind;
* **REST**: raw HTTP/1.1 on keep-alive connections — every documented route and random
  ones, random methods, good/bad/missing tokens, random headers, hostile JSON bodies
  (room and peer configs with wrong types, hostile metadata and webhook URLs), invalid
  bodies; rooms a lane creates are deleted at the end of its batch.

It prints inputs sent by kind, socket closes by code, HTTP statuses by code, the server
errors seen — 5xx answers, sockets dropped without a close frame or closed 1011, and
ERROR/Traceback lines in the server log, each with the input that triggered it where the
client saw it — canary frames delivered / expected (baseline and under fuzz, with the
longest gap between frames), and the server's RSS before and after. Only loopback traffic.

Run: ``.venv/bin/python benchmarks/fuzz.py [--inputs 1000000] [--max-seconds 600] [--workers 2]
[--lanes 24] [--seed 1] [--baseline-seconds 5] [--url URL --token TOKEN --log FILE --pid PID]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import os
import platform
import random
import re
import string
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from fishjam._proto import agent_notifications_pb2 as A
from fishjam._proto import peer_notifications_pb2 as P
from fishjam._proto import server_notifications_pb2 as SM
from fishjam._proto.media_events import shared_pb2 as MS
from fishjam._proto.media_events.peer import peer_pb2 as MP
from fishjam._proto.notifications import shared_pb2 as S
from shoal.testing import start_server

RATE = 16000
FRAME_BYTES = RATE // 50 * 2  # one 20 ms frame of 16 kHz mono s16le
CANARY_HZ = 500
READ_TIMEOUT_S = 5.0
EXAMPLES_PER_SIGNATURE = 3

# --------------------------------------------------------------------------------------------
# Hostile values (one pool per worker, drawn with its seeded Random)


class Hostile:
    """Cheap random hostile strings, JSON texts, ids and bytes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        hex32 = "0123456789abcdef0123456789abcdef"
        self.near_ids = [
            "urn:" + hex32, " " + hex32[:30] + "\n", hex32[:31] + "_", "{" + hex32 + "}", "\u0660" * 32,
            str(uuid.UUID(hex32)).upper(), "a\nERROR forged log line", "", "\x00" * 32, "x" * 2000,
        ]
        self.words = [
            "", "null", "\n", "\r\n", "\x00", "\x1b[31m", "\u2028", "\ufeff", "日本語", "💥", "%s%n", "${jndi:x}",
            "'; DROP TABLE rooms; --", "\\", '"', "a\nERROR forged log line", "__proto__", "\U0010ffff",
        ]

    def text(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return self.rng.choice(self.words)
        if r < 0.7:
            return "".join(self.rng.choice(string.printable) for _ in range(self.rng.randrange(40)))
        if r < 0.85:
            return "".join(chr(self.rng.randrange(0x20, 0x2FFF)) for _ in range(self.rng.randrange(40)))
        if r < 0.97:
            return "".join(chr(self.rng.randrange(0, 0xA0)) for _ in range(self.rng.randrange(40)))
        return "x" * self.rng.choice([1000, 10_000, 60_000])

    def value(self, depth: int = 0) -> Any:
        """A random JSON value, sometimes nested deep."""
        r = self.rng.random()
        if depth == 0 and r < 0.005:
            return self.deep(self.rng.choice([50, 254, 255, 600, 900]))
        if depth > 3 or r < 0.5:
            return self.rng.choice([None, True, False, 0, -1, 2**53 + 1, 1e308, -0.0, self.text(), self.text()])
        if r < 0.75:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        return {self.text()[:30]: self.value(depth + 1) for _ in range(self.rng.randrange(4))}

    def deep(self, depth: int) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = [value] if depth % 2 else {"a": value}
        return value

    def json_text(self, valid_only: bool = False) -> str:
        """Metadata text: JSON mostly, with the texts that break JSON parsers."""
        r = self.rng.random()  # rare enough that one connection mostly carries at most one of these
        if r < 0.015:
            return self.rng.choice(["NaN", '{"a": Infinity}', "-Infinity", "1" * 4301, '{"n": ' + "9" * 5000 + "}"])
        if r < 0.035 and not valid_only:
            return self.rng.choice(["{", "not json", "\x00", "[1,]", self.text()])
        if r < 0.04:
            return "[" * 300 + "]" * 300 if r < 0.0375 else '{"a":' * 1200 + "1" + "}" * 1200
        try:
            return json.dumps(self.value())
        except (ValueError, RecursionError):  # nested past what json.dumps can write
            return "{}"

    def track_id(self) -> str:
        return uuid.uuid4().hex if self.rng.random() < 0.7 else str(uuid.uuid4())

    def bad_id(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return uuid.uuid4().hex  # well-formed, unknown
        if r < 0.7:
            return self.rng.choice(self.near_ids)
        if r < 0.995:
            return self.text()[:200]
        return "y" * 16_000  # a long id: what gets logged must be truncated

    def bytes(self, size: int = 64) -> bytes:
        return self.rng.randbytes(self.rng.randrange(size + 1))


# --------------------------------------------------------------------------------------------
# Random protobuf messages from descriptors, and damage


_INT_BITS = {
    FieldDescriptor.TYPE_INT32: (True, 32), FieldDescriptor.TYPE_SINT32: (True, 32), FieldDescriptor.TYPE_SFIXED32: (True, 32),
    FieldDescriptor.TYPE_UINT32: (False, 32), FieldDescriptor.TYPE_FIXED32: (False, 32),
    FieldDescriptor.TYPE_INT64: (True, 64), FieldDescriptor.TYPE_SINT64: (True, 64), FieldDescriptor.TYPE_SFIXED64: (True, 64),
    FieldDescriptor.TYPE_UINT64: (False, 64), FieldDescriptor.TYPE_FIXED64: (False, 64),
}


class Messages:
    """Fills generated message classes field by field: one oneof member, random values elsewhere."""

    def __init__(self, hostile: Hostile) -> None:
        self.h = hostile
        self.rng = hostile.rng

    def scalar(self, field: FieldDescriptor) -> Any:
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            if field.name.endswith("id"):
                return self.h.track_id() if self.rng.random() < 0.5 else self.h.bad_id()
            return self.h.json_text() if "metadata" in field.name else self.h.text()
        if kind == FieldDescriptor.TYPE_BYTES:
            return self.h.bytes(256)
        if kind == FieldDescriptor.TYPE_BOOL:
            return self.rng.random() < 0.5
        if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            return self.rng.choice([0.0, -1.5, math.inf, -math.inf, math.nan, 1e38, self.rng.random()])
        if kind == FieldDescriptor.TYPE_ENUM:
            known = [v.number for v in field.enum_type.values]
            return self.rng.choice(known) if self.rng.random() < 0.8 else self.rng.randrange(-(2**31), 2**31)
        signed, bits = _INT_BITS[kind]
        if self.rng.random() < 0.7:
            return self.rng.choice([0, 1, 2, 3, 16000, 24000, 44100, 48000])
        low = -(1 << (bits - 1)) if signed else 0
        return self.rng.randrange(low, low + (1 << bits))

    def fill(self, message: Message, depth: int = 0) -> Message:
        if depth > 3:
            return message
        descriptor = message.DESCRIPTOR
        for oneof in descriptor.oneofs:
            choice = self.rng.choice([None, *oneof.fields])
            if choice is not None:
                self.set(message, choice, depth)
        for f in descriptor.fields:
            if f.containing_oneof is None and self.rng.random() < 0.5:
                self.set(message, f, depth)
        return message

    def set(self, message: Message, f: FieldDescriptor, depth: int) -> None:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            container = getattr(message, f.name)
            value_field = f.message_type.fields_by_name["value"]
            for _ in range(self.rng.randrange(4)):
                key = self.scalar(f.message_type.fields_by_name["key"])
                if value_field.message_type is not None:
                    self.fill(container[key], depth + 1)
                else:
                    container[key] = self.scalar(value_field)
        elif f.is_repeated:
            container = getattr(message, f.name)
            for _ in range(self.rng.randrange(4)):
                if f.message_type is not None:
                    self.fill(container.add(), depth + 1)
                else:
                    container.append(self.scalar(f))
        elif f.message_type is not None:
            sub = getattr(message, f.name)
            sub.SetInParent()
            self.fill(sub, depth + 1)
        else:
            try:
                setattr(message, f.name, self.scalar(f))
            except (ValueError, TypeError):
                pass

    def random(self, cls: type[Message]) -> bytes:
        return self.fill(cls()).SerializeToString()

    def damage(self, data: bytes) -> bytes:
        buf = bytearray(data)
        how = self.rng.randrange(4)
        if how == 0 and buf:
            del buf[self.rng.randrange(len(buf)) :]
        elif how == 1 and buf:
            for _ in range(self.rng.randrange(1, 8)):
                buf[self.rng.randrange(len(buf))] ^= 1 << self.rng.randrange(8)
        elif how == 2:
            buf += self.h.bytes(32)
        else:
            buf = bytearray(self.h.bytes(200))
        return bytes(buf)


# --------------------------------------------------------------------------------------------
# Frames


def agent_msg(**content: Any) -> bytes:
    return A.AgentRequest(**content).SerializeToString()


def agent_auth(token: str) -> bytes:
    return agent_msg(auth_request=A.AgentRequest.AuthRequest(token=token))


def add_track(track_id: str, metadata: str, encoding: int, rate: int, channels: int = 1, kind: int = S.TRACK_TYPE_AUDIO) -> bytes:
    params = A.AgentRequest.AddTrack.CodecParameters(encoding=encoding, sample_rate=rate, channels=channels)
    track = S.Track(id=track_id, type=kind, metadata=metadata)
    return agent_msg(add_track=A.AgentRequest.AddTrack(track=track, codec_params=params))


def track_data(track_id: str, data: bytes) -> bytes:
    return agent_msg(track_data=A.AgentRequest.TrackData(track_id=track_id, data=data))


def peer_msg(**content: Any) -> bytes:
    return P.PeerMessage(**content).SerializeToString()


def media(**content: Any) -> bytes:
    return peer_msg(peer_media_event=MP.MediaEvent(**content))


def peer_auth(token: str) -> bytes:
    return peer_msg(auth_request=P.PeerMessage.AuthRequest(token=token, sdk_version="fuzz-0.0.1"))


def notifier_auth(token: str) -> bytes:
    return SM.ServerMessage(auth_request=SM.ServerMessage.AuthRequest(token=token)).SerializeToString()


SUBSCRIBE = SM.ServerMessage(
    subscribe_request=SM.ServerMessage.SubscribeRequest(event_type=SM.ServerMessage.EVENT_TYPE_SERVER_NOTIFICATION)
).SerializeToString()


# --------------------------------------------------------------------------------------------
# Tallies


@dataclass
class Tally:
    inputs: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    client_bugs: Counter[str] = field(default_factory=Counter)
    shapes: Counter[str] = field(default_factory=Counter)
    """4xx answers without the ``{"errors": str}`` body (the HTTP parser's own, for one): not server errors."""

    def error(self, signature: str, example: str) -> None:
        self.errors[signature] += 1
        shown = self.examples.setdefault(signature, [])
        if len(shown) < EXAMPLES_PER_SIGNATURE:
            shown.append(example[:400])

    def unshaped(self, signature: str, example: str) -> None:
        self.shapes[signature] += 1
        shown = self.examples.setdefault(signature, [])
        if len(shown) < EXAMPLES_PER_SIGNATURE:
            shown.append(example[:300])

    def merge(self, other: dict[str, Any]) -> None:
        for name in ("inputs", "closes", "statuses", "errors", "shapes", "client_bugs"):
            getattr(self, name).update(other[name])
        for signature, shown in other["examples"].items():
            mine = self.examples.setdefault(signature, [])
            mine.extend(shown[: EXAMPLES_PER_SIGNATURE - len(mine)])

    def as_dict(self) -> dict[str, Any]:
        return {"inputs": dict(self.inputs), "closes": dict(self.closes), "statuses": dict(self.statuses),
                "errors": dict(self.errors), "shapes": dict(self.shapes), "client_bugs": dict(self.client_bugs),
                "examples": self.examples}


_DEEP = re.compile(rb"(\[|\{\"a\":){200,}")
_LONG_NUMBER = re.compile(rb"\d{4301,}")


def suspects(frames: list[bytes | str]) -> list[str]:
    """What in a connection's frames is most likely to have hurt the server."""
    found = []
    for index, frame in enumerate(frames):
        data = frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame
        if match := _DEEP.search(data):
            found.append(f"frame {index}: JSON nested {len(match.group(0)) // len(match.group(1))}+ levels")
        if _LONG_NUMBER.search(data):
            found.append(f"frame {index}: a number of 4301+ digits")
        if b"NaN" in data or b"Infinity" in data:
            found.append(f"frame {index}: NaN/Infinity in JSON")
        if len(data) > 50_000:
            found.append(f"frame {index}: {len(data):,} bytes")
    return found[:4]


def describe(frames: list[bytes | str]) -> str:
    """Suspect frames of a connection and its last frames, short enough to print."""
    parts = [repr(frame[:80]) + (f"…({len(frame)} B)" if len(frame) > 80 else "") for frame in frames[-2:]]
    found = suspects(frames)
    return (f"[{'; '.join(found)}] " if found else "") + f"{len(frames)} frames, last: " + " then ".join(parts)


# --------------------------------------------------------------------------------------------
# Worker: lanes of connections


class Lane:
    def __init__(self, url: str, token: str, rng: random.Random, tally: Tally) -> None:
        self.url, self.token, self.rng, self.tally = url, token, rng, tally
        self.ws_url = url.replace("http", "ws", 1)
        self.h = Hostile(rng)
        self.m = Messages(self.h)
        self.http = httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30)
        self.room_id = ""
        self.agent_token = self.peer_token = ""
        host, _, port = urlsplit(url).netloc.partition(":")
        self.host, self.port = host, int(port or 80)

    async def setup(self) -> None:
        """A room of this lane's own, with one agent and one WebRTC peer to authenticate as."""
        self.room_id = (await self.http.post("/room", json={})).json()["data"]["room"]["id"]
        agent = {"type": "agent", "options": {"output": {"audioFormat": "pcm16", "audioSampleRate": RATE}}}
        self.agent_token = (await self.http.post(f"/room/{self.room_id}/peer", json=agent)).json()["data"]["token"]
        peer = {"type": "webrtc", "options": {}}
        self.peer_token = (await self.http.post(f"/room/{self.room_id}/peer", json=peer)).json()["data"]["token"]

    async def teardown(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await self.http.delete(f"/room/{self.room_id}")
        await self.http.aclose()

    # one connection each --------------------------------------------------------------

    async def socket(self, kind: str, path: str, frames: list[bytes | str]) -> int:
        """Open ``path``, send ``frames`` pipelined, then a close; record how it ended; returns frames sent.

        The server reads frames in order, so its close frame answers for all of them: 1000 if it
        took every frame (it echoes ours), its own code if one of them made it close first.
        """
        sent = 0
        try:
            async with connect(f"{self.ws_url}{path}", max_size=None, ping_interval=None, compression=None,
                               open_timeout=30, close_timeout=5) as ws:
                try:
                    for frame in frames:
                        await ws.send(frame)
                        sent += 1
                    await ws.close()
                except ConnectionClosed:
                    pass
                self.note_close(kind, ws, frames[:sent + 1])
        except InvalidStatus as exc:
            self.tally.closes[f"{kind}: handshake HTTP {exc.response.status_code}"] += 1
            if exc.response.status_code >= 500:
                self.tally.error(f"{kind} handshake HTTP {exc.response.status_code}", describe(frames))
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.tally.closes[f"{kind}: connect failed"] += 1
            self.tally.error(f"{kind} connect failed: {type(exc).__name__}", str(exc))
        self.tally.inputs[kind] += sent
        return sent

    def note_close(self, kind: str, ws: ClientConnection, frames: list[bytes | str]) -> None:
        received = ws.protocol.close_rcvd
        code = received.code if received is not None else None
        reason = received.reason if received is not None else ""
        label = f"{kind}: {code}" if code is not None else f"{kind}: no close frame"
        self.tally.closes[label] += 1
        if code is None:
            self.tally.error(f"{kind} socket dropped without a close frame", describe(frames))
        elif code == 1011:
            self.tally.error(f"{kind} socket closed 1011: {reason[:60]}", describe(frames))

    async def agent_connection(self, budget: int) -> int:
        frames: list[bytes | str] = [agent_auth(self.agent_token)]
        tracks: dict[str, bool] = {}  # id -> opus
        rng, h = self.rng, self.h
        for _ in range(min(budget, rng.randrange(10, 120))):
            r = rng.random()
            if not tracks or (r < 0.06 and len(tracks) < 4):
                track_id = h.track_id()
                opus = rng.random() < 0.4
                encoding = S.TRACK_ENCODING_OPUS if opus else S.TRACK_ENCODING_PCM16
                frames.append(add_track(track_id, h.json_text(), encoding, rng.choice([16000, 24000, 48000]), rng.choice([1, 2])))
                tracks[track_id] = opus
            elif r < 0.8:
                track_id, opus = rng.choice(list(tracks.items()))
                data = bytes([rng.choice([0x78, 0xFC, 0x08, 0x4B])]) + h.bytes(200) if opus else h.bytes(1200)
                frames.append(track_data(track_id, data))
            elif r < 0.9:
                frames.append(agent_msg(interrupt_track=A.AgentRequest.InterruptTrack(track_id=rng.choice(list(tracks)))))
            else:
                track_id = rng.choice(list(tracks))
                frames.append(agent_msg(remove_track=A.AgentRequest.RemoveTrack(track_id=track_id)))
                del tracks[track_id]
        if rng.random() < 0.6:
            frames.append(self.agent_terminal())
        return await self.socket("agent", "/socket/agent/websocket", frames)

    def agent_terminal(self) -> bytes | str:
        rng, h = self.rng, self.h
        r = rng.random()
        if r < 0.15:
            return self.m.damage(add_track(h.track_id(), h.json_text(), S.TRACK_ENCODING_PCM16, 16000))
        if r < 0.25:
            return h.text()[:200] or "x"
        if r < 0.5:
            which = rng.choice(["remove_track", "interrupt_track", "capture_image", "track_data"])
            body = {"track_id": h.bad_id()}
            cls = {"remove_track": A.AgentRequest.RemoveTrack, "interrupt_track": A.AgentRequest.InterruptTrack,
                   "capture_image": A.AgentRequest.CaptureImage, "track_data": A.AgentRequest.TrackData}[which]
            return agent_msg(**{which: cls(**body)})
        if r < 0.65:
            return add_track(h.bad_id(), h.json_text(), rng.choice([0, 1, 2, 7]), rng.choice([0, 8000, 44100, 16000]),
                             rng.choice([0, 1, 3]), rng.choice([S.TRACK_TYPE_AUDIO, S.TRACK_TYPE_VIDEO]))
        if r < 0.7:
            return agent_auth(self.agent_token)
        return self.m.random(A.AgentRequest)

    async def peer_connection(self, budget: int) -> int:
        rng, h = self.rng, self.h
        frames: list[bytes | str] = [peer_auth(self.peer_token), media(connect=MP.MediaEvent.Connect(metadata_json=h.json_text(True)))]
        for _ in range(min(budget, rng.randrange(10, 120))):
            r = rng.random()
            if r < 0.35:
                frames.append(media(update_endpoint_metadata=MP.MediaEvent.UpdateEndpointMetadata(metadata_json=h.json_text(True))))
            elif r < 0.5:
                body = MP.MediaEvent.UpdateTrackMetadata(track_id=h.bad_id(), metadata_json=h.json_text(True))
                frames.append(media(update_track_metadata=body))
            elif r < 0.65:
                frames.append(peer_msg(rtc_stats_report=P.PeerMessage.RTCStatsReport(data=h.text())))
            elif r < 0.75:
                c = MS.Candidate(candidate=h.text(), sdp_m_line_index=rng.randrange(-3, 5), sdp_mid=h.text()[:20])
                frames.append(media(candidate=c))
            elif r < 0.9:
                event = MP.MediaEvent()
                getattr(event, rng.choice(["track_bitrates", "enable_track_variant", "disable_track_variant",
                                           "set_target_track_variant"])).SetInParent()
                self.m.fill(event)  # random fields (and sometimes another member)
                frames.append(peer_msg(peer_media_event=event))
            elif r < 0.95:
                frames.append(media(unmute_track=MP.MediaEvent.UnmuteTrack(track_id=h.bad_id())))
            else:
                frames.append(media(renegotiate_tracks=MP.MediaEvent.RenegotiateTracks()))
        if rng.random() < 0.6:
            frames.append(self.peer_terminal())
        return await self.socket("peer", "/socket/peer/websocket", frames)

    def peer_terminal(self) -> bytes | str:
        rng, h = self.rng, self.h
        r = rng.random()
        if r < 0.1:
            sdp = rng.choice(["", "v=0", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", h.text(), "v=0\r\n" + "a=x\r\n" * 50])
            return media(sdp_offer=MP.MediaEvent.SdpOffer(sdp=sdp))
        if r < 0.25:
            return media(update_endpoint_metadata=MP.MediaEvent.UpdateEndpointMetadata(metadata_json=rng.choice(["{", "nope", "[1,]"])))
        if r < 0.35:
            return h.text()[:200] or "x"
        if r < 0.5:
            return self.m.damage(media(connect=MP.MediaEvent.Connect(metadata_json="{}")))
        if r < 0.55:
            return peer_auth(self.peer_token)
        if r < 0.6:
            return media(disconnect=MP.MediaEvent.Disconnect())
        return self.m.random(P.PeerMessage)

    async def notifier_connection(self) -> int:
        rng = self.rng
        token = self.token if rng.random() < 0.9 else rng.choice(["", "wrong", self.h.text()[:100]])
        frames: list[bytes | str] = [notifier_auth(token), SUBSCRIBE]
        for _ in range(rng.randrange(0, 3)):
            frames.append(rng.choice([SUBSCRIBE, self.m.random(SM.ServerMessage), self.m.damage(SUBSCRIBE), "text"]))
        return await self.socket("notifier", "/socket/server/websocket", frames)

    async def unauthenticated_connection(self) -> int:
        rng, h = self.rng, self.h
        path, cls, auth = rng.choice([
            ("/socket/agent/websocket", A.AgentRequest, agent_auth),
            ("/socket/peer/websocket", P.PeerMessage, peer_auth),
            ("/socket/server/websocket", SM.ServerMessage, notifier_auth),
        ])
        r = rng.random()
        if r < 0.3:
            frame: bytes | str = self.m.random(cls)
        elif r < 0.5:
            frame = auth(rng.choice([h.bad_id(), h.text(), "x" * 5000, self.agent_token[:-1]]))
        elif r < 0.7:
            frame = self.m.damage(auth(self.agent_token))
        elif r < 0.85:
            frame = h.bytes(100)
        else:
            frame = h.text()[:100] or "x"
        if rng.random() < 0.05:
            path = rng.choice(["/socket/agent/websocket/x", "/socket/nope", "/room"])
        return await self.socket("unauthenticated", path, [frame])

    # REST ------------------------------------------------------------------------------

    def rest_request(self) -> tuple[bytes, str, str]:
        """One raw HTTP/1.1 request: (bytes, method, path template for reporting)."""
        rng, h = self.rng, self.h
        room = self.room_id if rng.random() < 0.6 else rng.choice([str(uuid.uuid4()), h.bad_id()[:60]])
        peer = str(uuid.uuid4())
        templates = [
            ("POST", "/room"), ("GET", "/room"), ("GET", "/room/{room}"), ("DELETE", "/room/{room}"),
            ("POST", "/room/{room}/peer"), ("DELETE", "/room/{room}/peer/{peer}"),
            ("POST", "/room/{room}/peer/{peer}/refresh_token"), ("POST", "/room/{room}/peer/{peer}/subscribe_peer"),
            ("POST", "/room/{room}/peer/{peer}/subscribe_tracks"), ("POST", "/room/{room}/viewer"),
            ("POST", "/room/{room}/streamer"), ("POST", "/moq/access"), ("GET", "/health"), ("GET", "/validate"),
            ("GET", "/rtc/stats"), ("GET", "/openapi.json"),
        ]
        method, template = rng.choice(templates)
        if rng.random() < 0.1:
            method = rng.choice(["PUT", "PATCH", "OPTIONS", "GET", "POST", "DELETE", "FOO"])
        if rng.random() < 0.05:
            template = "/" + "".join(rng.choice(string.ascii_letters + "/%.-_~") for _ in range(rng.randrange(1, 40)))
        if template == "/room" and method == "DELETE":
            method = "GET"
        path = template.replace("{room}", _quote(room)).replace("{peer}", peer)
        if rng.random() < 0.05:
            path += "?" + _quote(h.text()[:50])
        if method == "DELETE" and "{room}" in template and room == self.room_id:
            path = path.replace(self.room_id, str(uuid.uuid4()), 1)  # keep the lane's own room
        body = self.rest_body(template) if method in ("POST", "PUT", "PATCH") else b""
        headers = [("host", f"{self.host}:{self.port}")]
        r = rng.random()
        if r < 0.85:
            headers.append(("authorization", f"Bearer {self.token}"))
        elif r < 0.9:
            headers.append(("authorization", rng.choice(["Bearer ", "Bearer wrong", "Basic eA==", self.token])))
        if body or rng.random() < 0.5:
            headers.append(("content-type", rng.choice(["application/json"] * 8 + ["text/plain", "application/x-www-form-urlencoded"])))
        for _ in range(rng.choice([0, 0, 0, 1, 3])):
            headers.append(("x-" + "".join(rng.choice(string.ascii_lowercase) for _ in range(6)),
                            "".join(rng.choice(string.printable[:94]) for _ in range(rng.randrange(1, 60)))))
        if rng.random() < 0.002:
            headers.append(("x-big", "b" * 60_000))
        headers.append(("content-length", str(len(body))))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        return head.encode("latin-1", errors="replace") + body, method, template

    def rest_body(self, template: str) -> bytes:
        rng, h = self.rng, self.h
        r = rng.random()
        if r < 0.08:
            return h.bytes(200)
        if r < 0.12:
            return h.json_text().encode("utf-8", errors="surrogatepass")
        value: Any
        if template == "/room":
            value = {k: v for k, v in {
                "maxPeers": rng.choice([None, 1, 0, -1, 10**30, "3", 2.5, True]),
                "videoCodec": rng.choice([None, "h264", "vp8", "x", 1]),
                "webhookUrl": rng.choice([None, "http://127.0.0.1:9/hook", "http://127.0.0.1:9/\x00", h.text()[:200], 5]),
                "roomType": rng.choice([None, "conference", "audio_only", "livestream", "nope", []]),
                "public": rng.choice([None, True, "yes"]),
                h.text()[:10]: h.value(),
            }.items() if v is not None or rng.random() < 0.2}
        elif template == "/room/{room}/peer":
            options: dict[str, Any] = {"metadata": rng.choice([{"m": h.value()}, h.value(), None])}
            if rng.random() < 0.5:
                options["subscribeMode"] = rng.choice(["auto", "manual", "x", 3])
            if rng.random() < 0.3:
                options["output"] = {"audioFormat": rng.choice(["pcm16", "opus", 1]), "audioSampleRate": rng.choice([16000, 24000, 7, "x"])}
            value = {"type": rng.choice(["webrtc", "agent", "vapi", "nope", None]), "options": options}
        elif template.endswith("subscribe_tracks"):
            value = {"trackIds": rng.choice([[h.bad_id() for _ in range(3)], h.bad_id(), None, [1, 2]])}
        else:
            value = h.value()
        try:
            return json.dumps(value).encode()
        except (ValueError, RecursionError):
            return b"{}"

    async def rest_connection(self, budget: int) -> int:
        sent = 0
        created: list[str] = []
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            self.tally.error(f"rest connect failed: {type(exc).__name__}", str(exc))
            return 0
        try:
            for _ in range(min(budget, self.rng.randrange(10, 60))):
                request, method, template = self.rest_request()
                writer.write(request)
                await writer.drain()
                sent += 1
                answer = await read_response(reader)
                if answer is None:
                    self.tally.statuses["connection closed"] += 1
                    break
                status, body, close = answer
                self.tally.statuses[str(status)] += 1
                if status >= 500 and status != 501:
                    self.tally.error(f"REST {status} on {method} {template}", f"{request[:300]!r} -> {body[:200]!r}")
                elif 400 <= status < 600 and not _error_shaped(body) and not (template == "/validate" and status == 404):
                    self.tally.unshaped(f"REST {status} without an errors body: {body[:60]!r}", f"{request[:200]!r}")
                if status == 201 and template == "/room":
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        created.append(json.loads(body)["data"]["room"]["id"])
                if close:
                    break
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            self.tally.statuses["connection reset"] += 1
            self.tally.error(f"REST connection dropped: {type(exc).__name__}", f"after {sent} requests")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        for room_id in created:  # rooms the fuzz made do not pile up
            with contextlib.suppress(httpx.HTTPError):
                await self.http.delete(f"/room/{room_id}")
        self.tally.inputs["rest"] += sent
        return sent


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _error_shaped(body: bytes) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("errors"), str)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool] | None:
    """Status, body and whether the server will close, of one HTTP/1.1 response; None if it closed."""
    async with asyncio.timeout(30):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, body, headers.get("connection", "").lower() == "close"


WEIGHTS = {"agent": 0.36, "peer": 0.36, "rest": 0.16, "notifier": 0.04, "unauthenticated": 0.08}
"""Share of connections by kind (agent and peer connections carry dozens of frames each)."""


async def run_worker(url: str, token: str, inputs: int, deadline: float, lanes: int, seed: int) -> dict[str, Any]:
    tally = Tally()
    remaining = [inputs]
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())

    async def lane(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        me = Lane(url, token, rng, tally)
        await me.setup()
        try:
            while remaining[0] > 0 and time.time() < deadline:
                kind = rng.choices(kinds, weights)[0]
                budget = min(remaining[0], 200)
                try:
                    if kind == "agent":
                        n = await me.agent_connection(budget)
                    elif kind == "peer":
                        n = await me.peer_connection(budget)
                    elif kind == "rest":
                        n = await me.rest_connection(budget)
                    elif kind == "notifier":
                        n = await me.notifier_connection()
                    else:
                        n = await me.unauthenticated_connection()
                except Exception as exc:  # a bug of this script, not the server's: say so and go on
                    tally.client_bugs[f"{kind}: {type(exc).__name__}: {str(exc)[:100]}"] += 1
                    n = 1
                remaining[0] -= max(n, 1)
        finally:
            await me.teardown()

    results = await asyncio.gather(*(lane(i) for i in range(lanes)), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            tally.error(f"fuzz lane failed: {type(result).__name__}", repr(result))
    return tally.as_dict()


def worker_main(url: str, token: str, inputs: int, deadline: float, lanes: int, seed: int) -> dict[str, Any]:
    return asyncio.run(run_worker(url, token, inputs, deadline, lanes, seed))


# --------------------------------------------------------------------------------------------
# Canary: one agent speaks a tone in real time, another hears it


class Canary:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.arrivals: list[float] = []  # one entry per 20 ms frame received
        self.sent_frames = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._sockets: list[ClientConnection] = []
        self._speaking = True

    async def start(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, headers={"authorization": f"Bearer {self.token}"}, timeout=30) as http:
            room = (await http.post("/room", json={})).json()["data"]["room"]["id"]
            body = {"type": "agent", "options": {"output": {"audioFormat": "pcm16", "audioSampleRate": RATE}}}
            speaker = (await http.post(f"/room/{room}/peer", json=body)).json()["data"]["token"]
            listener = (await http.post(f"/room/{room}/peer", json=body)).json()["data"]["token"]
        ws_url = self.url.replace("http", "ws", 1) + "/socket/agent/websocket"
        self.listener = await connect(ws_url, max_size=None, ping_interval=None)
        await self.listener.send(agent_auth(listener))
        await self.listener.recv()
        self.speaker = await connect(ws_url, max_size=None, ping_interval=None)
        await self.speaker.send(agent_auth(speaker))
        await self.speaker.recv()
        self.track = uuid.uuid4().hex
        await self.speaker.send(add_track(self.track, '{"canary": true}', S.TRACK_ENCODING_PCM16, RATE))
        self._sockets = [self.listener, self.speaker]
        self._tasks = [asyncio.create_task(self._hear()), asyncio.create_task(self._speak())]

    async def _hear(self) -> None:
        message = A.AgentResponse()
        carry = 0
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.listener:
                message.ParseFromString(frame)  # type: ignore[arg-type]
                if message.WhichOneof("content") == "track_data" and message.track_data.track.id == self.track:
                    carry += len(message.track_data.data)
                    now = time.monotonic()
                    while carry >= FRAME_BYTES:
                        carry -= FRAME_BYTES
                        self.arrivals.append(now)

    async def _speak(self) -> None:
        """One second of tone each second, on absolute deadlines, about half a second ahead."""
        import numpy as np

        t = np.arange(RATE) / RATE
        second = (np.sin(2 * np.pi * CANARY_HZ * t) * 8000).astype("<i2").tobytes()
        anchor = time.monotonic()
        n = 0
        while self._speaking:
            await self.speaker.send(track_data(self.track, second))
            self.sent_frames += 50
            n += 1
            await asyncio.sleep(max(0.0, anchor + n - 0.5 - time.monotonic()))

    async def stop_speaking(self) -> None:
        self._speaking = False
        await asyncio.wait_for(self._tasks[1], 5)

    async def wait_delivered(self, timeout: float) -> None:
        for _ in range(int(timeout / 0.05)):
            if len(self.arrivals) >= self.sent_frames:
                return
            await asyncio.sleep(0.05)

    def window(self, start: float, end: float) -> tuple[int, float]:
        """Frames received in [start, end) and the longest gap between frames there (s)."""
        times = [t for t in self.arrivals if start <= t < end]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        return len(times), max(gaps, default=math.nan)

    async def close(self) -> None:
        for ws in self._sockets:
            await ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# --------------------------------------------------------------------------------------------
# Server observation


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return math.nan
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


_IDS = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|\d+")


def log_errors(path: Path | None, offset: int) -> tuple[Counter[str], dict[str, str], int]:
    """ERROR/CRITICAL lines and tracebacks logged after ``offset``: signature → count, an example, log bytes."""
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    if path is None or not path.exists():
        return counts, examples, 0
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    lines = data.decode(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if " ERROR " in line or " CRITICAL " in line or line.startswith(("ERROR:", "CRITICAL:")):
            # the exception a traceback below this line ends with, if any
            cause = ""
            for follow in lines[i + 1 : i + 80]:
                if follow and not follow.startswith((" ", "Traceback", "\t")) and ("Error" in follow or "Exception" in follow):
                    cause = follow
                    break
                if " INFO " in follow or " WARNING " in follow or " ERROR " in follow:
                    break
            message = line.split(": ", 1)[-1]
            signature = _IDS.sub("N", message[:100]) + (f" | {_IDS.sub('N', cause[:120])}" if cause else "")
            counts[signature] += 1
            examples.setdefault(signature, (line[:300] + ("\n      " + cause[:300] if cause else "")))
        elif line.startswith("Traceback") and (i == 0 or (" ERROR " not in lines[i - 1] and "Exception" not in lines[i - 1])):
            counts["traceback without an ERROR line"] += 1
            examples.setdefault("traceback without an ERROR line", "\n      ".join(lines[max(0, i - 1) : i + 12])[:800])
    return counts, examples, len(data)


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line),
        platform.processor() or "unknown CPU",
    )
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"--url must be a loopback address (127.0.0.0/8, ::1, localhost), not {host!r}")


def table(title: str, counts: Counter[str] | dict[str, int], total_label: str = "total") -> None:
    print(f"\n{title}")
    for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {value:>10,}  {key}")
    print(f"  {sum(counts.values()):>10,}  {total_label}")


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    server = None
    if args.url:
        require_loopback(args.url)
        url, token, log_path, pid = args.url.rstrip("/"), args.token, (Path(args.log) if args.log else None), args.pid
    else:
        server = start_server(["--log-level", "info"])
        url, token, log_path, pid = server.url, server.token, server.log_path, server.process.pid
    print(f"machine: {machine()}")
    print(f"server: {url} (pid {pid if pid else 'unknown'}, log {log_path or 'not read'})")
    print(f"plan: {args.inputs:,} inputs, at most {args.max_seconds:g} s, {args.workers} workers × {args.lanes} lanes, seed {args.seed}")
    canary = Canary(url, token)
    try:
        await canary.start()
        await asyncio.sleep(1.0)  # the first second plays
        log_offset = log_path.stat().st_size if log_path and log_path.exists() else 0
        base_start = time.monotonic()
        await asyncio.sleep(args.baseline_seconds)
        base_end = time.monotonic()
        rss_before = rss_mb(pid)

        deadline = time.time() + args.max_seconds
        loop = asyncio.get_running_loop()
        share = [args.inputs // args.workers + (1 if i < args.inputs % args.workers else 0) for i in range(args.workers)]
        fuzz_start = time.monotonic()
        with ProcessPoolExecutor(args.workers) as pool:
            futures = [
                loop.run_in_executor(pool, worker_main, url, token, n, deadline, args.lanes, args.seed * 100 + i)
                for i, n in enumerate(share)
            ]
            results = await asyncio.gather(*futures)
        fuzz_end = time.monotonic()
        await asyncio.sleep(2.0)  # sockets the workers closed are gone, and the server idles
        rss_after = rss_mb(pid)
        await canary.stop_speaking()
        await canary.wait_delivered(15)
        await canary.close()
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.sleep(0.5)
    tally = Tally()
    for result in results:
        tally.merge(result)
    logged, logged_examples, log_bytes = log_errors(log_path, log_offset)
    if server is not None:
        server.stop()

    fuzz_s = fuzz_end - fuzz_start
    total_inputs = sum(tally.inputs.values())
    table("inputs sent, by kind", tally.inputs, f"inputs in {fuzz_s:.0f} s ({total_inputs / fuzz_s:,.0f}/s)")
    table("socket closes, by kind and the server's close code", tally.closes, "connections")
    table("HTTP answers, by status", tally.statuses, "requests")

    base_frames, base_gap = canary.window(base_start, base_end)
    fuzz_frames, fuzz_gap = canary.window(fuzz_start, fuzz_end)
    print("\ncanary (500 Hz, 16 kHz pcm16, 20 ms frames, paced by the server)")
    print(f"  {'phase':<10} {'seconds':>8} {'frames':>8} {'expected':>9} {'frames/s':>9} {'longest gap':>12}")
    print(f"  {'baseline':<10} {base_end - base_start:>8.1f} {base_frames:>8} {int((base_end - base_start) * 50):>9} "
          f"{base_frames / (base_end - base_start):>9.1f} {1000 * base_gap:>9.0f} ms")
    print(f"  {'fuzz':<10} {fuzz_s:>8.1f} {fuzz_frames:>8} {int(fuzz_s * 50):>9} {fuzz_frames / fuzz_s:>9.1f} {1000 * fuzz_gap:>9.0f} ms")
    print(f"  whole run: {len(canary.arrivals)} frames delivered / {canary.sent_frames} sent")
    print(f"\nserver RSS: {rss_before:.0f} MB before the fuzz, {rss_after:.0f} MB after; log grew {log_bytes / 1e6:.1f} MB")

    # The fuzz itself points webhooks at a closed loopback port: the server saying so is expected.
    expected = {sig: n for sig, n in logged.items() if "notification not delivered" in sig}
    for sig in expected:
        del logged[sig]
    server_errors = sum(tally.errors.values()) + sum(logged.values())
    print(f"\nserver errors: {server_errors}")
    for signature, count in tally.errors.most_common():
        print(f"  {count:>8,}  {signature}")
        for example in tally.examples.get(signature, []):
            print(f"            input: {example}")
    for signature, count in logged.most_common():
        print(f"  {count:>8,}  log: {signature}")
        print(f"            {logged_examples[signature]}")
    for signature, count in expected.items():
        print(f"  (expected, not counted) {count:,} log: {signature}")
    if tally.shapes:
        print("\n4xx answers without an {\"errors\": str} body (not counted as server errors)")
        for signature, count in tally.shapes.most_common():
            print(f"  {count:>8,}  {signature}")
            for example in tally.examples.get(signature, [])[:1]:
                print(f"            input: {example}")
    if tally.client_bugs:
        print("\nfuzz client failures (this script's, not the server's)")
        for signature, count in tally.client_bugs.most_common():
            print(f"  {count:>8,}  {signature}")
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 1 if server_errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lanes", type=int, default=24, help="concurrent connections per worker")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--url", help="a running server on this machine (loopback only); default: start one")
    parser.add_argument("--token", help="its management token (with --url)")
    parser.add_argument("--log", help="its log file, scanned for ERROR lines and tracebacks (with --url)")
    parser.add_argument("--pid", type=int, help="its process id, for RSS (with --url)")
    args = parser.parse_args()
    if args.url and not args.token:
        parser.error("--url needs --token")
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
