"""Management REST API client."""

from fishjam.api._fishjam_client import (
    AgentOptions,
    AgentOutputOptions,
    FishjamClient,
    MoqAccess,
    Peer,
    PeerOptions,
    PeerOptionsVapi,
    Room,
    RoomOptions,
)

__all__ = [
    "AgentOptions",
    "AgentOutputOptions",
    "FishjamClient",
    "MoqAccess",
    "Peer",
    "PeerOptions",
    "PeerOptionsVapi",
    "Room",
    "RoomOptions",
]
