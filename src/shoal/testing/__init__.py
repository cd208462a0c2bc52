"""Tools for testing against a real shoal server: start one, and join its rooms as a WebRTC peer."""

from shoal.testing.peer import (
    LocalTrack,
    PeerAuthError,
    PeerClosedError,
    PeerError,
    PeerEvent,
    PeerJoin,
    PeerProtocolError,
    Recording,
    RemoteEndpoint,
    RemoteTrack,
    WebRTCPeer,
)
from shoal.testing.server import ServerProcess, free_port, start_server
from shoal.testing.sources import (
    GeneratorSource,
    OpusPacketSource,
    ToneSource,
    WavSource,
    encode_opus_tone,
)

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
