"""Property tests of every sans-I/O codec and parser: hostile input → a typed result or a refusal, never a crash.

Each socket codec is fed frames from ``tests.support.fuzz.frames``: messages generated from
the real protobuf classes (random oneof members, huge and control-character strings, deep
JSON, unknown enum values, random bytes), then truncated, bit-flipped, concatenated, of the
wrong type, or plain random bytes and text. What comes back must be one of the codec's
typed events or a ``ProtocolError`` with a close code the server uses and a reason safe to
log and to put in a close frame. The same goes for the text parsers the endpoints apply to
client strings (metadata JSON, SDP), the single-port STUN demultiplexer, the RTP payload
inspectors, the Opus duration parser, the playout queues and the SDK's webhook decoder.

Bounded (``FUZZ``: 300 derandomized examples each); ``SHOAL_FUZZ_RANDOM=1
SHOAL_FUZZ_EXAMPLES=5000`` explores new ones.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import find, given, settings
from hypothesis import strategies as st

from fishjam._proto import agent_notifications_pb2 as A
from fishjam._proto import peer_notifications_pb2 as P
from fishjam._proto import server_notifications_pb2 as SM
from fishjam._proto.media_events.peer import peer_pb2 as MP
from fishjam._proto.notifications import shared_pb2 as S
from fishjam._webhook_notifier import decode_server_notifications
from fishjam.errors import StaleSdkError
from shoal.domain import events as ev
from shoal.domain.model import PeerType, RoomType, Track, TrackKind
from shoal.endpoints.agent import parse_metadata
from shoal.endpoints.webrtc import ice_credentials, parse_json_text, sdp_syntax_problem
from shoal.media.keyframes import keyframe_start
from shoal.media.munger import RtpMunger
from shoal.media.opus import packet_samples
from shoal.media.pcm import PcmFormat
from shoal.media.playout import PcmPlayout
from shoal.net.demux import (
    BINDING_REQUEST,
    STUN_MAGIC_COOKIE,
    USERNAME_ATTRIBUTE,
    DemuxTable,
    Drop,
    StunInfo,
    inspect_stun,
)
from shoal.protocol import agent, notifier, peer
from shoal.protocol.base import ProtocolError, clip_reason
from shoal.protocol.notifications import batch, to_server_message
from tests.support.fuzz import FUZZ, frames, hostile_text, json_values, messages, track_ids

CLOSE_CODES = {1003, 1007, 1008}
"""What a codec may close with: unsupported data, invalid data, policy."""

CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def assert_refusal(error: ProtocolError) -> None:
    """A refusal closes with a known code and a reason a log line and a close frame can carry."""
    assert error.code in CLOSE_CODES, error
    assert error.reason and error.reason.isprintable(), f"reason not safe to log: {error.reason[:200]!r}"
    assert len(clip_reason(error.reason).encode()) <= 123


def authenticated(codec: Any, *args: Any) -> Any:
    codec.accept_auth(*args)
    return codec


# --- agent socket --------------------------------------------------------------------------


AGENT_EVENTS = (agent.AuthRequested, agent.AddTrack, agent.RemoveTrack, agent.TrackData, agent.InterruptTrack, agent.CaptureImage)


def check_agent_result(result: object) -> None:
    if isinstance(result, ProtocolError):
        assert_refusal(result)
        return
    assert isinstance(result, AGENT_EVENTS), result
    if isinstance(result, agent.AddTrack):
        assert CANONICAL_UUID.fullmatch(result.track_id), f"accepted track id {result.track_id!r}"
        assert result.encoding in ("pcm16", "opus")
        assert result.sample_rate in (*agent.PCM_RATES, 48000) and result.channels in (1, 2)


@FUZZ
@given(frames(A.AgentRequest, P.PeerMessage, SM.ServerMessage))
def test_agent_codec_before_auth_answers_auth_or_refuses(frame: bytes | str) -> None:
    result = agent.AgentProtocol().receive(frame)
    assert isinstance(result, agent.AuthRequested | ProtocolError), result
    check_agent_result(result)


@FUZZ
@given(st.lists(frames(A.AgentRequest, P.PeerMessage), min_size=1, max_size=4))
def test_agent_codec_after_auth_decodes_or_refuses_every_frame(sequence: list[bytes | str]) -> None:
    codec = authenticated(agent.AgentProtocol())
    for frame in sequence:
        check_agent_result(codec.receive(frame))


@FUZZ
@given(messages(A.AgentRequest))
def test_agent_codec_decodes_what_the_client_sent(message: A.AgentRequest) -> None:
    result = authenticated(agent.AgentProtocol()).receive(message.SerializeToString())
    check_agent_result(result)
    match result:
        case agent.TrackData(track_id, data):
            assert (track_id, data) == (message.track_data.track_id, message.track_data.data)
        case agent.AddTrack(track_id, metadata_json):
            assert (track_id, metadata_json) == (message.add_track.track.id, message.add_track.track.metadata)
        case agent.RemoveTrack(track_id) | agent.InterruptTrack(track_id) | agent.CaptureImage(track_id):
            assert track_id == getattr(message, message.WhichOneof("content")).track_id


@FUZZ
@given(st.one_of(track_ids(), st.text(alphabet="0123456789abcdefABCDEF-_ {}:urn\n\t\u0660", min_size=30, max_size=41)))
def test_agent_add_track_accepts_only_a_canonical_uuid(track_id: str) -> None:
    """Ids become log text and other clients' keys: only the two spellings clients use pass."""
    params = A.AgentRequest.AddTrack.CodecParameters(sample_rate=16000, channels=1)
    add = A.AgentRequest.AddTrack(track=S.Track(id=track_id), codec_params=params)
    result = authenticated(agent.AgentProtocol()).receive(A.AgentRequest(add_track=add).SerializeToString())
    check_agent_result(result)


