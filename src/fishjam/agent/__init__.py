"""Agents: server-side peers that exchange raw audio (and images) with a room."""

from fishjam.agent.agent import (
    Agent,
    AgentSession,
    IncomingAgentMessage,
    IncomingPlayoutEvent,
    IncomingTrackData,
    IncomingTrackImage,
    IncomingVoiceActivity,
    OutgoingAudioTrackOptions,
    OutgoingTrack,
)
from fishjam.agent.errors import AgentAuthError, AgentError

__all__ = [
    "Agent",
    "AgentError",
    "AgentSession",
    "AgentAuthError",
    "IncomingAgentMessage",
    "IncomingPlayoutEvent",
    "IncomingTrackData",
    "IncomingTrackImage",
    "IncomingVoiceActivity",
    "OutgoingTrack",
    "OutgoingAudioTrackOptions",
]
