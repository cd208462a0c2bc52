"""The WebRTC test peer without a server: SDP and offer maps, signaling rules, sources, recordings.

The signaling tests drive ``WebRTCPeer.handle_server_event`` directly and capture what it
sends; a second aiortc connection plays the server's answerer where an answer is needed.
"""

from __future__ import annotations

import asyncio
import fractions
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder as AiortcOpusEncoder
from aiortc.mediastreams import MediaStreamError
from websockets.asyncio.server import Server, ServerConnection, serve

from fishjam._proto import peer_notifications_pb2 as pn
from fishjam._proto.media_events.peer import peer_pb2
from fishjam._proto.media_events.server import server_pb2
from shoal.media.opus import OpusDecoder
from shoal.testing import (
    GeneratorSource,
    OpusPacketSource,
    PeerAuthError,
    PeerProtocolError,
    Recording,
    ToneSource,
    WavSource,
    WebRTCPeer,
    encode_opus_tone,
)
from shoal.testing.peer import (
    audio_to_mono48k,
    sdp_offer_event,
    socket_url,
    split_candidates,
    strip_end_of_candidates,
)
from tests.support.audio import dominant_frequency

PM = pn.PeerMessage
SE = server_pb2.MediaEvent
CE = peer_pb2.MediaEvent


# ---- URL and SDP ---------------------------------------------------------------------------


def test_socket_url_appends_the_path_like_ts_client() -> None:
    assert socket_url("ws://127.0.0.1:5002") == "ws://127.0.0.1:5002/socket/peer/websocket"
    assert socket_url("ws://h:1/fj/") == "ws://h:1/fj/socket/peer/websocket"
    assert socket_url("http://h:1") == "ws://h:1/socket/peer/websocket"


SAMPLE_SDP = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=ice-ufrag:sess",
        "a=group:BUNDLE 0 1",
        "m=audio 50000 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 10.0.0.5",
        "a=mid:0",
        "a=ice-ufrag:abcd",
        "a=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host",
        "a=candidate:2 1 udp 1694498815 1.2.3.4 50000 typ srflx raddr 10.0.0.5 rport 50000",
        "a=end-of-candidates",
        "a=sendonly",
        "m=audio 50000 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 10.0.0.5",
        "a=mid:1",
        "a=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host",
        "a=end-of-candidates",
        "a=recvonly",
        "",
    ]
)


def test_split_candidates_leaves_an_sdp_like_a_browser_offer_before_gathering() -> None:
    sdp, candidates = split_candidates(SAMPLE_SDP)
    assert "a=candidate" not in sdp and "a=end-of-candidates" not in sdp
    assert sdp.count("m=audio 9 UDP/TLS/RTP/SAVPF 96") == 2
    assert sdp.count("c=IN IP4 0.0.0.0") == 2 and "10.0.0.5" not in sdp
    assert sdp.endswith("a=recvonly\r\n") and "a=ice-ufrag:abcd" in sdp
    first = [c for c in candidates if c.sdp_m_line_index == 0]
    assert [c.candidate for c in first] == [
        "candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host",
        "candidate:2 1 udp 1694498815 1.2.3.4 50000 typ srflx raddr 10.0.0.5 rport 50000",
    ]
    assert {(c.sdp_mid, c.username_fragment) for c in first} == {("0", "abcd")}
    second = [c for c in candidates if c.sdp_m_line_index == 1]
    assert [(c.sdp_mid, c.username_fragment) for c in second] == [("1", "sess")]  # session-level ufrag


def test_strip_end_of_candidates_keeps_the_candidates() -> None:
    sdp = strip_end_of_candidates(SAMPLE_SDP)
    assert "a=end-of-candidates" not in sdp and sdp.count("a=candidate:") == 3


