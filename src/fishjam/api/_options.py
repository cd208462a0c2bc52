"""Option objects accepted by :class:`~fishjam.FishjamClient`, and their JSON bodies.

The defaults match the official SDK, and so does every body: same keys, same key order,
same values, so a server sees identical requests from either SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fishjam.api._models import AudioFormat, RoomType, SubscribeMode, VideoCodec

_AGENT_SAMPLE_RATES = (16000, 24000)


@dataclass
class RoomOptions:
    """Settings for a new room.

    ``webhook_url`` is deprecated on Fishjam Cloud but is how a self-hosted server learns
    where to POST notifications. ``batch_webhook_notifications`` coalesces them into one
    ``NotificationBatch`` per POST.
    """

    max_peers: int | None = None
    video_codec: Literal["h264", "vp8"] | None = None
    webhook_url: str | None = None
    room_type: Literal[
        "conference",
        "audio_only",
        "livestream",
        "full_feature",
        "broadcaster",
        "audio_only_livestream",
    ] = "conference"
    public: bool = False
    batch_webhook_notifications: bool = False

    def to_body(self) -> dict[str, Any]:
        """The ``POST /room`` body; ``videoCodec`` is left out when not chosen."""
        # Enum lookups run first so an invalid value fails before anything is sent.
        room_type = RoomType(self.room_type).value
        codec = None if self.video_codec is None else VideoCodec(self.video_codec).value
        body: dict[str, Any] = {
            "batchWebhookNotifications": self.batch_webhook_notifications,
            "maxPeers": self.max_peers,
            "public": self.public,
            "roomType": room_type,
        }
        if codec is not None:
            body["videoCodec"] = codec
        body["webhookUrl"] = self.webhook_url
        return body


@dataclass
class PeerOptions:
    """Settings for a WebRTC peer; ``metadata`` becomes the peer's server metadata."""

    metadata: dict[str, Any] | None = None
    subscribe_mode: Literal["auto", "manual"] = "auto"

    def to_body(self) -> dict[str, Any]:
        """The ``POST /room/{id}/peer`` body for a WebRTC peer."""
        options = {
            "metadata": dict(self.metadata or {}),
            "subscribeMode": SubscribeMode(self.subscribe_mode).value,
        }
        return {"options": options, "type": "webrtc"}


@dataclass
class AgentOutputOptions:
    """Format of the audio the server sends to the agent."""

    audio_format: Literal["pcm16"] = "pcm16"
    audio_sample_rate: Literal[16000, 24000] = 16000


@dataclass
class AgentOptions:
    """Settings for an agent peer."""

    output: AgentOutputOptions = field(default_factory=AgentOutputOptions)
    subscribe_mode: Literal["auto", "manual"] = "auto"

    def to_body(self) -> dict[str, Any]:
        """The ``POST /room/{id}/peer`` body for an agent."""
        rate = self.output.audio_sample_rate
        if rate not in _AGENT_SAMPLE_RATES:
            raise ValueError(f"{rate!r} is not a valid agent audio sample rate")
        output = {
            "audioFormat": AudioFormat(self.output.audio_format).value,
            "audioSampleRate": int(rate),
        }
        options = {"output": output, "subscribeMode": SubscribeMode(self.subscribe_mode).value}
        return {"options": options, "type": "agent"}


@dataclass
class PeerOptionsVapi:
    """Credentials and settings for a VAPI bridge peer.

    ``auto_close`` ends the VAPI call once the last participant leaves; ``None`` leaves the
    key out, as does ``subscribe_mode=None``.
    """

    api_key: str
    call_id: str
    auto_close: bool | None = False
    subscribe_mode: SubscribeMode | Literal["auto", "manual"] | None = None

    def to_body(self) -> dict[str, Any]:
        """The ``POST /room/{id}/peer`` body for a VAPI peer."""
        options: dict[str, Any] = {"apiKey": self.api_key, "callId": self.call_id}
        if self.auto_close is not None:
            options["autoClose"] = self.auto_close
        if self.subscribe_mode is not None:
            options["subscribeMode"] = SubscribeMode(self.subscribe_mode).value
        return {"options": options, "type": "vapi"}