# --- peer socket ---------------------------------------------------------------------------


PEER_EVENTS = (
    peer.PeerAuthRequested, peer.Connect, peer.Disconnect, peer.UpdateEndpointMetadata, peer.UpdateTrackMetadata,
    peer.RenegotiateTracks, peer.Candidate, peer.SdpOffer, peer.UnmuteTrack, peer.Ignored, peer.StatsReport,
)


def check_peer_result(result: object) -> None:
    if isinstance(result, ProtocolError):
        assert_refusal(result)
        return
    assert result is None or isinstance(result, PEER_EVENTS), result
    if isinstance(result, peer.SdpOffer):
        assert "" not in result.mid_to_track_id and "" not in result.mid_to_track_id.values()


def peer_media_frames() -> st.SearchStrategy[bytes | str]:
    """Authenticated peers' traffic is media events: most frames carry one."""
    wrapped = messages(MP.MediaEvent).map(lambda e: P.PeerMessage(peer_media_event=e).SerializeToString())
    return st.one_of(wrapped, frames(P.PeerMessage, A.AgentRequest, MP.MediaEvent))


@FUZZ
@given(frames(P.PeerMessage, A.AgentRequest, SM.ServerMessage))
def test_peer_codec_before_auth_answers_auth_or_refuses(frame: bytes | str) -> None:
    result = peer.PeerProtocol().receive(frame)
    assert isinstance(result, peer.PeerAuthRequested | ProtocolError), result
    check_peer_result(result)


@FUZZ
@given(st.lists(peer_media_frames(), min_size=1, max_size=4), st.sampled_from(list(RoomType)))
def test_peer_codec_after_auth_decodes_or_refuses_every_frame(sequence: list[bytes | str], room_type: RoomType) -> None:
    codec = authenticated(peer.PeerProtocol(), room_type)
    for frame in sequence:
        check_peer_result(codec.receive(frame))


# --- notifier socket -----------------------------------------------------------------------


@FUZZ
@given(st.lists(frames(SM.ServerMessage, A.AgentRequest), min_size=1, max_size=4))
def test_notifier_codec_decodes_or_refuses_every_frame(sequence: list[bytes | str]) -> None:
    codec = notifier.NotifierProtocol()
    for frame in sequence:
        result = codec.receive(frame)
        if isinstance(result, ProtocolError):
            assert_refusal(result)
            return
        assert isinstance(result, notifier.NotifierAuthRequested | notifier.SubscribeRequested), result
        if isinstance(result, notifier.NotifierAuthRequested):
            codec.accept_auth()
        else:
            assert result.event_type == SM.ServerMessage.EVENT_TYPE_SERVER_NOTIFICATION
            codec.accept_subscribe(result.event_type)


# --- server → client builders (their strings come from clients) ----------------------------


@FUZZ
@given(hostile_text())
def test_close_reasons_fit_a_close_frame_and_keep_their_start(reason: str) -> None:
    clipped = clip_reason(reason)
    assert len(clipped.encode()) <= 123
    assert reason.startswith(clipped.removesuffix("..."))


