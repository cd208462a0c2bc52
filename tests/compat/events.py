"""Helpers for the notification lists the scenarios record (type name plus fields)."""

from __future__ import annotations

from typing import Any

Event = dict[str, Any]

PEER_LIFECYCLE = ["RoomCreated", "PeerAdded", "PeerConnected", "PeerDisconnected", "PeerDeleted", "RoomDeleted"]


def for_room(events: list[Event], room_id: str) -> list[Event]:
    """The room's notifications in arrival order, without the arrival times."""
    return [{k: v for k, v in e.items() if k != "t"} for e in events if e.get("room_id") == room_id]


def find_in_order(events: list[Event], wanted: list[dict[str, Any]]) -> list[Event] | None:
    """Match ``wanted`` (each a dict of required fields) as a subsequence of ``events``."""
    found: list[Event] = []
    position = 0
    for want in wanted:
        while position < len(events) and not all(events[position].get(k) == v for k, v in want.items()):
            position += 1
        if position == len(events):
            return None
        found.append(events[position])
        position += 1
    return found


def assert_in_order(events: list[Event], wanted: list[dict[str, Any]]) -> list[Event]:
    found = find_in_order(events, wanted)
    assert found is not None, (
        f"expected, in this order: {[w.get('type') for w in wanted]}\n"
        f"received: {[(e['type'], e.get('peer_id', '')) for e in events]}"
    )
    return found


def types(*names: str, **fields: Any) -> list[dict[str, Any]]:
    return [{"type": name, **fields} for name in names]
