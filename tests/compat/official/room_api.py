"""Room and peer management through the official SDK (what its own test suite expects)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import fishjam
from fishjam import FishjamClient, PeerOptions, PeerOptionsVapi, Room, RoomOptions
from fishjam._fishjam_openapi_client.models import SubscribeMode, Subscriptions
from fishjam.agent import Agent, AgentAuthError, OutgoingAudioTrackOptions
from fishjam.peer import PeerMetadata, PeerStatus, PeerType
from fishjam.room import RoomConfig, RoomType, VideoCodec

from _scenario import Params, Result, client, main, outcome, poll

CLOUD_STYLE_ROOM_ID = "7ef-a0b0-6db20b2ef65c-7a696f6d6f-70726f64756374696f6e-6e6f6e6f6465406e6f686f7374"


def about(params: Params) -> Result:
    return {"version": importlib.metadata.version("fishjam-server-sdk"), "module": fishjam.__file__}


def invalid_token(params: Params) -> Result:
    bad = client(params, token="invalid")
    return {"create_room": outcome(bad.create_room), "get_all_rooms": outcome(bad.get_all_rooms)}


def expected_config(room: Room, options: RoomOptions) -> RoomConfig:
    """The config the official tests expect back: defaults filled in, the webhook URL as returned."""
    return RoomConfig(
        max_peers=options.max_peers or 0,
        video_codec=VideoCodec(options.video_codec or "h264"),
        webhook_url=room.config.webhook_url,
        room_type=RoomType(options.room_type),
        public=options.public,
        batch_webhook_notifications=options.batch_webhook_notifications,
    )


def create_room(params: Params) -> Result:
    api = client(params)
    options = RoomOptions(**params.get("options", {}))
    room = api.create_room(options) if params.get("options") else api.create_room()
    listed = [r for r in api.get_all_rooms() if r.id == room.id]
    fetched = api.get_room(room.id)
    expected = Room(config=expected_config(room, options), id=room.id, peers=[])
    api.delete_room(room.id)
    return {
        "config": room.config.to_dict(),
        "expected_config": expected.config.to_dict(),
        "created_equals_expected": room == expected,
        "peers": len(room.peers),
        "listed": len(listed),
        "listed_equals_created": listed == [room],
        "fetched_equals_created": fetched == room,
    }


def invalid_max_peers(params: Params) -> Result:
    options = RoomOptions(max_peers="nan")  # type: ignore[arg-type] # deliberately invalid
    return {"create_room": outcome(lambda: client(params).create_room(options))}


def unknown_rooms(params: Params) -> Result:
    api = client(params)
    ids = ["invalid_id", "515c8b52-168b-4b39-a227-4d6b4f102a56", CLOUD_STYLE_ROOM_ID]
    return {room_id: _get_and_delete(api, room_id) for room_id in ids}


def _get_and_delete(api: FishjamClient, room_id: str) -> Result:
    return {"get": outcome(lambda: api.get_room(room_id)), "delete": outcome(lambda: api.delete_room(room_id))}


def delete_room(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    deleted = outcome(lambda: api.delete_room(room.id))
    return {
        "delete": deleted,
        "still_listed": any(r.id == room.id for r in api.get_all_rooms()),
        "get_after": outcome(lambda: api.get_room(room.id)),
        "delete_again": outcome(lambda: api.delete_room(room.id)),
    }


def create_peer(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    options: dict[str, Any] = params.get("options", {})
    peer, token = api.create_peer(room.id, PeerOptions(**options)) if options else api.create_peer(room.id)
    expected = fishjam.Peer(
        id=peer.id,
        type_=PeerType.WEBRTC,
        status=PeerStatus.DISCONNECTED,
        tracks=[],
        metadata=PeerMetadata.from_dict({"peer": {}, "server": options.get("metadata") or {}}),
        subscribe_mode=SubscribeMode(options.get("subscribe_mode", "auto")),
        subscriptions=Subscriptions(peers=[], tracks=[]),
    )
    peers = api.get_room(room.id).peers
    api.delete_room(room.id)
    return {
        "token": token,
        "created": peer.to_dict(),
        "expected": expected.to_dict(),
        "room_peers": [p.to_dict() for p in peers],
        "created_equals_expected": peer == expected,
        "room_peers_equal_expected": peers == [expected],
    }


def peer_limit(params: Params) -> Result:
    api = client(params)
    room = api.create_room(RoomOptions(max_peers=1))
    first = outcome(lambda: api.create_peer(room.id)[0].id)
    second = outcome(lambda: api.create_peer(room.id)[0].id)
    peers = len(api.get_room(room.id).peers)
    api.delete_room(room.id)
    return {"first": first, "second": second, "peers": peers}


def delete_peer(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    peer, _ = api.create_peer(room.id)
    result = {
        "delete": outcome(lambda: api.delete_peer(room.id, peer.id)),
        "peers_after": len(api.get_room(room.id).peers),
        "delete_unknown": outcome(lambda: api.delete_peer(room.id, "invalid_peer_id")),
        "refresh_unknown": outcome(lambda: api.refresh_peer_token(room.id, "invalid_peer_id")),
    }
    api.delete_room(room.id)
    return result


def _agent_status(api: FishjamClient, room_id: str, agent_id: str) -> str:
    return next(p.status.value for p in api.get_room(room_id).peers if p.id == agent_id)


async def refresh_token(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    peer, peer_token = api.create_peer(room.id)
    agent = api.create_agent(room.id)
    old = agent._token
    new = api.refresh_peer_token(room.id, agent.id)
    result: Result = {
        "webrtc_old": peer_token,
        "webrtc_new": api.refresh_peer_token(room.id, peer.id),
        "agent_old": old,
        "agent_new": new,
    }
    try:
        async with Agent(agent.id, room.id, old, agent._fishjam_url).connect():
            result["old_token"] = {"ok": True}
    except AgentAuthError as exc:
        result["old_token"] = {"ok": False, "error": type(exc).__name__, "reason": exc.reason}
    try:
        async with Agent(agent.id, room.id, new, agent._fishjam_url).connect():
            result["new_token"] = {"ok": True, "status": _agent_status(api, room.id, agent.id)}
    except AgentAuthError as exc:
        result["new_token"] = {"ok": False, "error": type(exc).__name__, "reason": exc.reason}
    api.delete_room(room.id)
    return result


def vapi_agent(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    peer = api.create_vapi_agent(room.id, PeerOptionsVapi(api_key="test_api_key", call_id="test-call-id"))
    listed = [p.to_dict() for p in api.get_room(room.id).peers]
    api.delete_room(room.id)
    return {"peer": peer.to_dict(), "room_peers": listed}


def credentials(params: Params) -> Result:
    def verified(token: str) -> Any:
        return FishjamClient.create_and_verify(fishjam_id=params["url"], management_token=token)

    return {
        "check_good": outcome(client(params).check_credentials),
        "check_bad": outcome(client(params, token="not-the-token").check_credentials),
        "verify_good": outcome(lambda: type(verified(params["token"])).__name__),
        "verify_bad": outcome(lambda: verified("not-the-token")),
    }


async def manual_subscriptions(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    subscriber, _ = api.create_peer(room.id, PeerOptions(subscribe_mode="manual"))
    publisher = api.create_agent(room.id)
    async with publisher.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        published = await poll(lambda: _tracks_of(api, room.id, publisher.id), timeout=5)
        peer_call = outcome(lambda: api.subscribe_peer(room.id, subscriber.id, publisher.id))
        tracks_call = outcome(lambda: api.subscribe_tracks(room.id, subscriber.id, [track.id]))
        fetched = api.get_room(room.id)
        listed = [r for r in api.get_all_rooms() if r.id == room.id]
        after = next(p for p in fetched.peers if p.id == subscriber.id)
    api.delete_room(room.id)
    return {
        "publisher_id": publisher.id,
        "track_id": track.id,
        "published_track_ids": published,
        "subscribe_peer": peer_call,
        "subscribe_tracks": tracks_call,
        "subscriptions": after.subscriptions.to_dict(),
        "subscribe_mode": after.subscribe_mode.value,
        "listed_equals_fetched_with_a_track": listed == [fetched],
    }


def _tracks_of(api: FishjamClient, room_id: str, peer_id: str) -> list[str]:
    peer = next(p for p in api.get_room(room_id).peers if p.id == peer_id)
    return [str(t.id) for t in peer.tracks]


def livestream_tokens(params: Params) -> Result:
    api = client(params)
    room = api.create_room()
    result = {
        "viewer": outcome(lambda: api.create_livestream_viewer_token(room.id)),
        "streamer": outcome(lambda: api.create_livestream_streamer_token(room.id)),
    }
    api.delete_room(room.id)
    return result


def livestream_room_tokens(params: Params) -> Result:
    api = client(params)
    room = api.create_room(RoomOptions(room_type="livestream", public=True))
    result = {
        "public": room.config.public,
        "viewer": outcome(lambda: api.create_livestream_viewer_token(room.id)),
        "streamer": outcome(lambda: api.create_livestream_streamer_token(room.id)),
    }
    api.delete_room(room.id)
    return result


def moq_access(params: Params) -> Result:
    api = client(params)

    def access(**paths: str | None) -> Any:
        granted = api.create_moq_access(**paths)
        return {"connection_url": granted.connection_url, "token": granted.token}

    return {
        "no_params": outcome(lambda: access(publish_path=None, subscribe_path=None)),
        "publish": _unwrapped(lambda: access(publish_path="my-stream")),
        "subscribe": _unwrapped(lambda: access(subscribe_path="my-stream")),
        "both": _unwrapped(lambda: access(publish_path="a", subscribe_path="b")),
        "bad_token": outcome(lambda: client(params, token="invalid").create_moq_access(publish_path="x")),
    }


def _unwrapped(call: Any) -> Result:
    try:
        return {"ok": True, **call()}
    except Exception as exc:  # noqa: BLE001 - recording the exception is the point
        return {"ok": False, "error": type(exc).__name__, "message": str(exc)}


if __name__ == "__main__":
    main({
        "about": about, "invalid_token": invalid_token, "create_room": create_room,
        "invalid_max_peers": invalid_max_peers, "unknown_rooms": unknown_rooms, "delete_room": delete_room,
        "create_peer": create_peer, "peer_limit": peer_limit, "delete_peer": delete_peer,
        "refresh_token": refresh_token, "vapi_agent": vapi_agent, "credentials": credentials,
        "manual_subscriptions": manual_subscriptions, "livestream_tokens": livestream_tokens,
        "livestream_room_tokens": livestream_room_tokens, "moq_access": moq_access,
    })
