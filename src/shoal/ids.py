"""Identifier types and generators for rooms, peers and tracks."""

from __future__ import annotations

import uuid
from typing import NewType

RoomId = NewType("RoomId", str)
PeerId = NewType("PeerId", str)
TrackId = NewType("TrackId", str)


def new_room_id() -> RoomId:
    return RoomId(str(uuid.uuid4()))


def new_peer_id() -> PeerId:
    return PeerId(str(uuid.uuid4()))


def is_uuid(value: str) -> bool:
    """True for a UUID in either spelling clients use (with or without dashes)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) in (32, 36)