async def test_split_candidates_on_a_real_aiortc_offer() -> None:
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver(ToneSource(440), direction="sendonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp, candidates = split_candidates(pc.localDescription.sdp)
        assert candidates and "a=candidate" not in sdp
        assert all(c.candidate.startswith("candidate:") for c in candidates)
        ufrag = pc.localDescription.sdp.split("a=ice-ufrag:")[1].split("\r\n")[0]
        assert {c.username_fragment for c in candidates} == {ufrag}
    finally:
        await pc.close()


def test_sdp_offer_event_maps() -> None:
    event = sdp_offer_event("v=0", {"p:a": {"type": "microphone"}, "p:b": None}, {"0": "p:a"})
    offer = event.sdp_offer
    assert dict(offer.track_id_to_metadata_json) == {"p:a": '{"type":"microphone"}'}  # None is omitted
    assert set(offer.track_id_to_bitrates) == {"p:a", "p:b"}
    assert all(v == CE.TrackBitrates() for v in offer.track_id_to_bitrates.values())
    assert dict(offer.mid_to_track_id) == {"0": "p:a"}
    decoded = CE()
    decoded.ParseFromString(event.SerializeToString())
    assert set(decoded.sdp_offer.track_id_to_bitrates) == {"p:a", "p:b"}  # empty values still go on the wire


# ---- signaling without a server --------------------------------------------------------------


class Harness:
    """A peer whose outgoing frames are captured, and an aiortc answerer playing the server."""

    def __init__(self, trickle: bool = True) -> None:
        self.peer = WebRTCPeer(
            "ws://127.0.0.1:1", "tok", metadata={"name": "alice"}, trickle=trickle, send_stats=False
        )
        self.sent: list[pn.PeerMessage] = []
        self.server_pc = RTCPeerConnection()
        self.server_mids: dict[str, str] = {}
        self.peer._send_frame = self._capture
        self._sent_more = asyncio.Event()

    async def _capture(self, data: bytes) -> None:
        message = PM()
        message.ParseFromString(data)
        self.sent.append(message)
        self._sent_more.set()

    async def wait_sent(self, name: str, count: int = 1) -> None:
        """Wait until ``count`` media events ``name`` (or PeerMessages with that member) were sent."""

        def sent() -> int:
            return len(self.client_events(name)) + sum(m.WhichOneof("content") == name for m in self.sent)

        async with asyncio.timeout(5):
            while sent() < count:
                self._sent_more.clear()
                await self._sent_more.wait()

    def client_events(self, name: str) -> list[CE]:
        return [
            m.peer_media_event
            for m in self.sent
            if m.WhichOneof("content") == "peer_media_event"
            and m.peer_media_event.WhichOneof("content") == name
        ]

    async def feed(self, **event: object) -> None:
        await self.peer.handle_server_event(SE(**event))  # type: ignore[arg-type]

    async def connect(self, others: dict[str, SE.Endpoint] | None = None) -> None:
        self.peer.state = "joining"
        endpoints = {
            "p1": SE.Endpoint(metadata_json='{"peer":{"name":"alice"},"server":{}}'),
            **(others or {}),
        }
        await self.feed(connected=SE.Connected(endpoint_id="p1", endpoint_id_to_endpoint=endpoints))

    async def answer_last_offer(
        self, send_on: dict[str, str] | None = None, mid_map: dict[str, str] | None = None
    ) -> None:
        """Answer the last offer; ``send_on`` maps the client's recvonly mids to server track ids."""
        offer = self.client_events("sdp_offer")[-1].sdp_offer
        await self.server_pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        for mid, track_id in (send_on or {}).items():
            transceiver = next(t for t in self.server_pc.getTransceivers() if t.mid == mid)
            transceiver.sender.replaceTrack(ToneSource(660))
            transceiver.direction = "sendonly"
            self.server_mids[mid] = track_id
        await self.server_pc.setLocalDescription(await self.server_pc.createAnswer())
        answer_map = {**offer.mid_to_track_id, **self.server_mids} if mid_map is None else mid_map
        sdp = self.server_pc.localDescription.sdp
        await self.feed(sdp_answer=SE.SdpAnswer(sdp=sdp, mid_to_track_id=answer_map))

    async def close(self) -> None:
        await self.peer.close()
        await self.server_pc.close()


@pytest.fixture
async def harness() -> Callable[..., Awaitable[Harness]]:
    made: list[Harness] = []

    async def make(trickle: bool = True) -> Harness:
        h = Harness(trickle)
        made.append(h)
        await h.connect(
            {"agent": SE.Endpoint(endpoint_type="agent", metadata_json='{"peer":{},"server":{}}')}
        )
        return h

    yield make  # type: ignore[misc]
    for h in made:
        await h.close()


def directions(sdp: str) -> list[str]:
    return [
        line[2:]
        for line in sdp.splitlines()
        if line in ("a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv")
    ]


async def test_connected_sets_the_room_view_and_nothing_comes_before_it() -> None:
    h = Harness()
    await h.feed(endpoint_added=SE.EndpointAdded(endpoint_id="x", metadata_json="{}"))
    assert h.peer.remote_endpoints == {}  # R1: dropped (but recorded)
    assert [e.name for e in h.peer.events] == ["endpoint_added"]
    track = SE.Track(metadata_json='{"type":"microphone","paused":false}')
    await h.connect(
        {
            "p2": SE.Endpoint(
                metadata_json='{"peer":{"name":"bob"},"server":{}}', track_id_to_track={"p2:a": track}
            )
        }
    )
    assert h.peer.endpoint_id == "p1" and h.peer.state == "connected"
    assert h.peer.self_metadata == {"peer": {"name": "alice"}, "server": {}}
    assert h.peer.remote_endpoints["p2"].metadata == {"peer": {"name": "bob"}, "server": {}}
    assert h.peer.remote_endpoints["p2"].track_ids == {"p2:a"}
    assert h.peer.remote_tracks["p2:a"].metadata == {"type": "microphone", "paused": False}
    assert h.peer.pc is None  # R2: no peer connection before offer_data
    await h.close()


async def test_publish_offers_own_mids_only_and_trickles_candidates(
    harness: Callable[..., Awaitable[Harness]],
) -> None:
    h = await harness()
    publish = asyncio.create_task(h.peer.publish_audio(ToneSource(440)))
    await h.wait_sent("renegotiate_tracks")
    assert h.sent[-1].SerializeToString() == bytes.fromhex("2a022a00")  # the empty oneof member is emitted
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=2)))
    offer = h.client_events("sdp_offer")[-1].sdp_offer
    (track_id,) = h.peer.local_tracks
    assert track_id.startswith("p1:")
    assert dict(offer.mid_to_track_id) == {"0": track_id}
    assert dict(offer.track_id_to_metadata_json) == {track_id: '{"type":"microphone","paused":false}'}
    assert directions(offer.sdp) == ["sendonly", "recvonly", "recvonly"]
    assert "a=candidate" not in offer.sdp and "m=audio 9 " in offer.sdp
    candidates = h.client_events("candidate")
    assert candidates and all(
        c.candidate.sdp_mid == "0" and c.candidate.sdp_m_line_index == 0 for c in candidates
    )
    kinds = [m.peer_media_event.WhichOneof("content") for m in h.sent if m.HasField("peer_media_event")]
    assert kinds[kinds.index("sdp_offer") + 1] == "candidate"  # right after the offer
    assert not publish.done()  # resolves after the answer, not before
    await h.answer_last_offer()
    assert await asyncio.wait_for(publish, 2) == track_id
    assert h.peer.local_tracks[track_id].status == "done"

    # A second round: no more trickled candidates, the same recvonly total adds nothing.
    sent_candidates = len(candidates)
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=2)))
    second = h.client_events("sdp_offer")[-1].sdp_offer
    assert directions(second.sdp) == ["sendonly", "recvonly", "recvonly"]
    assert len(h.client_events("candidate")) == sent_candidates
    assert "a=end-of-candidates" not in second.sdp
    await h.answer_last_offer()


