"""Server notifications, under the names the official SDK uses.

The classes are the generated google-protobuf messages (``ServerMessageRoomCreated`` is
``ServerMessage.RoomCreated``), so they can be constructed, compared and matched with
``isinstance`` like the official ones. Enums are ``IntEnum`` classes at run time (see
``_enums``) but are typed as the generated protobuf enums.
"""

from typing import TYPE_CHECKING

from fishjam._proto import server_notifications_pb2 as _server
from fishjam._proto.notifications import shared_pb2 as _shared

if TYPE_CHECKING:
    # Type checkers see the generated enum types, so these values type-check wherever
    # protobuf messages take or return them. At run time they are IntEnums (below).
    TrackEncoding = _shared.TrackEncoding
    TrackType = _shared.TrackType
    ServerMessagePeerType = _server.ServerMessage.PeerType
    ServerMessageRecordingStatusChangedStatus = _server.ServerMessage.RecordingStatusChanged.Status
else:
    from fishjam.events._enums import (
        ServerMessagePeerType,
        ServerMessageRecordingStatusChangedStatus,
        TrackEncoding,
        TrackType,
    )

ServerMessage = _server.ServerMessage

ServerMessageRoomCreated = ServerMessage.RoomCreated
ServerMessageRoomDeleted = ServerMessage.RoomDeleted
ServerMessageRoomCrashed = ServerMessage.RoomCrashed
ServerMessagePeerAdded = ServerMessage.PeerAdded
ServerMessagePeerConnected = ServerMessage.PeerConnected
ServerMessagePeerDeleted = ServerMessage.PeerDeleted
ServerMessagePeerDisconnected = ServerMessage.PeerDisconnected
ServerMessagePeerMetadataUpdated = ServerMessage.PeerMetadataUpdated
ServerMessagePeerCrashed = ServerMessage.PeerCrashed
ServerMessageRecordingStatusChanged = ServerMessage.RecordingStatusChanged
ServerMessageStreamConnected = ServerMessage.StreamConnected
ServerMessageStreamDisconnected = ServerMessage.StreamDisconnected
ServerMessageStreamerConnected = ServerMessage.StreamerConnected
ServerMessageStreamerDisconnected = ServerMessage.StreamerDisconnected
ServerMessageChannelAdded = ServerMessage.ChannelAdded
ServerMessageChannelRemoved = ServerMessage.ChannelRemoved
ServerMessageTrackAdded = ServerMessage.TrackAdded
ServerMessageTrackMetadataUpdated = ServerMessage.TrackMetadataUpdated
ServerMessageTrackRemoved = ServerMessage.TrackRemoved
ServerMessageViewerConnected = ServerMessage.ViewerConnected
ServerMessageViewerDisconnected = ServerMessage.ViewerDisconnected
ServerMessageNotificationBatch = ServerMessage.NotificationBatch

Track = _shared.Track

__all__ = [
    "ServerMessageRoomCreated",
    "ServerMessageRoomDeleted",
    "ServerMessageRoomCrashed",
    "ServerMessagePeerAdded",
    "ServerMessagePeerConnected",
    "ServerMessagePeerDeleted",
    "ServerMessagePeerDisconnected",
    "ServerMessagePeerMetadataUpdated",
    "ServerMessagePeerCrashed",
    "ServerMessageRecordingStatusChanged",
    "ServerMessageRecordingStatusChangedStatus",
    "ServerMessageStreamConnected",
    "ServerMessageStreamDisconnected",
    "ServerMessageStreamerConnected",
    "ServerMessageStreamerDisconnected",
    "ServerMessageChannelAdded",
    "ServerMessageChannelRemoved",
    "ServerMessageTrackAdded",
    "ServerMessageTrackMetadataUpdated",
    "ServerMessageTrackRemoved",
    "ServerMessageViewerConnected",
    "ServerMessageViewerDisconnected",
    "Track",
    "TrackEncoding",
    "TrackType",
    "ServerMessagePeerType",
]
