"""Tools for testing against a real shoal server: start one, and join its rooms as a WebRTC peer."""

from shoal.testing.peer import (
    GeneratorSource,
    LocalTrack,
    OpusPacketSource,
    PeerAuthError,
    PeerClosedError,
    PeerError,
    PeerEvent,
    PeerJoin,
    PeerProtocolError,
    Recording,
    RemoteEndpoint,
    RemoteTrack,
    ToneSource,
    WavSource,
    WebRTCPeer,
    encode_opus_tone,
)
from shoal.testing.server import ServerProcess, free_port, start_server

__all__ = [
    "GeneratorSource",
    "LocalTrack",
    "OpusPacketSource",
    "PeerAuthError",
    "PeerClosedError",
    "PeerError",
    "PeerEvent",
    "PeerJoin",
    "PeerProtocolError",
    "Recording",
    "RemoteEndpoint",
    "RemoteTrack",
    "ServerProcess",
    "ToneSource",
    "WavSource",
    "WebRTCPeer",
    "encode_opus_tone",
    "free_port",
    "start_server",
]
