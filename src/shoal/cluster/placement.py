"""Which live node takes a new room: the least loaded (no I/O).

A node's load is what it carries now: its media streams (tracks published in its rooms),
its rooms (so rooms created in a burst, before any has media, still spread), and its
process CPU beyond half a core, weighted so that each further tenth of a core counts as
10 streams. Below half a core CPU says little about capacity (start-up, forwarded REST
calls) and would make placement follow noise; above it the node is nearing the one core
its event loop can use. Draining nodes take no rooms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CPU_WEIGHT = 100.0
"""Load points of one fully used core (about the streams one core carries at real load)."""
CPU_FLOOR = 0.5
"""Cores of CPU that add no load."""


@dataclass(frozen=True)
class NodeInfo:
    """One node as its heartbeat describes it."""

    id: str
    public_url: str
    internal_url: str
    rooms: int = 0
    streams: int = 0
    cpu: float = 0.0
    """Cores the process used over its last heartbeat interval (1.0 = one core)."""
    draining: bool = False

    @property
    def load(self) -> float:
        return self.streams + self.rooms + CPU_WEIGHT * max(0.0, self.cpu - CPU_FLOOR)

    def to_fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "public_url": self.public_url,
            "internal_url": self.internal_url,
            "rooms": str(self.rooms),
            "streams": str(self.streams),
            "cpu": f"{self.cpu:.3f}",
            "draining": "1" if self.draining else "0",
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> NodeInfo:
        return cls(
            id=fields["id"],
            public_url=fields["public_url"],
            internal_url=fields["internal_url"],
            rooms=int(fields.get("rooms", "0")),
            streams=int(fields.get("streams", "0")),
            cpu=float(fields.get("cpu", "0")),
            draining=fields.get("draining") == "1",
        )


def choose_node(nodes: Iterable[NodeInfo]) -> NodeInfo | None:
    """The node a new room goes to, or None when no live node takes rooms."""
    candidates = [node for node in nodes if not node.draining]
    if not candidates:
        return None
    return min(candidates, key=lambda node: (node.load, node.id))