async def test_decreasing_counts_add_no_transceiver_and_warn(
    harness: Callable[..., Awaitable[Harness]],
) -> None:
    h = await harness()
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=2)))
    await h.answer_last_offer()
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=1)))
    assert directions(h.client_events("sdp_offer")[-1].sdp_offer.sdp) == ["recvonly", "recvonly"]
    assert any("RangeError" in w for w in h.peer.protocol_warnings)
    await h.answer_last_offer()


async def test_without_trickle_the_candidates_stay_in_the_sdp(
    harness: Callable[..., Awaitable[Harness]],
) -> None:
    h = await harness(trickle=False)
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=1)))
    assert "a=candidate:" in h.client_events("sdp_offer")[-1].sdp_offer.sdp
    assert not h.client_events("candidate")
    await h.answer_last_offer()


async def test_remote_track_is_mapped_by_mid_and_recorded(harness: Callable[..., Awaitable[Harness]]) -> None:
    h = await harness()
    track = SE.Track(metadata_json='{"type":"customAudio"}')
    await h.feed(tracks_added=SE.TracksAdded(endpoint_id="agent", track_id_to_track={"agent:t": track}))
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=1)))
    await h.answer_last_offer(send_on={"0": "agent:t"})
    remote = h.peer.remote_tracks["agent:t"]
    assert remote.mid == "0" and remote.metadata == {"type": "customAudio"}
    assert not h.peer.protocol_errors
    # ICE/DTLS between the two connections is real (loopback), so media does flow.
    found = await h.peer.wait_for_remote_track(endpoint_id="agent", timeout=10)
    assert found is remote and remote.ready and remote.kind == "audio"
    await remote.recording.wait_for_seconds(0.3, timeout=5)
    assert abs(dominant_frequency(remote.recording.samples(), 48000) - 660) < 5


