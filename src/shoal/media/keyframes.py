"""Does an RTP payload start a keyframe? (VP8: RFC 7741, H.264: RFC 6184; no I/O.)

The forwarder needs this to start a new receiver on a picture it can decode, and the image
capture to know when decoding can begin. Only the payload's first bytes are read.
"""

from __future__ import annotations

H264_IDR = 5
H264_SPS = 7
H264_STAP_A = 24
H264_FU_A = 28


def vp8_keyframe_start(payload: bytes) -> bool:
    """True for the first packet of a VP8 keyframe (S=1, PID=0 and the P bit clear)."""
    if len(payload) < 1:
        return False
    first = payload[0]
    start_of_partition = first & 0x10
    partition_id = first & 0x07
    if not start_of_partition or partition_id != 0:
        return False
    pos = 1
    if first & 0x80:  # X: extension byte follows
        if len(payload) < 2:
            return False
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            pos += 1
    if len(payload) <= pos:
        return False
    return not payload[pos] & 0x01  # VP8 frame tag: P=0 means keyframe


def h264_keyframe_start(payload: bytes) -> bool:
    """True when the payload carries an IDR slice or SPS (where a decoder can start)."""
    if len(payload) < 1:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (H264_IDR, H264_SPS):
        return True
    if nal_type == H264_FU_A:
        return len(payload) >= 2 and bool(payload[1] & 0x80) and (payload[1] & 0x1F) in (H264_IDR, H264_SPS)
    if nal_type == H264_STAP_A:
        pos = 1
        while pos + 2 < len(payload):
            size = int.from_bytes(payload[pos : pos + 2], "big")
            if size == 0 or pos + 2 + size > len(payload):
                return False
            if payload[pos + 2] & 0x1F in (H264_IDR, H264_SPS):
                return True
            pos += 2 + size
    return False


def keyframe_start(codec_name: str, payload: bytes) -> bool:
    """Dispatch on the codec name, any case (``VP8``, ``H264``); False for other codecs."""
    name = codec_name.upper()
    if name == "VP8":
        return vp8_keyframe_start(payload)
    if name == "H264":
        return h264_keyframe_start(payload)
    return False
