"""How long an Opus packet plays, from its TOC byte (RFC 6716, section 3.1).

Pure parsing, shared by the SDK (an agent's local estimate of what it has queued) and the
server (``shoal.media.opus``, which budgets and checks agents' packets).
"""

from __future__ import annotations

# Frame durations in 48 kHz samples per TOC configuration (RFC 6716, section 3.1).
_SILK = (480, 960, 1920, 2880)
_HYBRID = (480, 960)
_CELT = (120, 240, 480, 960)


def packet_samples(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples; raises ValueError if malformed."""
    if not packet:
        raise ValueError("empty Opus packet")
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        frame = _SILK[config % 4]
    elif config < 16:
        frame = _HYBRID[config % 2]
    else:
        frame = _CELT[config % 4]
    code = toc & 0x03
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        if len(packet) < 2:
            raise ValueError("Opus packet with code 3 has no frame count byte")
        count = packet[1] & 0x3F
        if count == 0:
            raise ValueError("Opus packet with code 3 declares zero frames")
    total = frame * count
    if total > 5760:  # 120 ms is the most one packet may hold
        raise ValueError("Opus packet longer than 120 ms")
    if len(packet) > max_packet_bytes(count):
        raise ValueError(f"Opus packet of {len(packet)} bytes exceeds RFC 6716's {max_packet_bytes(count)} for {count} frames")
    return total


MAX_FRAME_BYTES = 1275
"""RFC 6716 (3.2.1): no Opus frame is longer than 1275 bytes."""


def max_packet_bytes(frames: int) -> int:
    """Largest packet accepted for ``frames`` frames: each at most 1275 bytes plus a 2-byte length,
    plus the TOC and frame-count bytes. Bigger is padding, which only costs memory while queued."""
    return (MAX_FRAME_BYTES + 2) * frames + 2