async def test_unpublish_makes_the_m_line_inactive_and_drops_it_from_the_maps(
    harness: Callable[..., Awaitable[Harness]],
) -> None:
    h = await harness()
    publish = asyncio.create_task(h.peer.publish_audio(ToneSource(440)))
    await h.wait_sent("renegotiate_tracks")
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=0)))
    await h.answer_last_offer()
    track_id = await asyncio.wait_for(publish, 2)
    unpublish = asyncio.create_task(h.peer.unpublish(track_id))
    await h.wait_sent("renegotiate_tracks", 2)
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=0)))
    offer = h.client_events("sdp_offer")[-1].sdp_offer
    assert directions(offer.sdp) == ["inactive"]
    assert dict(offer.mid_to_track_id) == {} and dict(offer.track_id_to_metadata_json) == {}
    await h.answer_last_offer()
    await asyncio.wait_for(unpublish, 2)
    assert h.peer.local_tracks == {}


async def test_tracks_added_holds_local_operations_until_an_answer(
    harness: Callable[..., Awaitable[Harness]],
) -> None:
    h = await harness()
    await h.feed(tracks_added=SE.TracksAdded(endpoint_id="agent", track_id_to_track={"agent:t": SE.Track()}))
    publish = asyncio.create_task(h.peer.publish_audio(ToneSource(440)))
    await asyncio.sleep(0.05)
    assert not h.client_events("renegotiate_tracks")  # R4: locked by tracks_added
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=1)))
    await h.answer_last_offer(send_on={"0": "agent:t"})
    await h.wait_sent("renegotiate_tracks")
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=1)))
    offer = h.client_events("sdp_offer")[-1].sdp_offer
    assert directions(offer.sdp) == ["recvonly", "sendonly"]  # the new send m-line is appended
    assert list(offer.mid_to_track_id) == ["1"]
    await h.answer_last_offer()
    await asyncio.wait_for(publish, 2)


async def test_track_metadata_updates_wait_for_the_echoed_mid(
    harness: Callable[..., Awaitable[Harness]],
) -> None:
    h = await harness()
    publish = asyncio.create_task(h.peer.publish_audio(ToneSource(440)))
    await h.wait_sent("renegotiate_tracks")
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=0)))
    (track_id,) = h.peer.local_tracks
    await h.peer.update_track_metadata(track_id, {"type": "microphone", "paused": True})
    assert not h.client_events("update_track_metadata")  # still "offered"
    await h.answer_last_offer()
    await asyncio.wait_for(publish, 2)
    (update,) = h.client_events("update_track_metadata")
    assert update.update_track_metadata.metadata_json == '{"type":"microphone","paused":true}'


async def test_an_empty_mid_in_the_answer_is_rejected(harness: Callable[..., Awaitable[Harness]]) -> None:
    h = await harness()
    publish = asyncio.create_task(h.peer.publish_audio(ToneSource(440)))
    await h.wait_sent("renegotiate_tracks")
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=0)))
    await h.answer_last_offer(mid_map={"": "x"})
    with pytest.raises(PeerProtocolError):
        await asyncio.wait_for(publish, 2)
    assert any("empty mid" in e for e in h.peer.protocol_errors)
    assert h.peer.pc is not None and h.peer.pc.signalingState == "have-local-offer"  # answer not applied


