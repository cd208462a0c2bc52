"""Request and response bodies of the REST API, with Fishjam's exact JSON key spelling.

Field names are the wire names (camelCase, with the few snake_case exceptions the
protocol has), so the OpenAPI document generated from them matches the wire.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

RoomTypeName = Literal["conference", "audio_only", "livestream", "full_feature", "broadcaster", "audio_only_livestream"]
SubscribeModeName = Literal["auto", "manual"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoomConfigIn(_Strict):
    maxPeers: Annotated[StrictInt, Field(ge=0)] | None = None
    videoCodec: Literal["h264", "vp8"] | None = None
    webhookUrl: str | None = Field(
        default=None,
        description="http or https URL with a host, at most 2048 bytes, no control characters or whitespace "
        "(checked by shoal.api.webhook_url)",
    )
    roomType: RoomTypeName | None = None
    public: StrictBool | None = None
    batchWebhookNotifications: StrictBool | None = None


class LegacySubscribe(_Strict):
    """The first agent docs' publisher-side option: every agent of the room hears this peer."""

    audioFormat: Literal["pcm16"] | None = None
    audioSampleRate: Literal[16000, 24000] | None = None


class WebRtcOptions(_Strict):
    metadata: dict[str, Any] | None = None
    subscribeMode: SubscribeModeName | None = None
    enableSimulcast: StrictBool | None = Field(default=None, description="Accepted for older SDKs; ignored.")
    subscribe: LegacySubscribe | None = None


class AgentOutput(_Strict):
    audioFormat: Literal["pcm16"] | None = None
    audioSampleRate: Literal[16000, 24000] | None = None


class AgentOptions(_Strict):
    output: AgentOutput | None = None
    subscribeMode: SubscribeModeName | None = None


class VapiOptions(_Strict):
    apiKey: str
    callId: Annotated[str, Field(pattern=r"^[a-zA-Z0-9-]+$")]
    subscribeMode: SubscribeModeName | None = None
    autoClose: StrictBool | None = None


class WebRtcPeerConfig(_Strict):
    type: Literal["webrtc"]
    options: WebRtcOptions | None = None


class AgentPeerConfig(_Strict):
    type: Literal["agent"]
    options: AgentOptions | None = None


class VapiPeerConfig(_Strict):
    type: Literal["vapi"]
    options: VapiOptions


PeerConfig = Annotated[WebRtcPeerConfig | AgentPeerConfig | VapiPeerConfig, Field(discriminator="type")]


class SubscribeTracksBody(_Strict):
    track_ids: list[str]


class MoqAccessConfig(_Strict):
    publishPath: str | None = None
    subscribePath: str | None = None
    ttl: StrictInt | None = None


# responses -----------------------------------------------------------------------------


class RoomConfigOut(BaseModel):
    maxPeers: int
    videoCodec: Literal["h264", "vp8"]
    webhookUrl: str | None
    roomType: RoomTypeName
    public: bool
    batchWebhookNotifications: bool


class TrackOut(BaseModel):
    id: str
    type: Literal["audio", "video"]
    metadata: Any


class SubscriptionsOut(BaseModel):
    peers: list[str]
    tracks: list[str]


class PeerOut(BaseModel):
    id: str
    type: Literal["webrtc", "agent", "vapi"]
    status: Literal["connected", "disconnected"]
    tracks: list[TrackOut]
    metadata: dict[str, Any] | None
    subscribeMode: SubscribeModeName
    subscriptions: SubscriptionsOut


class RoomOut(BaseModel):
    id: str
    config: RoomConfigOut
    peers: list[PeerOut]


class RoomCreateData(BaseModel):
    room: RoomOut


class RoomCreateDetailsResponse(BaseModel):
    data: RoomCreateData


class RoomDetailsResponse(BaseModel):
    data: RoomOut


class RoomsListingResponse(BaseModel):
    data: list[RoomOut]


class PeerDetailsData(BaseModel):
    peer: PeerOut
    token: str
    peer_websocket_url: str


class PeerDetailsResponse(BaseModel):
    data: PeerDetailsData


class TokenData(BaseModel):
    token: str


class PeerRefreshTokenResponse(BaseModel):
    data: TokenData


class ErrorBody(BaseModel):
    errors: str
