"""Route handlers of the management API (``rest-api.md``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse

from shoal.api import models as m
from shoal.api.errors import error_response
from shoal.api.serialize import peer_json, room_json
from shoal.api.webhook_url import check_webhook_url
from shoal.domain.manager import PeerSpec
from shoal.domain.model import PeerType, RoomConfig, RoomType, SubscribeMode, VideoCodec
from shoal.errors import InvalidRequest, NotFound, NotImplementedYet, ShoalError, Unavailable
from shoal.protocol.limits import check_metadata
from shoal.server import Shoal

router = APIRouter()

LIMIT_FIELDS = (
    "metadata_max_depth", "metadata_max_string", "metadata_max_bytes",
    "http_max_header_bytes", "http_max_body_bytes", "http_header_timeout_s", "http_body_timeout_s",
    "http_keepalive_timeout_s", "max_rooms", "max_peers_per_room", "room_peerless_purge_timeout_s",
    "webhook_queue_messages", "webhook_reap_grace_s",
    "playout_max_seconds", "playout_max_track_bytes", "playout_max_agent_seconds", "playout_max_agent_bytes",
    "playout_max_server_bytes", "playout_max_lag_s", "max_tracks_per_agent", "participant_audio_max_delay_s",
    "overload_pause_after_s",
)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.ErrorBody, "description": "Invalid request"},
    401: {"model": m.ErrorBody, "description": "Invalid or missing management token"},
    404: {"model": m.ErrorBody, "description": "Room or peer not found"},
}


def shoal_of(request: Request) -> Shoal:
    shoal: Shoal = request.app.state.shoal
    return shoal


@router.get("/health", tags=["health"], summary="Liveness check (no authentication)")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/rtc/stats", tags=["health"], summary="WebRTC network counters: gathered addresses, single-port drops, TURN check")
async def rtc_stats(request: Request) -> dict[str, Any]:
    return shoal_of(request).rtc.stats()


@router.get("/limits/stats", tags=["health"], summary="Limits against untrusted clients: settings and refusals per cause")
async def limits_stats(request: Request) -> dict[str, Any]:
    shoal = shoal_of(request)
    config = shoal.config
    return {
        "limits": {name: getattr(config, name) for name in LIMIT_FIELDS},
        "refused": shoal.refusals.counts(),
        "rooms": len(shoal.manager.rooms()),
        "purged_rooms": shoal.manager.purged_rooms,
        "webhooks": shoal.webhooks.stats(),
        "playout": {**shoal.playout_budget.stats(), **shoal.clock.stats()},
        "cluster": shoal.cluster.stats() if shoal.cluster is not None else None,
    }


@router.get("/validate", tags=["credentials"], summary="Check the management token: 200 valid, 404 invalid")
async def validate() -> Response:
    # The auth middleware answers 404 for a bad token on this path.
    return Response(status_code=200)


@router.post("/room", status_code=201, response_model=m.RoomCreateDetailsResponse, responses=ERRORS, tags=["room"])
async def create_room(request: Request, config: Annotated[m.RoomConfigIn | None, Body()] = None) -> dict[str, Any]:
    config = config or m.RoomConfigIn()
    shoal = shoal_of(request)
    if shoal.draining:
        raise Unavailable("this shoal node is shutting down and takes no new rooms; retry on another node")
    if config.webhookUrl is not None:
        refusal = check_webhook_url(config.webhookUrl)
        if refusal is not None:
            shoal.refusals.note(f"webhook_url.{refusal.cause}", f"REST room webhookUrl refused: {refusal.reason}")
            raise InvalidRequest(f"webhookUrl: {refusal.reason}")
    room = shoal.manager.create_room(
        RoomConfig(
            max_peers=config.maxPeers or 0,
            video_codec=VideoCodec(config.videoCodec or "h264"),
            webhook_url=config.webhookUrl,
            room_type=RoomType(config.roomType or "conference"),
            public=bool(config.public),
            batch_webhook_notifications=bool(config.batchWebhookNotifications),
        )
    )
    if shoal.cluster is not None:
        try:
            await shoal.cluster.room_created(room.id, room.config.webhook_url, room.config.batch_webhook_notifications)
        except ShoalError:
            shoal.manager.delete_room(room.id)  # a room no other node could find is no room
            raise
    return {"data": {"room": room_json(room)}}


@router.get("/room", response_model=m.RoomsListingResponse, responses=ERRORS, tags=["room"])
async def list_rooms(request: Request) -> dict[str, Any]:
    return {"data": [room_json(room) for room in shoal_of(request).manager.rooms()]}


@router.get("/room/{room_id}", response_model=m.RoomDetailsResponse, responses=ERRORS, tags=["room"])
async def get_room(request: Request, room_id: str) -> dict[str, Any]:
    return {"data": room_json(shoal_of(request).manager.room(room_id))}


@router.delete("/room/{room_id}", status_code=204, responses=ERRORS, tags=["room"])
async def delete_room(request: Request, room_id: str) -> Response:
    shoal_of(request).manager.delete_room(room_id)
    return Response(status_code=204)


def _peer_spec(config: m.WebRtcPeerConfig | m.AgentPeerConfig | m.VapiPeerConfig) -> PeerSpec:
    if isinstance(config, m.WebRtcPeerConfig):
        webrtc = config.options or m.WebRtcOptions()
        return PeerSpec(
            type=PeerType.WEBRTC,
            subscribe_mode=SubscribeMode(webrtc.subscribeMode or "auto"),
            server_metadata=webrtc.metadata,
            heard_by_all_agents=webrtc.subscribe is not None,
        )
    if isinstance(config, m.AgentPeerConfig):
        agent = config.options or m.AgentOptions()
        output = agent.output or m.AgentOutput()
        return PeerSpec(
            type=PeerType.AGENT,
            subscribe_mode=SubscribeMode(agent.subscribeMode or "auto"),
            output_sample_rate=output.audioSampleRate or 16000,
        )
    return PeerSpec(type=PeerType.VAPI, subscribe_mode=SubscribeMode(config.options.subscribeMode or "auto"))


@router.post(
    "/room/{room_id}/peer",
    status_code=201,
    response_model=m.PeerDetailsResponse,
    responses={**ERRORS, 409: {"model": m.ErrorBody, "description": "The room's maxPeers is reached"}},
    tags=["room"],
)
async def add_peer(request: Request, room_id: str, config: Annotated[m.PeerConfig, Body()]) -> dict[str, Any]:
    shoal = shoal_of(request)
    if isinstance(config, m.WebRtcPeerConfig) and config.options and config.options.metadata is not None:
        refusal = check_metadata(config.options.metadata, shoal.config.metadata_limits)
        if refusal is not None:
            shoal.refusals.note(f"metadata.{refusal.cause}", f"REST peer metadata refused: {refusal.reason}")
            raise InvalidRequest(f"options.metadata: {refusal.reason}")
    peer, token = shoal.manager.add_peer(room_id, _peer_spec(config))
    if shoal.cluster is not None:
        try:
            await shoal.cluster.token_issued(token, room_id, peer.id)
        except ShoalError:
            shoal.manager.delete_peer(room_id, peer.id)
            raise
    return {
        "data": {
            "peer": peer_json(peer),
            "token": token,
            "peer_websocket_url": shoal.config.peer_websocket_url,
        }
    }


@router.delete("/room/{room_id}/peer/{peer_id}", status_code=204, responses=ERRORS, tags=["room"])
async def delete_peer(request: Request, room_id: str, peer_id: str) -> Response:
    shoal_of(request).manager.delete_peer(room_id, peer_id)
    return Response(status_code=204)


@router.post(
    "/room/{room_id}/peer/{peer_id}/refresh_token",
    status_code=201,
    response_model=m.PeerRefreshTokenResponse,
    responses=ERRORS,
    tags=["room"],
)
async def refresh_token(request: Request, room_id: str, peer_id: str) -> dict[str, Any]:
    shoal = shoal_of(request)
    token = shoal.manager.refresh_token(room_id, peer_id)
    if shoal.cluster is not None:
        await shoal.cluster.token_issued(token, room_id, peer_id)
    return {"data": {"token": token}}


@router.post("/room/{room_id}/peer/{peer_id}/subscribe_peer", responses=ERRORS, tags=["room"])
async def subscribe_peer(
    request: Request, room_id: str, peer_id: str, publisher: Annotated[str, Query(alias="peer_id")]
) -> Response:
    shoal_of(request).manager.subscribe_peer(room_id, peer_id, publisher)
    return Response(status_code=200)


@router.post("/room/{room_id}/peer/{peer_id}/subscribe_tracks", responses=ERRORS, tags=["room"])
async def subscribe_tracks(
    request: Request, room_id: str, peer_id: str, body: Annotated[m.SubscribeTracksBody, Body()]
) -> Response:
    shoal_of(request).manager.subscribe_tracks(room_id, peer_id, body.track_ids)
    return Response(status_code=200)


@router.post("/room/{room_id}/viewer", status_code=201, responses=ERRORS, tags=["viewer"])
@router.post("/room/{room_id}/streamer", status_code=201, responses=ERRORS, tags=["streamer"])
async def livestream_token(request: Request, room_id: str) -> Response:
    room = shoal_of(request).manager.room(room_id)
    if room.config.room_type not in (RoomType.LIVESTREAM, RoomType.AUDIO_ONLY_LIVESTREAM):
        raise NotFound(f"Room {room_id} is not a livestream room")
    raise NotImplementedYet("livestreams are not implemented by this shoal server yet")


@router.post("/moq/access", responses=ERRORS, tags=["moq"])
async def moq_access(config: Annotated[m.MoqAccessConfig | None, Body()] = None) -> Response:
    if config is None or (config.publishPath is None and config.subscribePath is None):
        raise InvalidRequest("at least one of publishPath and subscribePath is required")
    raise NotImplementedYet("MoQ access is not implemented by this shoal server yet")


NOT_IMPLEMENTED = {
    "/livestream": "livestreams",
    "/livestream/{rest:path}": "livestreams",
    "/recordings": "recordings",
    "/recordings/{rest:path}": "recordings",
    "/room/{room_id}/track_forwardings": "track forwardings",
}


def _not_implemented(feature: str) -> Any:
    async def handler() -> JSONResponse:
        return error_response(501, f"{feature} are not implemented by this shoal server yet")

    return handler


for _path, _feature in NOT_IMPLEMENTED.items():
    router.add_api_route(
        _path,
        _not_implemented(_feature),
        methods=["GET", "POST", "DELETE"],
        include_in_schema=False,
    )