async def test_room_events_update_the_view_in_order(harness: Callable[..., Awaitable[Harness]]) -> None:
    h = await harness()
    await h.feed(endpoint_added=SE.EndpointAdded(endpoint_id="p2", metadata_json='{"peer":{},"server":{}}'))
    await h.feed(
        tracks_added=SE.TracksAdded(endpoint_id="p2", track_id_to_track={"p2:a": SE.Track(metadata_json="")})
    )
    assert h.peer.remote_tracks["p2:a"].metadata is None  # "" is undefined
    await h.feed(
        track_updated=SE.TrackUpdated(endpoint_id="p2", track_id="p2:a", metadata_json='{"paused":true}')
    )
    assert h.peer.remote_tracks["p2:a"].metadata == {"paused": True}
    await h.feed(
        endpoint_updated=SE.EndpointUpdated(endpoint_id="p2", metadata_json='{"peer":{"x":1},"server":{}}')
    )
    assert h.peer.remote_endpoints["p2"].metadata["peer"] == {"x": 1}
    held = h.peer.remote_tracks["p2:a"]
    await h.feed(tracks_removed=SE.TracksRemoved(endpoint_id="p2", track_ids=["p2:a"]))
    await h.feed(endpoint_removed=SE.EndpointRemoved(endpoint_id="p2"))
    assert held.removed and "p2:a" not in h.peer.remote_tracks and "p2" not in h.peer.remote_endpoints
    names = [e.name for e in h.peer.events]
    assert names.index("tracks_removed") < names.index("endpoint_removed")
    event = await h.peer.wait_for_event(
        "endpoint_removed", lambda e: e.details["endpoint_id"] == "p2", timeout=1
    )
    assert event.details == {"endpoint_id": "p2"}
    assert list(h.peer.protocol_errors) == []
    await h.feed(tracks_removed=SE.TracksRemoved(endpoint_id="agent", track_ids=["nope"]))
    await h.feed(endpoint_removed=SE.EndpointRemoved(endpoint_id="nope"))
    assert len(h.peer.protocol_errors) == 2  # the browser throws on both


async def test_endpoint_removed_for_self_ends_the_media_session(
    harness: Callable[..., Awaitable[Harness]],
) -> None:
    h = await harness()
    await h.feed(offer_data=SE.OfferData(tracks_types=SE.OfferData.TrackTypes(audio=0)))
    await h.answer_last_offer()
    await h.feed(endpoint_removed=SE.EndpointRemoved(endpoint_id="p1"))
    assert h.peer.state == "removed" and h.peer.pc is None
    await h.feed(endpoint_added=SE.EndpointAdded(endpoint_id="late", metadata_json="{}"))
    assert "late" not in h.peer.remote_endpoints


async def test_error_event_sends_disconnect_and_closes(harness: Callable[..., Awaitable[Harness]]) -> None:
    h = await harness()
    await h.feed(error=SE.Error(message="boom"))
    assert h.peer.server_errors == ["boom"] and h.peer.state == "failed"
    assert h.sent[-1].SerializeToString() == bytes.fromhex("2a021200")  # peer_media_event{disconnect{}}


async def test_leave_sends_an_empty_disconnect(harness: Callable[..., Awaitable[Harness]]) -> None:
    h = await harness()
    await h.peer.leave()
    assert h.sent[-1].SerializeToString() == bytes.fromhex("2a021200")
    assert h.peer.state == "left"


