"""Identifier types and generators for rooms, peers and tracks."""

from __future__ import annotations

import re
import uuid
from typing import NewType

RoomId = NewType("RoomId", str)
PeerId = NewType("PeerId", str)
TrackId = NewType("TrackId", str)


def new_room_id() -> RoomId:
    return RoomId(str(uuid.uuid4()))


def new_peer_id() -> PeerId:
    return PeerId(str(uuid.uuid4()))


_HEX = "[0-9a-fA-F]"
_UUID_SPELLINGS = re.compile(f"{_HEX}{{32}}|{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")


def is_uuid(value: str) -> bool:
    """True for a UUID in either spelling clients use: 32 hex digits, or 36 with dashes in place.

    Stricter than ``uuid.UUID``, which also takes ``urn:uuid:`` and braces, strips whitespace
    and reads non-ASCII digits: ids are compared and logged as text, so only plain ASCII
    hex spellings are let in.
    """
    return _UUID_SPELLINGS.fullmatch(value) is not None