@FUZZ
@given(
    st.lists(st.tuples(track_ids(), hostile_text(), st.dictionaries(track_ids(), hostile_text(), max_size=3)), max_size=3),
    hostile_text(),
)
def test_peer_builders_carry_any_client_string_intact(endpoints: list[tuple[str, str, dict[str, str]]], text: str) -> None:
    views = [peer.EndpointView(endpoint_id, "exwebrtc", meta, tracks) for endpoint_id, meta, tracks in endpoints]
    decoded = P.PeerMessage()
    decoded.ParseFromString(peer.connected("me", views))
    got = decoded.server_media_event.connected.endpoint_id_to_endpoint
    for view in views:
        assert got[view.endpoint_id].metadata_json in {v.metadata_json for v in views if v.endpoint_id == view.endpoint_id}
    for frame in (
        peer.endpoint_added(text, text), peer.endpoint_updated(text, text), peer.track_updated(text, text, text),
        peer.tracks_removed(text, [text]), peer.error(text), peer.sdp_answer(text, {text: text}),
    ):
        decoded.ParseFromString(frame)
        assert decoded.WhichOneof("content") == "server_media_event"
    wrap = agent.TrackDataWrap(text, text, TrackKind.AUDIO, text)
    response = A.AgentResponse()
    response.ParseFromString(wrap(text.encode()[:100]))
    assert (response.track_data.peer_id, response.track_data.track.metadata) == (text, text)


def domain_events() -> st.SearchStrategy[ev.DomainEvent]:
    text = hostile_text()
    kinds = st.sampled_from(list(PeerType))
    info = st.builds(ev.TrackInfo, text, st.sampled_from(list(TrackKind)), text)
    return st.one_of(
        st.builds(ev.RoomCreated, text), st.builds(ev.RoomDeleted, text),
        st.builds(ev.PeerAdded, text, text, kinds), st.builds(ev.PeerDeleted, text, text, kinds),
        st.builds(ev.PeerConnected, text, text, kinds), st.builds(ev.PeerDisconnected, text, text, kinds),
        st.builds(ev.PeerCrashed, text, text, kinds, text), st.builds(ev.PeerMetadataUpdated, text, text, kinds, text),
        st.builds(ev.TrackAdded, text, text, info), st.builds(ev.TrackRemoved, text, text, info),
        st.builds(ev.TrackMetadataUpdated, text, text, info), st.builds(ev.SubscriptionsChanged, text, text),
    )


@FUZZ
@given(st.lists(domain_events(), max_size=5))
def test_notifications_encode_any_event_and_batch_in_order(events: list[ev.DomainEvent]) -> None:
    encoded = [m.SerializeToString() for m in map(to_server_message, events) if m is not None]
    decoded = SM.ServerMessage()
    decoded.ParseFromString(batch(encoded))
    assert [m.SerializeToString() for m in decoded.notification_batch.notifications] == encoded


@FUZZ
@given(st.one_of(messages(SM.ServerMessage).map(lambda m: m.SerializeToString()), frames(SM.ServerMessage)))
def test_sdk_webhook_decoder_returns_notifications_or_refuses(body: bytes | str) -> None:
    """A webhook endpoint gets bodies from anyone: DecodeError or StaleSdkError, nothing else."""
    data = body.encode() if isinstance(body, str) else body
    try:
        notifications = decode_server_notifications(data)
    except (DecodeError, StaleSdkError):
        return
    assert isinstance(notifications, list)


# --- client text the endpoints parse -------------------------------------------------------


