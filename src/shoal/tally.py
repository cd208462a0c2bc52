"""Tally: the plain integer counters the media and socket hot paths bump, one per server.

Objects such as a forwarder or an agent's playout queue live for one call; their own
counters (logged when they end) vanish with them, but a Prometheus counter must never go
down. So each bumps the server's ``Tally`` as well — one ``+= 1`` on an attribute, no
lock, no library call — and ``GET /metrics`` (``shoal.metrics``) reads it at scrape time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Tally:
    # RTP from WebRTC publishers to WebRTC receivers (the SFU path, shoal.media.forward)
    rtp_received: int = 0
    """Packets taken from publishers (after SRTP and RTX unwrapping)."""
    rtp_forwarded: int = 0
    """Packets rewritten and queued for a receiver."""
    rtp_retransmitted: int = 0
    """Packets resent from the history on a receiver's NACK."""
    rtp_dropped_overload: int = 0
    """Packets dropped from a full per-receiver send queue (the event loop is far behind)."""
    rtp_dropped_late: int = 0
    """Late packets of a publisher's replaced stream, not forwarded."""
    srtp_refused: int = 0
    """Inbound RTP/RTCP packets SRTP refused: forged, corrupted or replayed."""
    rtp_malformed: int = 0
    """Inbound RTP packets (authentic SRTP) whose header does not parse (``shoal.media.fast_audio``)."""
    rtp_fast_path: int = 0
    """Inbound audio packets handled in the datagram's callback, not through aiortc's queue and task."""
    keyframe_requests_received: int = 0
    """PLI/FIR from receivers."""
    keyframe_requests_sent: int = 0
    """PLI sent to publishers (after rate limiting)."""
    # participants' audio decoded for agents (shoal.media.opus_in)
    participant_audio_frames: int = 0
    """Opus frames of participants decoded as they arrived."""
    participant_audio_late: int = 0
    """Duplicate or reordered packets dropped: decoding them would put old audio after new."""
    participant_audio_lost: int = 0
    """Packets missing from the sequence (never arrived)."""
    participant_audio_malformed: int = 0
    """Payloads libopus could not decode."""
    participant_audio_stale: int = 0
    """Packets later than ``--participant-audio-max-delay`` on their sender's clock, dropped undecoded."""
    # agents (shoal.endpoints.agent, shoal.media.playout, shoal.signaling.outbox)
    agent_frames_delivered: int = 0
    """20 ms audio frames (``TrackData``) queued to agents' sockets."""
    agent_playout_events: int = 0
    """``PlayoutEvent`` messages queued to agents that opted in (``?playout_events=true``)."""
    vad_events_sent: int = 0
    """Voice-activity changes sent: ``vad_notification`` to participants, ``VoiceActivity`` to agents that asked."""
    agent_outbox_dropped: int = 0
    """Frames dropped, oldest first, because an agent read too slowly."""
    agent_frames_written_directly: int = 0
    """Frames written to an agent's socket in the call that made them, without the writer task's hop."""
    playout_frames_played: int = 0
    """20 ms frames of agents' outgoing tracks played out."""
    playout_frames_withheld: int = 0
    """Played frames not encoded for WebRTC listeners because all of them were paused (overload)."""
    playout_dropped_chunks: int = 0
    """Chunks (or Opus packets) of agent audio tail-dropped from a full playout queue."""
    playout_malformed: int = 0
    """Opus packets from agents that libopus could not decode."""
