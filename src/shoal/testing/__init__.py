"""Tools for testing against a real shoal server: start one, join its rooms as a WebRTC peer.

The peer publishes test audio and video (sources.py, video.py) and can drop and count RTP (rtp.py).
"""

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
from shoal.testing.rtp import (
    RtpStats,
    RtpTap,
    SeqLog,
    drop_received_rtp,
    drop_sent_rtp,
    install_rtp_tap,
    route_announced_ssrcs,
    rtp_stats,
    rtp_tap,
)
from shoal.testing.server import ServerProcess, free_port, start_server
from shoal.testing.sources import (
    GeneratorSource,
    OpusPacketSource,
    ToneSource,
    WavSource,
    encode_opus_tone,
)
from shoal.testing.video import VideoRecording, VideoSource, read_frame_index

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
    "RtpStats",
    "RtpTap",
    "SeqLog",
    "ServerProcess",
    "ToneSource",
    "VideoRecording",
    "VideoSource",
    "WavSource",
    "WebRTCPeer",
    "drop_received_rtp",
    "drop_sent_rtp",
    "encode_opus_tone",
    "free_port",
    "install_rtp_tap",
    "read_frame_index",
    "route_announced_ssrcs",
    "rtp_stats",
    "rtp_tap",
    "start_server",
]
