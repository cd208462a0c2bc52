"""The sans-I/O socket codecs, fed plain bytes with no event loop."""

from __future__ import annotations

from fishjam._proto import agent_notifications_pb2 as A
from fishjam._proto import peer_notifications_pb2 as P
from fishjam._proto import server_notifications_pb2 as SM
from fishjam._proto.notifications import shared_pb2 as S
from shoal.domain import events as ev
from shoal.domain.model import PeerType, RoomType, TrackKind
from shoal.protocol import agent
from shoal.protocol.base import ProtocolError
from shoal.protocol.notifications import batch, to_server_message
from shoal.protocol.notifier import NotifierAuthRequested, NotifierProtocol, SubscribeRequested
from shoal.protocol.peer import PeerAuthRequested, PeerProtocol

TRACK = "0123456789abcdef0123456789abcdef"


def add_track(rate: int = 16000, channels: int = 1, encoding: int = S.TRACK_ENCODING_PCM16, kind: int = 2) -> bytes:
    params = A.AgentRequest.AddTrack.CodecParameters(encoding=encoding, sample_rate=rate, channels=channels)
    track = S.Track(id=TRACK, type=kind, metadata='{"a": 1}')
    return A.AgentRequest(add_track=A.AgentRequest.AddTrack(track=track, codec_params=params)).SerializeToString()


def authenticated_agent() -> agent.AgentProtocol:
    codec = agent.AgentProtocol()
    assert codec.receive(bytes.fromhex("0a050a03746f6b")) == agent.AuthRequested("tok")
    assert codec.accept_auth() == bytes.fromhex("0a00")
    return codec


def test_agent_auth_request_bytes_from_the_spec_decode_to_the_token() -> None:
    authenticated_agent()


def test_agent_add_track_is_decoded_with_its_format() -> None:
    codec = authenticated_agent()
    assert codec.receive(add_track(24000, 2)) == agent.AddTrack(TRACK, '{"a": 1}', "pcm16", 24000, 2)
    opus = codec.receive(add_track(0, 1, S.TRACK_ENCODING_OPUS))
    assert opus == agent.AddTrack(TRACK, '{"a": 1}', "opus", 48000, 1)
    unspecified = codec.receive(add_track(16000, 0, S.TRACK_ENCODING_UNSPECIFIED))
    assert unspecified == agent.AddTrack(TRACK, '{"a": 1}', "pcm16", 16000, 1)


def test_agent_add_track_refuses_what_the_server_cannot_play() -> None:
    codec = authenticated_agent()
    for frame, reason in [
        (add_track(44100), "pcm16 sample rate 44100 not supported"),
        (add_track(16000, 6), "6 channels not supported"),
        (add_track(kind=S.TRACK_TYPE_VIDEO), "audio tracks only"),
        (add_track(encoding=7), "unknown encoding 7"),
    ]:
        error = codec.receive(frame)
        assert isinstance(error, ProtocolError) and error.code == 1008 and reason in error.reason


def test_agent_messages_before_auth_and_a_second_auth_are_protocol_errors() -> None:
    codec = agent.AgentProtocol()
    error = codec.receive(add_track())
    assert isinstance(error, ProtocolError) and "first message must be an AuthRequest" in error.reason
    codec = authenticated_agent()
    again = codec.receive(bytes.fromhex("0a050a03746f6b"))
    assert isinstance(again, ProtocolError) and again.reason == "already authenticated"


def test_garbage_text_and_empty_frames_are_protocol_errors() -> None:
    codec = agent.AgentProtocol()
    assert codec.receive("hi") == ProtocolError(1003, "text frames are not supported; send binary AgentRequest")
    assert codec.receive(b"\xff\xff") == ProtocolError(1007, "frame is not a valid AgentRequest protobuf message")
    assert codec.receive(b"") == ProtocolError(1007, "AgentRequest carries no message")


def test_track_data_wrap_builds_the_agent_response_frame() -> None:
    wrap = agent.TrackDataWrap("p1", TRACK, TrackKind.AUDIO, "null")
    decoded = A.AgentResponse()
    decoded.ParseFromString(wrap(b"\x01\x02"))
    assert decoded.track_data.peer_id == "p1"
    assert (decoded.track_data.track.id, decoded.track_data.track.type) == (TRACK, S.TRACK_TYPE_AUDIO)
    assert (decoded.track_data.track.metadata, decoded.track_data.data) == ("null", b"\x01\x02")


def test_notifier_handshake_accepts_pipelined_auth_and_subscribe() -> None:
    codec = NotifierProtocol()
    assert codec.receive(bytes.fromhex("3a050a03746f6b")) == NotifierAuthRequested("tok")
    assert codec.accept_auth() == bytes.fromhex("3200")
    assert codec.receive(bytes.fromhex("42020801")) == SubscribeRequested(1)
    assert codec.accept_subscribe(1) == bytes.fromhex("4a020801")
    room = SM.ServerMessage(room_created=SM.ServerMessage.RoomCreated(room_id="r")).SerializeToString()
    error = codec.receive(room)
    assert isinstance(error, ProtocolError) and "operation not allowed" in error.reason


def test_peer_auth_bytes_from_the_spec_and_authenticated_with_room_type() -> None:
    codec = PeerProtocol()
    frame = bytes.fromhex("12110a03746f6b120a7765622d302e32352e31")
    assert codec.receive(frame) == PeerAuthRequested("tok", "web-0.25.1")
    assert codec.accept_auth(RoomType.CONFERENCE) == bytes.fromhex("0a020801")
    reply = P.PeerMessage()
    reply.ParseFromString(PeerProtocol().accept_auth(RoomType.AUDIO_ONLY))
    assert reply.authenticated.room_type == P.PeerMessage.ROOM_TYPE_AUDIO_ONLY


def test_notifications_encode_to_the_spec_bytes() -> None:
    connected = to_server_message(ev.PeerConnected("r1", "p1", PeerType.WEBRTC))
    assert connected is not None and connected.SerializeToString() == bytes.fromhex("120a0a027231120270311801")
    created = to_server_message(ev.RoomCreated("r1"))
    deleted = to_server_message(ev.RoomDeleted("r1"))
    assert created is not None and created.SerializeToString() == bytes.fromhex("52040a027231")
    assert deleted is not None
    assert batch([created.SerializeToString(), deleted.SerializeToString()]) == bytes.fromhex(
        "8a02100a0652040a0272310a065a040a027231"
    )
    assert to_server_message(ev.SubscriptionsChanged("r1", "p1")) is None


def test_track_notifications_carry_the_owner_and_the_track() -> None:
    added = to_server_message(ev.TrackAdded("r", "p", ev.TrackInfo("t", TrackKind.AUDIO, "null")))
    assert added is not None
    body = added.track_added
    assert (body.room_id, body.peer_id, body.track.id, body.track.type, body.track.metadata) == (
        "r", "p", "t", S.TRACK_TYPE_AUDIO, "null",
    )
