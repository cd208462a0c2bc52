"""The room domain: event order, limits, tokens and the subscription rule."""

from __future__ import annotations

import pytest

from shoal.domain import events as ev
from shoal.domain.manager import AuthFailure, PeerSpec, RoomLimits, RoomManager
from shoal.domain.model import Peer, PeerType, RoomConfig, SubscribeMode, Track, TrackKind, should_receive
from shoal.errors import Conflict, InvalidRequest, NotFound, Unavailable


def manager() -> tuple[RoomManager, list[ev.DomainEvent]]:
    published: list[ev.DomainEvent] = []
    return RoomManager(published.append), published


def test_deleting_a_room_with_a_connected_peer_emits_the_documented_order() -> None:
    rooms, events = manager()
    room = rooms.create_room(RoomConfig())
    peer, _ = rooms.add_peer(room.id, PeerSpec(PeerType.AGENT))
    rooms.connect(peer)
    rooms.add_track(room.id, peer.id, Track("t1", peer.id, TrackKind.AUDIO))
    rooms.delete_room(room.id)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "RoomCreated", "PeerAdded", "PeerConnected", "PeerMetadataUpdated", "TrackAdded",
        "TrackRemoved", "PeerDisconnected", "PeerDeleted", "RoomDeleted",
    ]


def test_max_peers_counts_peers_that_never_connected() -> None:
    rooms, _ = manager()
    room = rooms.create_room(RoomConfig(max_peers=1))
    rooms.add_peer(room.id, PeerSpec(PeerType.WEBRTC))
    with pytest.raises(Conflict):
        rooms.add_peer(room.id, PeerSpec(PeerType.AGENT))


def test_tokens_are_bound_to_one_peer_and_revoked_by_refresh_and_delete() -> None:
    rooms, _ = manager()
    room = rooms.create_room(RoomConfig())
    peer, token = rooms.add_peer(room.id, PeerSpec(PeerType.WEBRTC))
    assert rooms.authenticate(token) is peer
    fresh = rooms.refresh_token(room.id, peer.id)
    assert fresh != token
    with pytest.raises(AuthFailure, match="invalid token"):
        rooms.authenticate(token)
    rooms.delete_peer(room.id, peer.id)
    with pytest.raises(AuthFailure, match="invalid token"):
        rooms.authenticate(fresh)


def test_a_replaced_connection_cannot_disconnect_its_successor() -> None:
    rooms, events = manager()
    room = rooms.create_room(RoomConfig())
    peer, _ = rooms.add_peer(room.id, PeerSpec(PeerType.AGENT))
    first = rooms.connect(peer)
    second = rooms.connect(peer)
    rooms.disconnect(room.id, peer.id, first)
    assert rooms.is_current(peer.id, second)
    assert peer.status.value == "connected"
    assert [type(e).__name__ for e in events].count("PeerDisconnected") == 1


def test_subscriptions_are_for_manual_peers_and_known_targets() -> None:
    rooms, _ = manager()
    room = rooms.create_room(RoomConfig())
    auto, _ = rooms.add_peer(room.id, PeerSpec(PeerType.AGENT))
    manual, _ = rooms.add_peer(room.id, PeerSpec(PeerType.AGENT, SubscribeMode.MANUAL))
    with pytest.raises(InvalidRequest, match="subscribeMode 'auto'"):
        rooms.subscribe_peer(room.id, auto.id, manual.id)
    with pytest.raises(NotFound):
        rooms.subscribe_peer(room.id, manual.id, "nobody")
    with pytest.raises(NotFound):
        rooms.subscribe_tracks(room.id, manual.id, ["no-such-track"])
    rooms.subscribe_peer(room.id, manual.id, auto.id)
    rooms.subscribe_peer(room.id, manual.id, auto.id)
    assert manual.subscribed_peers == [auto.id]


def test_the_subscription_rule() -> None:
    publisher = Peer("pub", "r", PeerType.WEBRTC)
    track = Track("t", "pub", TrackKind.AUDIO)
    video = Track("v", "pub", TrackKind.VIDEO)
    auto_agent = Peer("a", "r", PeerType.AGENT)
    manual_agent = Peer("m", "r", PeerType.AGENT, subscribe_mode=SubscribeMode.MANUAL)
    assert should_receive(auto_agent, publisher, track)
    assert not should_receive(auto_agent, publisher, video), "agents receive audio only"
    assert not should_receive(publisher, publisher, track), "nobody hears themselves"
    assert not should_receive(manual_agent, publisher, track)
    manual_agent.subscribed_tracks.append("t")
    assert should_receive(manual_agent, publisher, track)
    legacy = Peer("old", "r", PeerType.WEBRTC, heard_by_all_agents=True)
    fresh_manual = Peer("m2", "r", PeerType.AGENT, subscribe_mode=SubscribeMode.MANUAL)
    assert should_receive(fresh_manual, legacy, Track("t2", "old", TrackKind.AUDIO)), "legacy subscribe option"
    manual_webrtc = Peer("w", "r", PeerType.WEBRTC, subscribe_mode=SubscribeMode.MANUAL)
    assert not should_receive(manual_webrtc, legacy, Track("t2", "old", TrackKind.AUDIO))


def test_peerless_purge_counts_from_the_last_disconnect_and_forgets_deleted_rooms() -> None:
    """Driven with 100,000 connect/disconnect cycles and 10,000 rooms: the purge bookkeeping stays exact."""
    now = [0.0]
    published: list[ev.DomainEvent] = []
    rooms = RoomManager(published.append, RoomLimits(peerless_purge_timeout_s=60.0), clock=lambda: now[0])
    room = rooms.create_room(RoomConfig())
    peer, _ = rooms.add_peer(room.id, PeerSpec(PeerType.AGENT))
    for _ in range(100_000):
        now[0] += 1.0
        connection = rooms.connect(peer)
        now[0] += 1.0
        rooms.disconnect(room.id, peer.id, connection)
    now[0] += 59.0
    assert rooms.purge_peerless() == [], "the timeout counts from the last disconnect, not from creation"
    now[0] += 1.0
    assert rooms.purge_peerless() == [room.id]
    assert isinstance(published[-1], ev.RoomDeleted)
    for _ in range(10_000):
        rooms.delete_room(rooms.create_room(RoomConfig()).id)
    assert rooms._peerless_since == {}, "deleted rooms must leave nothing behind"


def test_server_bounds_on_rooms_and_peers() -> None:
    rooms = RoomManager(lambda _: None, RoomLimits(max_rooms=2, max_peers_per_room=3))
    first = rooms.create_room(RoomConfig(max_peers=10))
    rooms.create_room(RoomConfig(max_peers=1))
    with pytest.raises(Unavailable):
        rooms.create_room(RoomConfig())
    for _ in range(3):
        rooms.add_peer(first.id, PeerSpec(PeerType.WEBRTC))
    with pytest.raises(Conflict, match="peer limit of 3"):
        rooms.add_peer(first.id, PeerSpec(PeerType.WEBRTC))