def standard_json(text: str) -> Any:
    """Parse as RFC 8259 JSON, which official clients' ``JSON.parse`` requires (no NaN, no Infinity)."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@FUZZ
@given(hostile_text())
def test_agent_track_metadata_parses_to_a_value_every_client_can_read(text: str) -> None:
    value = parse_metadata(text)
    standard_json(Track("t", "p", TrackKind.AUDIO, value).metadata_json)


@FUZZ
@given(hostile_text())
def test_participant_metadata_parses_or_is_refused_as_invalid_json(text: str) -> None:
    """The peer endpoint turns ``JSONDecodeError`` into a 1007 close; nothing else may escape."""
    try:
        value = parse_json_text(text)
    except json.JSONDecodeError:
        return
    standard_json(Track("t", "p", TrackKind.AUDIO, value).metadata_json)


@FUZZ
@given(json_values(max_leaves=50))
def test_metadata_values_round_trip_through_their_json(value: Any) -> None:
    text = Track("t", "p", TrackKind.AUDIO, value).metadata_json
    assert parse_metadata(text) == value and parse_json_text(text) == value


def sdp_text() -> st.SearchStrategy[str]:
    line = st.one_of(
        st.sampled_from(["v=0", "a=ice-ufrag:abcd", "a=ice-pwd:" + "x" * 22, "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0"]),
        st.text(max_size=30).map(lambda t: "a=" + t),
        hostile_text(),
    )
    return st.lists(line, max_size=12).flatmap(lambda lines: st.sampled_from(["\r\n", "\n", "\r"]).map(lambda sep: sep.join(lines)))


@FUZZ
@given(sdp_text())
def test_sdp_checks_answer_for_any_text(sdp: str) -> None:
    problem = sdp_syntax_problem(sdp)
    assert problem is None or (isinstance(problem, str) and problem.isprintable())
    credentials = ice_credentials(sdp)
    assert credentials is None or all(isinstance(part, str) and part for part in credentials)


# --- media plane parsers -------------------------------------------------------------------


def stun_messages() -> st.SearchStrategy[bytes]:
    attribute = st.tuples(st.sampled_from([USERNAME_ATTRIBUTE, 0x0008, 0x8028, 0x0024, 0xFFFF]), st.binary(max_size=40))

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        body = b""
        for kind, value in draw(st.lists(attribute, max_size=5)):
            body += struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)
        message_type = draw(st.sampled_from([BINDING_REQUEST, 0x0101, 0x0111, 0x0002]) | st.integers(0, 0x3FFF))
        length = draw(st.sampled_from([len(body), len(body) + 4, max(0, len(body) - 1)]) | st.integers(0, 0xFFFF))
        cookie = draw(st.sampled_from([STUN_MAGIC_COOKIE, 0]))
        data = struct.pack("!HHI12s", message_type, length, cookie, draw(st.binary(min_size=12, max_size=12))) + body
        cut = draw(st.integers(0, len(data)))
        return data if draw(st.booleans()) else data[:cut]

    return build()


@FUZZ
@given(st.lists(st.tuples(st.one_of(stun_messages(), st.binary(max_size=100)), st.integers(0, 3)), max_size=8))
def test_single_port_demux_routes_or_drops_any_datagram(datagrams: list[tuple[bytes, int]]) -> None:
    table: DemuxTable[str] = DemuxTable(max_addresses=2)
    table.register("abcd", "conn-a")
    table.register("efgh", "conn-b")
    table.learn(("127.0.0.1", 1), "conn-a")
    for data, port in datagrams:
        info = inspect_stun(data)
        assert info is None or isinstance(info, Drop | StunInfo)
        routed = table.route(data, ("127.0.0.1", port))
        assert routed in ("conn-a", "conn-b") or isinstance(routed, Drop)
        if isinstance(routed, str):
            table.learn(("127.0.0.1", port), routed)
        assert len(table.addresses_of("conn-a")) <= 2


@FUZZ
@given(st.sampled_from(["VP8", "vp8", "H264", "h264", "opus", "", "VP9"]), st.binary(max_size=64))
def test_keyframe_inspectors_answer_for_any_payload(codec: str, payload: bytes) -> None:
    assert keyframe_start(codec, payload) in (True, False)


@FUZZ
@given(st.binary(max_size=64))
def test_opus_duration_is_a_legal_one_or_a_value_error(packet: bytes) -> None:
    try:
        samples = packet_samples(packet)
    except ValueError:
        return
    assert 120 <= samples <= 5760 and samples % 120 == 0


@FUZZ
@given(
    st.sampled_from([16000, 24000, 48000]),
    st.sampled_from([1, 2]),
    st.lists(st.one_of(st.binary(max_size=5000), st.sampled_from(["frame", "idle", "finish", "clear"])), max_size=20),
)
def test_pcm_playout_queue_stays_bounded_and_aligned(rate: int, channels: int, steps: list[bytes | str]) -> None:
    fmt = PcmFormat(rate, channels)
    playout = PcmPlayout(fmt, max_seconds=0.1)
    for step in steps:
        if isinstance(step, bytes):
            playout.push(step)
        elif step == "clear":
            playout.clear()
        else:
            frame = playout.next_frame(idle_for=1.0 if step == "idle" else 0.0, finishing=step == "finish")
            assert frame is None or len(frame) == fmt.frame_samples
        assert playout.queued_seconds <= 0.1 + 1 / rate


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)), min_size=1, max_size=40))
def test_rtp_munger_maps_any_numbers_into_range_without_repeating(packets: list[tuple[int, int]]) -> None:
    munger = RtpMunger(first_seq=1000, first_timestamp=5000, clock_rate=48000)
    sent: dict[int, int] = {}
    now = 0.0
    for seq, timestamp in packets:
        now += 0.02
        out = munger.rewrite(seq, timestamp, now) if munger.started else munger.start(seq, timestamp, now)
        if out is None:
            continue
        assert 0 <= out.sequence_number <= 0xFFFF and 0 <= out.timestamp <= 0xFFFFFFFF
        # one outbound number is one inbound packet: a duplicate maps to the same, never another's
        assert sent.setdefault(out.extended_seq, seq) == seq


@pytest.mark.parametrize("cls", [A.AgentRequest, P.PeerMessage, SM.ServerMessage, MP.MediaEvent])
def test_the_message_strategy_reaches_every_oneof_member(cls: type) -> None:
    """The generator is no weaker than it looks: it builds each member of each top-level oneof."""
    search = settings(FUZZ, max_examples=2000)
    for oneof in cls.DESCRIPTOR.oneofs:
        for field in oneof.fields:
            found = find(messages(cls), lambda m, o=oneof.name, f=field.name: m.WhichOneof(o) == f, settings=search)
            assert found.WhichOneof(oneof.name) == field.name