async def test_stats_reports_are_sent_periodically(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shoal.testing.peer.STATS_INTERVAL_S", 0.01)
    h = Harness()
    h.peer.send_stats = True
    await h.connect()
    await h.wait_sent("rtc_stats_report", 2)
    report = next(m for m in h.sent if m.HasField("rtc_stats_report"))
    assert report.SerializeToString() == bytes.fromhex("22040a027b7d")
    await h.close()


# ---- over a socket, with a scripted server -------------------------------------------------


async def scripted_server(script: Callable[[ServerConnection], Awaitable[None]]) -> tuple[Server, str]:
    server = await serve(script, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    return server, f"ws://127.0.0.1:{port}"


async def test_a_close_before_authenticated_is_an_auth_error() -> None:
    seen: list[tuple[str, pn.PeerMessage]] = []

    async def script(ws: ServerConnection) -> None:
        message = PM()
        message.ParseFromString(await ws.recv())
        seen.append((ws.request.path if ws.request else "", message))
        await ws.close(1000, "invalid token")

    server, url = await scripted_server(script)
    try:
        with pytest.raises(PeerAuthError) as caught:
            await WebRTCPeer.join(url, "secret", timeout=5)
        assert caught.value.reason == "invalid token" and caught.value.code == 1000
        path, first = seen[0]
        assert path == "/socket/peer/websocket"
        assert first.auth_request.token == "secret" and first.auth_request.sdk_version.startswith("python-")
    finally:
        server.close()
        await server.wait_closed()


async def test_join_connect_and_leave_over_a_socket() -> None:
    received: list[str] = []
    connect_metadata: list[str] = []
    disconnected = asyncio.Event()

    async def script(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(
            PM(authenticated=PM.Authenticated(room_type=PM.ROOM_TYPE_AUDIO_ONLY)).SerializeToString()
        )
        async for raw in ws:
            message = PM()
            message.ParseFromString(raw)
            event = message.peer_media_event
            received.append(event.WhichOneof("content") or "")
            if event.HasField("disconnect"):
                disconnected.set()
            if event.HasField("connect"):
                connect_metadata.append(event.connect.metadata_json)
                me = SE.Endpoint(metadata_json='{"peer":{"name":"alice"},"server":{"role":"x"}}')
                connected = SE.Connected(endpoint_id="p1", endpoint_id_to_endpoint={"p1": me})
                await ws.send(PM(server_media_event=SE(connected=connected)).SerializeToString())

    server, url = await scripted_server(script)
    try:
        async with WebRTCPeer.join(url, "t", metadata={"name": "alice"}, timeout=5) as peer:
            assert peer.endpoint_id == "p1" and peer.room_type == PM.ROOM_TYPE_AUDIO_ONLY
            assert peer.self_metadata == {"peer": {"name": "alice"}, "server": {"role": "x"}}
            assert connect_metadata == ['{"name":"alice"}']
        assert peer.state == "closed"
        await asyncio.wait_for(disconnected.wait(), 2)
        assert received == ["connect", "disconnect"]
    finally:
        server.close()
        await server.wait_closed()


# ---- sources -------------------------------------------------------------------------------


async def read_frames(source: object, count: int) -> list[av.AudioFrame]:
    return [await source.recv() for _ in range(count)]  # type: ignore[attr-defined]


async def test_tone_source_is_a_continuous_sine_at_48k() -> None:
    frames = await read_frames(ToneSource(1000, amplitude=10000, realtime=False), 25)
    assert all(f.samples == 960 and f.sample_rate == 48000 and f.format.name == "s16" for f in frames)
    assert [f.pts for f in frames[:3]] == [0, 960, 1920]
    assert frames[0].time_base == fractions.Fraction(1, 48000)
    signal = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    assert abs(dominant_frequency(signal, 48000) - 1000) < 3
    expected = np.round(10000 * np.sin(2 * np.pi * 1000 * np.arange(len(signal)) / 48000))
    assert np.max(np.abs(signal - expected)) <= 1  # no phase jump at frame borders


async def test_tone_source_ends_after_its_duration() -> None:
    source = ToneSource(440, seconds=0.05, realtime=False)  # 2.5 frames → 3 whole frames
    await read_frames(source, 3)
    with pytest.raises(MediaStreamError):
        await source.recv()
    assert source.readyState == "ended"


async def test_sources_are_paced_by_pts() -> None:
    seen: list[tuple[int, float]] = []
    source = ToneSource(440, on_frame=lambda i, t: seen.append((i, t)))
    start = time.monotonic()
    await read_frames(source, 6)
    elapsed = time.monotonic() - start
    assert 0.09 <= elapsed < 0.3  # the first frame is immediate, then one every 20 ms
    assert [i for i, _ in seen] == list(range(6)) and source.produced == 6
    gaps = np.diff([t for _, t in seen])
    assert np.all(gaps > 0.012)


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())


async def test_wav_source_resamples_to_48k_and_keeps_stereo(tmp_path: Path) -> None:
    t = np.arange(16000 // 2) / 16000  # 0.5 s
    mono = np.round(8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    path = tmp_path / "tone.wav"
    write_wav(path, np.repeat(mono, 2), 16000, 2)
    source = WavSource(path, realtime=False)
    assert source.channels == 2 and abs(source.duration_s - 0.5) < 0.01
    frames = []
    with pytest.raises(MediaStreamError):
        while True:
            frames.append(await source.recv())
    assert len(frames) == 25 and frames[0].layout.name == "stereo" and frames[0].sample_rate == 48000
    left = np.concatenate([f.to_ndarray().reshape(-1, 2)[:, 0] for f in frames])
    assert abs(dominant_frequency(left, 48000) - 1000) < 3


async def test_wav_source_loops_and_rejects_8_bit(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    write_wav(path, np.arange(480, dtype=np.int16), 48000, 1)  # 10 ms
    source = WavSource(path, loop=True, realtime=False)
    frames = await read_frames(source, 3)
    assert frames[0].layout.name == "mono"
    first = frames[0].to_ndarray().reshape(-1)
    assert list(first[478:482]) == [478, 479, 0, 1]  # wraps around
    assert [f.pts for f in frames] == [0, 960, 1920]
    bad = tmp_path / "u8.wav"
    with wave.open(str(bad), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * 80)
    with pytest.raises(ValueError):
        WavSource(bad)


async def test_generator_source_cuts_chunks_into_20ms_frames() -> None:
    chunks = [np.full(500, i, dtype=np.int16) for i in range(3)]  # 1500 samples at 16 kHz
    source = GeneratorSource(chunks, rate=16000, realtime=False)
    frames = []
    with pytest.raises(MediaStreamError):
        while True:
            frames.append(await source.recv())
    assert [f.samples for f in frames] == [320, 320, 320, 320, 220]
    assert [f.pts for f in frames] == [0, 320, 640, 960, 1280] and frames[0].sample_rate == 16000
    calls = iter([np.ones(960, dtype=np.int16), None])
    from_callable = GeneratorSource(lambda: next(calls), realtime=False)
    assert (await from_callable.recv()).samples == 960
    with pytest.raises(MediaStreamError):
        await from_callable.recv()


async def test_opus_packet_source_hands_out_timed_packets() -> None:
    packets = encode_opus_tone(440, 0.2)
    assert 10 <= len(packets) <= 11  # 10 frames, plus what the encoder's lookahead flushes
    counted: list[int] = []
    source = OpusPacketSource(packets, loop=True, realtime=False, on_frame=lambda i, t: counted.append(i))
    out = [await source.recv() for _ in range(len(packets) + 2)]
    assert all(isinstance(p, av.Packet) for p in out)
    assert [p.pts for p in out] == [960 * i for i in range(len(out))]  # pts keeps growing across the loop
    assert out[0].time_base == fractions.Fraction(1, 48000)
    assert bytes(out[len(packets)]) == packets[0] and counted == list(range(len(out)))
    # aiortc's sender packs these as they are; the RTP timestamp follows pts.
    assert AiortcOpusEncoder().pack(out[3]) == ([packets[3]], 2880)
    once = OpusPacketSource(packets[:2], loop=False, realtime=False)
    await once.recv()
    await once.recv()
    with pytest.raises(MediaStreamError):
        await once.recv()


def test_encoded_tone_decodes_to_its_frequency() -> None:
    decoder = OpusDecoder()
    samples = np.concatenate([decoder.decode(p) for p in encode_opus_tone(440, 1.0)])
    assert abs(dominant_frequency(samples[4800:], 48000) - 440) < 3
    with pytest.raises(ValueError):
        OpusPacketSource([])


# ---- receiving -------------------------------------------------------------------------------


def test_stereo_frames_are_averaged_to_mono() -> None:
    data = np.tile(np.array([1000, 3000], dtype=np.int16), 960).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
    frame.sample_rate = 48000
    samples, resampler = audio_to_mono48k(frame, None)
    assert resampler is None and samples.dtype == np.int16 and set(samples.tolist()) == {2000}
    low = av.AudioFrame.from_ndarray(np.zeros((1, 1600), dtype=np.int16), format="s16", layout="mono")
    low.sample_rate = 16000
    samples, resampler = audio_to_mono48k(low, None)
    assert resampler is not None and 4000 < len(samples) <= 4800


async def test_recording_keeps_the_last_max_seconds() -> None:
    recording = Recording(max_seconds=0.1)
    for i in range(10):
        recording.append(np.full(960, i, dtype=np.int16), float(i))
    assert recording.frames == 10 and recording.dropped_frames == 5
    assert recording.duration_s == pytest.approx(0.1) and recording.received_s == pytest.approx(0.2)
    assert recording.arrivals == [5.0, 6.0, 7.0, 8.0, 9.0]
    samples = recording.samples()
    assert len(samples) == 4800 and samples[0] == 5 and samples[-1] == 9
    await recording.wait_for_seconds(0.2, timeout=0.1)  # counts everything received
    waiting = asyncio.create_task(recording.wait_for_seconds(0.25, timeout=1))
    await asyncio.sleep(0)
    for i in range(3):
        recording.append(np.zeros(960, dtype=np.int16), 10.0 + i)
    await waiting
    with pytest.raises(TimeoutError):
        await recording.wait_for_seconds(10, timeout=0.05)
