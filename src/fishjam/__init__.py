"""Python SDK for Fishjam-compatible servers (Fishjam Cloud or a self-hosted shoal).

It mirrors the public API of the official ``fishjam-server-sdk``, so code written for
that package runs unchanged, and it sends the same bytes for the same calls.
"""

from fishjam import agent, errors, events, peer, room, version
from fishjam._webhook_notifier import (
    decode_server_notifications,
    receive_binary,
    verify_webhook_signature,
)
from fishjam._ws_notifier import FishjamNotifier
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
from fishjam.api._models import PeerMetadata
from fishjam.errors import (
    InvalidFishjamCredentialsError,
    MissingFishjamIdError,
    StaleSdkError,
)

__version__ = version.__version__

__all__ = [
    "FishjamClient",
    "FishjamNotifier",
    "decode_server_notifications",
    "receive_binary",
    "verify_webhook_signature",
    "PeerMetadata",
    "PeerOptions",
    "PeerOptionsVapi",
    "RoomOptions",
    "AgentOptions",
    "AgentOutputOptions",
    "Room",
    "Peer",
    "MoqAccess",
    "MissingFishjamIdError",
    "InvalidFishjamCredentialsError",
    "StaleSdkError",
    "events",
    "errors",
    "room",
    "peer",
    "agent",
]
