"""Parsing of REST responses and the option objects' bodies."""

from __future__ import annotations

from typing import Any

import pytest

from fishjam import AgentOptions, AgentOutputOptions, PeerMetadata, PeerOptionsVapi, Room
from fishjam.api._models import Peer, Subscriptions, Track, TrackMetadata, TrackType
from fishjam.peer import PeerStatus, PeerType, SubscribeMode
from fishjam.room import RoomConfig, RoomType, VideoCodec

PEER: dict[str, Any] = {
    "id": "p1",
    "type": "webrtc",
    "status": "disconnected",
    "tracks": [{"id": "t1", "type": "audio", "metadata": {"source": "mic"}}],
    "metadata": {"peer": {}, "server": {"is_test": True}},
    "subscribeMode": "auto",
    "subscriptions": {"peers": [], "tracks": []},
}
ROOM: dict[str, Any] = {
    "id": "r1",
    "config": {
        "batchWebhookNotifications": False,
        "maxPeers": 0,
        "public": False,
        "roomType": "conference",
        "videoCodec": "h264",
        "webhookUrl": None,
    },
    "peers": [PEER],
}


def test_room_parsing_and_equality() -> None:
    room = Room.from_dict(ROOM)
    assert room.config == RoomConfig(max_peers=0, room_type=RoomType.CONFERENCE, video_codec=VideoCodec.H264)
    assert room.composition_info is None
    [peer] = room.peers
    assert peer == Peer(
        id="p1",
        metadata=PeerMetadata({"peer": {}, "server": {"is_test": True}}),
        status=PeerStatus.DISCONNECTED,
        subscribe_mode=SubscribeMode.AUTO,
        subscriptions=Subscriptions(peers=[], tracks=[]),
        tracks=[Track(id="t1", metadata=TrackMetadata({"source": "mic"}), type_=TrackType.AUDIO)],
        type_=PeerType.WEBRTC,
    )
    assert peer.type_ == "webrtc" and str(peer.status) == "disconnected"
    assert peer.metadata is not None and peer.metadata["server"] == {"is_test": True}
    assert peer.metadata.additional_properties == peer.metadata.to_dict()


def test_unknown_peer_keys_are_kept_and_compared() -> None:
    plain = Peer.from_dict(PEER)
    extra = Peer.from_dict({**PEER, "surprise": 1})
    assert extra.additional_properties == {"surprise": 1}
    assert plain != extra


def test_missing_required_peer_key_fails() -> None:
    with pytest.raises(KeyError):
        Peer.from_dict({key: value for key, value in PEER.items() if key != "subscriptions"})


def test_composition_info_is_parsed() -> None:
    room = Room.from_dict(
        {**ROOM, "compositionInfo": {"compositionUrl": "u", "forwardings": [{"peerId": "p", "inputId": "i"}]}}
    )
    assert room.composition_info is not None
    assert room.composition_info.forwardings[0].peer_id == "p"


def test_option_bodies() -> None:
    assert AgentOptions(AgentOutputOptions(audio_sample_rate=24000), "manual").to_body() == {
        "options": {"output": {"audioFormat": "pcm16", "audioSampleRate": 24000}, "subscribeMode": "manual"},
        "type": "agent",
    }
    with pytest.raises(ValueError):
        AgentOptions(AgentOutputOptions(audio_sample_rate=44100)).to_body()  # type: ignore[arg-type]
    vapi = PeerOptionsVapi(api_key="k", call_id="c", auto_close=None, subscribe_mode=SubscribeMode.MANUAL)
    assert vapi.to_body() == {
        "options": {"apiKey": "k", "callId": "c", "subscribeMode": "manual"},
        "type": "vapi",
    }
