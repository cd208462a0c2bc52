"""Agent pieces that need no server: track options, errors and enums."""

from __future__ import annotations

import pytest

from fishjam._proto import server_notifications_pb2
from fishjam._proto.notifications import shared_pb2
from fishjam.agent import AgentAuthError, AgentError, OutgoingAudioTrackOptions
from fishjam.events import TrackEncoding, _enums


def test_defaults() -> None:
    options = OutgoingAudioTrackOptions()
    assert (options.encoding, options.sample_rate, options.channels, options.metadata) == (
        TrackEncoding.TRACK_ENCODING_UNSPECIFIED,
        16000,
        1,
        None,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"encoding": TrackEncoding.TRACK_ENCODING_PCM16, "sample_rate": 24000, "channels": 2},
        {"encoding": TrackEncoding.TRACK_ENCODING_OPUS, "sample_rate": 48000},
        {"encoding": 1, "metadata": {"type": "microphone"}},
        {"encoding": shared_pb2.TRACK_ENCODING_OPUS},
    ],
)
def test_valid_options(kwargs: dict[str, object]) -> None:
    options = OutgoingAudioTrackOptions(**kwargs)  # type: ignore[arg-type]
    assert isinstance(options.encoding, _enums.TrackEncoding)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_rate": 48000}, "sample rate"),
        ({"sample_rate": 8000}, "sample rate"),
        ({"encoding": TrackEncoding.TRACK_ENCODING_OPUS, "sample_rate": 44100}, "sample rate"),
        ({"channels": 0}, "channel"),
        ({"channels": 3}, "channel"),
        ({"channels": True}, "channel"),
        ({"encoding": 7}, "encoding"),
        ({"metadata": {"x": object()}}, "JSON"),
    ],
)
def test_invalid_options(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OutgoingAudioTrackOptions(**kwargs)  # type: ignore[arg-type]


def test_auth_error() -> None:
    error = AgentAuthError("invalid token")
    assert isinstance(error, AgentError)
    assert error.reason == "invalid token"
    assert str(error) == "agent failed to authenticate: invalid token"


def test_enums_match_the_generated_descriptors() -> None:
    server = server_notifications_pb2.ServerMessage.DESCRIPTOR
    pairs = [
        (_enums.TrackEncoding, shared_pb2.DESCRIPTOR.enum_types_by_name["TrackEncoding"]),
        (_enums.TrackType, shared_pb2.DESCRIPTOR.enum_types_by_name["TrackType"]),
        (_enums.ServerMessagePeerType, server.enum_types_by_name["PeerType"]),
        (
            _enums.ServerMessageRecordingStatusChangedStatus,
            server.nested_types_by_name["RecordingStatusChanged"].enum_types_by_name["Status"],
        ),
    ]
    for enum, descriptor in pairs:
        assert {member.name: member.value for member in enum} == {
            value.name: value.number for value in descriptor.values
        }
    assert TrackEncoding.TRACK_ENCODING_PCM16 == shared_pb2.TRACK_ENCODING_PCM16
    # Like the official (betterproto) enums: callable by value, with names.
    assert TrackEncoding(2) is TrackEncoding.TRACK_ENCODING_OPUS
    assert _enums.TrackEncoding.TRACK_ENCODING_OPUS.name == "TRACK_ENCODING_OPUS"
