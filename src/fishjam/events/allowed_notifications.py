"""Which server notifications the SDK hands to user code.

Handshake messages, deprecated HLS/component events, VAD and track-forwarding events
are not passed on, matching the official SDK.
"""

from typing import TypeAlias

from fishjam.errors import StaleSdkError
from fishjam.events import (
    ServerMessageChannelAdded,
    ServerMessageChannelRemoved,
    ServerMessagePeerAdded,
    ServerMessagePeerConnected,
    ServerMessagePeerCrashed,
    ServerMessagePeerDeleted,
    ServerMessagePeerDisconnected,
    ServerMessagePeerMetadataUpdated,
    ServerMessageRecordingStatusChanged,
    ServerMessageRecordingStatusChangedStatus,
    ServerMessageRoomCrashed,
    ServerMessageRoomCreated,
    ServerMessageRoomDeleted,
    ServerMessageStreamerConnected,
    ServerMessageStreamerDisconnected,
    ServerMessageTrackAdded,
    ServerMessageTrackMetadataUpdated,
    ServerMessageTrackRemoved,
    ServerMessageViewerConnected,
    ServerMessageViewerDisconnected,
)

ALLOWED_NOTIFICATIONS = (
    ServerMessageRoomCreated,
    ServerMessageRoomDeleted,
    ServerMessageRoomCrashed,
    ServerMessagePeerAdded,
    ServerMessagePeerDeleted,
    ServerMessagePeerConnected,
    ServerMessagePeerDisconnected,
    ServerMessagePeerMetadataUpdated,
    ServerMessagePeerCrashed,
    ServerMessageStreamerConnected,
    ServerMessageStreamerDisconnected,
    ServerMessageChannelAdded,
    ServerMessageChannelRemoved,
    ServerMessageViewerConnected,
    ServerMessageViewerDisconnected,
    ServerMessageTrackAdded,
    ServerMessageTrackRemoved,
    ServerMessageTrackMetadataUpdated,
    ServerMessageRecordingStatusChanged,
)

AllowedNotification: TypeAlias = (
    ServerMessageRoomCreated
    | ServerMessageRoomDeleted
    | ServerMessageRoomCrashed
    | ServerMessagePeerAdded
    | ServerMessagePeerDeleted
    | ServerMessagePeerConnected
    | ServerMessagePeerDisconnected
    | ServerMessagePeerMetadataUpdated
    | ServerMessagePeerCrashed
    | ServerMessageStreamerConnected
    | ServerMessageStreamerDisconnected
    | ServerMessageChannelAdded
    | ServerMessageChannelRemoved
    | ServerMessageViewerConnected
    | ServerMessageViewerDisconnected
    | ServerMessageTrackAdded
    | ServerMessageTrackRemoved
    | ServerMessageTrackMetadataUpdated
    | ServerMessageRecordingStatusChanged
)


def validate_notification(notification: AllowedNotification) -> None:
    """Refuse recording statuses this SDK cannot interpret.

    An unknown or unspecified status means the server is newer than the SDK, which is
    better reported than silently mis-handled.
    """
    if not isinstance(notification, ServerMessageRecordingStatusChanged):
        return
    try:
        status = ServerMessageRecordingStatusChangedStatus(notification.status)
    except ValueError:
        raise StaleSdkError(notification.status) from None
    if status == ServerMessageRecordingStatusChangedStatus.STATUS_UNSPECIFIED:
        raise StaleSdkError(status)
