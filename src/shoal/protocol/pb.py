"""The generated protobuf modules (shared with the SDK, generated from ``protos/``)."""

from fishjam._proto import (
    agent_notifications_pb2 as agent_pb,
)
from fishjam._proto import (
    peer_notifications_pb2 as peer_pb,
)
from fishjam._proto import (
    server_notifications_pb2 as server_pb,
)
from fishjam._proto.media_events.peer import peer_pb2 as media_peer_pb
from fishjam._proto.media_events.server import server_pb2 as media_server_pb
from fishjam._proto.notifications import shared_pb2 as shared_pb

__all__ = ["agent_pb", "media_peer_pb", "media_server_pb", "peer_pb", "server_pb", "shared_pb"]
