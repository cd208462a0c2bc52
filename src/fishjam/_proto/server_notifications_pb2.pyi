from fishjam._proto.notifications import shared_pb2 as _shared_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServerMessage(_message.Message):
    __slots__ = ("room_crashed", "peer_connected", "peer_disconnected", "peer_crashed", "component_crashed", "authenticated", "auth_request", "subscribe_request", "subscribe_response", "room_created", "room_deleted", "hls_playable", "hls_uploaded", "hls_upload_crashed", "peer_metadata_updated", "track_added", "track_removed", "track_metadata_updated", "peer_added", "peer_deleted", "stream_connected", "stream_disconnected", "viewer_connected", "viewer_disconnected", "streamer_connected", "streamer_disconnected", "channel_added", "channel_removed", "track_forwarding", "track_forwarding_removed", "vad_notification", "notification_batch", "recording_status_changed")
    class PeerType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PEER_TYPE_UNSPECIFIED: _ClassVar[ServerMessage.PeerType]
        PEER_TYPE_WEBRTC: _ClassVar[ServerMessage.PeerType]
        PEER_TYPE_AGENT: _ClassVar[ServerMessage.PeerType]
        PEER_TYPE_VAPI: _ClassVar[ServerMessage.PeerType]
    PEER_TYPE_UNSPECIFIED: ServerMessage.PeerType
    PEER_TYPE_WEBRTC: ServerMessage.PeerType
    PEER_TYPE_AGENT: ServerMessage.PeerType
    PEER_TYPE_VAPI: ServerMessage.PeerType
    class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        EVENT_TYPE_UNSPECIFIED: _ClassVar[ServerMessage.EventType]
        EVENT_TYPE_SERVER_NOTIFICATION: _ClassVar[ServerMessage.EventType]
    EVENT_TYPE_UNSPECIFIED: ServerMessage.EventType
    EVENT_TYPE_SERVER_NOTIFICATION: ServerMessage.EventType
    class RoomCrashed(_message.Message):
        __slots__ = ("room_id",)
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        def __init__(self, room_id: _Optional[str] = ...) -> None: ...
    class PeerAdded(_message.Message):
        __slots__ = ("room_id", "peer_id", "peer_type")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        peer_type: ServerMessage.PeerType
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., peer_type: _Optional[_Union[ServerMessage.PeerType, str]] = ...) -> None: ...
    class PeerDeleted(_message.Message):
        __slots__ = ("room_id", "peer_id", "peer_type")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        peer_type: ServerMessage.PeerType
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., peer_type: _Optional[_Union[ServerMessage.PeerType, str]] = ...) -> None: ...
    class PeerConnected(_message.Message):
        __slots__ = ("room_id", "peer_id", "peer_type")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        peer_type: ServerMessage.PeerType
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., peer_type: _Optional[_Union[ServerMessage.PeerType, str]] = ...) -> None: ...
    class PeerDisconnected(_message.Message):
        __slots__ = ("room_id", "peer_id", "peer_type")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        peer_type: ServerMessage.PeerType
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., peer_type: _Optional[_Union[ServerMessage.PeerType, str]] = ...) -> None: ...
    class PeerCrashed(_message.Message):
        __slots__ = ("room_id", "peer_id", "reason", "peer_type")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        REASON_FIELD_NUMBER: _ClassVar[int]
        PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        reason: str
        peer_type: ServerMessage.PeerType
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., reason: _Optional[str] = ..., peer_type: _Optional[_Union[ServerMessage.PeerType, str]] = ...) -> None: ...
    class ComponentCrashed(_message.Message):
        __slots__ = ("room_id", "component_id")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        COMPONENT_ID_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        component_id: str
        def __init__(self, room_id: _Optional[str] = ..., component_id: _Optional[str] = ...) -> None: ...
    class Authenticated(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class AuthRequest(_message.Message):
        __slots__ = ("token",)
        TOKEN_FIELD_NUMBER: _ClassVar[int]
        token: str
        def __init__(self, token: _Optional[str] = ...) -> None: ...
    class SubscribeRequest(_message.Message):
        __slots__ = ("event_type",)
        EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
        event_type: ServerMessage.EventType
        def __init__(self, event_type: _Optional[_Union[ServerMessage.EventType, str]] = ...) -> None: ...
    class SubscribeResponse(_message.Message):
        __slots__ = ("event_type",)
        EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
        event_type: ServerMessage.EventType
        def __init__(self, event_type: _Optional[_Union[ServerMessage.EventType, str]] = ...) -> None: ...
    class RoomCreated(_message.Message):
        __slots__ = ("room_id",)
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        def __init__(self, room_id: _Optional[str] = ...) -> None: ...
    class RoomDeleted(_message.Message):
        __slots__ = ("room_id",)
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        def __init__(self, room_id: _Optional[str] = ...) -> None: ...
    class HlsPlayable(_message.Message):
        __slots__ = ("room_id", "component_id")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        COMPONENT_ID_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        component_id: str
        def __init__(self, room_id: _Optional[str] = ..., component_id: _Optional[str] = ...) -> None: ...
    class HlsUploaded(_message.Message):
        __slots__ = ("room_id",)
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        def __init__(self, room_id: _Optional[str] = ...) -> None: ...
    class HlsUploadCrashed(_message.Message):
        __slots__ = ("room_id",)
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        def __init__(self, room_id: _Optional[str] = ...) -> None: ...
    class PeerMetadataUpdated(_message.Message):
        __slots__ = ("room_id", "peer_id", "metadata", "peer_type")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        METADATA_FIELD_NUMBER: _ClassVar[int]
        PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        metadata: str
        peer_type: ServerMessage.PeerType
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., metadata: _Optional[str] = ..., peer_type: _Optional[_Union[ServerMessage.PeerType, str]] = ...) -> None: ...
    class TrackAdded(_message.Message):
        __slots__ = ("room_id", "peer_id", "component_id", "track")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        COMPONENT_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        component_id: str
        track: _shared_pb2.Track
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., component_id: _Optional[str] = ..., track: _Optional[_Union[_shared_pb2.Track, _Mapping]] = ...) -> None: ...
    class TrackRemoved(_message.Message):
        __slots__ = ("room_id", "peer_id", "component_id", "track")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        COMPONENT_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        component_id: str
        track: _shared_pb2.Track
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., component_id: _Optional[str] = ..., track: _Optional[_Union[_shared_pb2.Track, _Mapping]] = ...) -> None: ...
    class TrackMetadataUpdated(_message.Message):
        __slots__ = ("room_id", "peer_id", "component_id", "track")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        COMPONENT_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        component_id: str
        track: _shared_pb2.Track
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., component_id: _Optional[str] = ..., track: _Optional[_Union[_shared_pb2.Track, _Mapping]] = ...) -> None: ...
    class ChannelAdded(_message.Message):
        __slots__ = ("room_id", "peer_id", "component_id", "channel_id")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        COMPONENT_ID_FIELD_NUMBER: _ClassVar[int]
        CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        component_id: str
        channel_id: str
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., component_id: _Optional[str] = ..., channel_id: _Optional[str] = ...) -> None: ...
    class ChannelRemoved(_message.Message):
        __slots__ = ("room_id", "peer_id", "component_id", "channel_id")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        COMPONENT_ID_FIELD_NUMBER: _ClassVar[int]
        CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        component_id: str
        channel_id: str
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., component_id: _Optional[str] = ..., channel_id: _Optional[str] = ...) -> None: ...
    class TrackForwarding(_message.Message):
        __slots__ = ("room_id", "peer_id", "composition_url", "input_id", "audio_track", "video_track")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        COMPOSITION_URL_FIELD_NUMBER: _ClassVar[int]
        INPUT_ID_FIELD_NUMBER: _ClassVar[int]
        AUDIO_TRACK_FIELD_NUMBER: _ClassVar[int]
        VIDEO_TRACK_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        composition_url: str
        input_id: str
        audio_track: _shared_pb2.Track
        video_track: _shared_pb2.Track
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., composition_url: _Optional[str] = ..., input_id: _Optional[str] = ..., audio_track: _Optional[_Union[_shared_pb2.Track, _Mapping]] = ..., video_track: _Optional[_Union[_shared_pb2.Track, _Mapping]] = ...) -> None: ...
    class TrackForwardingRemoved(_message.Message):
        __slots__ = ("room_id", "peer_id", "composition_url", "input_id")
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        COMPOSITION_URL_FIELD_NUMBER: _ClassVar[int]
        INPUT_ID_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        composition_url: str
        input_id: str
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., composition_url: _Optional[str] = ..., input_id: _Optional[str] = ...) -> None: ...
    class VadNotification(_message.Message):
        __slots__ = ("room_id", "peer_id", "track_id", "status")
        class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
            __slots__ = ()
            STATUS_UNSPECIFIED: _ClassVar[ServerMessage.VadNotification.Status]
            STATUS_SILENCE: _ClassVar[ServerMessage.VadNotification.Status]
            STATUS_SPEECH: _ClassVar[ServerMessage.VadNotification.Status]
        STATUS_UNSPECIFIED: ServerMessage.VadNotification.Status
        STATUS_SILENCE: ServerMessage.VadNotification.Status
        STATUS_SPEECH: ServerMessage.VadNotification.Status
        ROOM_ID_FIELD_NUMBER: _ClassVar[int]
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        STATUS_FIELD_NUMBER: _ClassVar[int]
        room_id: str
        peer_id: str
        track_id: str
        status: ServerMessage.VadNotification.Status
        def __init__(self, room_id: _Optional[str] = ..., peer_id: _Optional[str] = ..., track_id: _Optional[str] = ..., status: _Optional[_Union[ServerMessage.VadNotification.Status, str]] = ...) -> None: ...
    class StreamConnected(_message.Message):
        __slots__ = ("stream_id",)
        STREAM_ID_FIELD_NUMBER: _ClassVar[int]
        stream_id: str
        def __init__(self, stream_id: _Optional[str] = ...) -> None: ...
    class StreamDisconnected(_message.Message):
        __slots__ = ("stream_id",)
        STREAM_ID_FIELD_NUMBER: _ClassVar[int]
        stream_id: str
        def __init__(self, stream_id: _Optional[str] = ...) -> None: ...
    class ViewerConnected(_message.Message):
        __slots__ = ("stream_id", "viewer_id")
        STREAM_ID_FIELD_NUMBER: _ClassVar[int]
        VIEWER_ID_FIELD_NUMBER: _ClassVar[int]
        stream_id: str
        viewer_id: str
        def __init__(self, stream_id: _Optional[str] = ..., viewer_id: _Optional[str] = ...) -> None: ...
    class ViewerDisconnected(_message.Message):
        __slots__ = ("stream_id", "viewer_id")
        STREAM_ID_FIELD_NUMBER: _ClassVar[int]
        VIEWER_ID_FIELD_NUMBER: _ClassVar[int]
        stream_id: str
        viewer_id: str
        def __init__(self, stream_id: _Optional[str] = ..., viewer_id: _Optional[str] = ...) -> None: ...
    class StreamerConnected(_message.Message):
        __slots__ = ("stream_id", "streamer_id")
        STREAM_ID_FIELD_NUMBER: _ClassVar[int]
        STREAMER_ID_FIELD_NUMBER: _ClassVar[int]
        stream_id: str
        streamer_id: str
        def __init__(self, stream_id: _Optional[str] = ..., streamer_id: _Optional[str] = ...) -> None: ...
    class StreamerDisconnected(_message.Message):
        __slots__ = ("stream_id", "streamer_id")
        STREAM_ID_FIELD_NUMBER: _ClassVar[int]
        STREAMER_ID_FIELD_NUMBER: _ClassVar[int]
        stream_id: str
        streamer_id: str
        def __init__(self, stream_id: _Optional[str] = ..., streamer_id: _Optional[str] = ...) -> None: ...
    class NotificationBatch(_message.Message):
        __slots__ = ("notifications",)
        NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
        notifications: _containers.RepeatedCompositeFieldContainer[ServerMessage]
        def __init__(self, notifications: _Optional[_Iterable[_Union[ServerMessage, _Mapping]]] = ...) -> None: ...
    class RecordingStatusChanged(_message.Message):
        __slots__ = ("recording_id", "status", "metadata")
        class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
            __slots__ = ()
            STATUS_UNSPECIFIED: _ClassVar[ServerMessage.RecordingStatusChanged.Status]
            STATUS_ACTIVE: _ClassVar[ServerMessage.RecordingStatusChanged.Status]
            STATUS_FINISHED: _ClassVar[ServerMessage.RecordingStatusChanged.Status]
            STATUS_AVAILABLE: _ClassVar[ServerMessage.RecordingStatusChanged.Status]
            STATUS_FAILED: _ClassVar[ServerMessage.RecordingStatusChanged.Status]
        STATUS_UNSPECIFIED: ServerMessage.RecordingStatusChanged.Status
        STATUS_ACTIVE: ServerMessage.RecordingStatusChanged.Status
        STATUS_FINISHED: ServerMessage.RecordingStatusChanged.Status
        STATUS_AVAILABLE: ServerMessage.RecordingStatusChanged.Status
        STATUS_FAILED: ServerMessage.RecordingStatusChanged.Status
        RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
        STATUS_FIELD_NUMBER: _ClassVar[int]
        METADATA_FIELD_NUMBER: _ClassVar[int]
        recording_id: str
        status: ServerMessage.RecordingStatusChanged.Status
        metadata: str
        def __init__(self, recording_id: _Optional[str] = ..., status: _Optional[_Union[ServerMessage.RecordingStatusChanged.Status, str]] = ..., metadata: _Optional[str] = ...) -> None: ...
    ROOM_CRASHED_FIELD_NUMBER: _ClassVar[int]
    PEER_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    PEER_DISCONNECTED_FIELD_NUMBER: _ClassVar[int]
    PEER_CRASHED_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_CRASHED_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ROOM_CREATED_FIELD_NUMBER: _ClassVar[int]
    ROOM_DELETED_FIELD_NUMBER: _ClassVar[int]
    HLS_PLAYABLE_FIELD_NUMBER: _ClassVar[int]
    HLS_UPLOADED_FIELD_NUMBER: _ClassVar[int]
    HLS_UPLOAD_CRASHED_FIELD_NUMBER: _ClassVar[int]
    PEER_METADATA_UPDATED_FIELD_NUMBER: _ClassVar[int]
    TRACK_ADDED_FIELD_NUMBER: _ClassVar[int]
    TRACK_REMOVED_FIELD_NUMBER: _ClassVar[int]
    TRACK_METADATA_UPDATED_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDED_FIELD_NUMBER: _ClassVar[int]
    PEER_DELETED_FIELD_NUMBER: _ClassVar[int]
    STREAM_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    STREAM_DISCONNECTED_FIELD_NUMBER: _ClassVar[int]
    VIEWER_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    VIEWER_DISCONNECTED_FIELD_NUMBER: _ClassVar[int]
    STREAMER_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    STREAMER_DISCONNECTED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ADDED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_REMOVED_FIELD_NUMBER: _ClassVar[int]
    TRACK_FORWARDING_FIELD_NUMBER: _ClassVar[int]
    TRACK_FORWARDING_REMOVED_FIELD_NUMBER: _ClassVar[int]
    VAD_NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_BATCH_FIELD_NUMBER: _ClassVar[int]
    RECORDING_STATUS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    room_crashed: ServerMessage.RoomCrashed
    peer_connected: ServerMessage.PeerConnected
    peer_disconnected: ServerMessage.PeerDisconnected
    peer_crashed: ServerMessage.PeerCrashed
    component_crashed: ServerMessage.ComponentCrashed
    authenticated: ServerMessage.Authenticated
    auth_request: ServerMessage.AuthRequest
    subscribe_request: ServerMessage.SubscribeRequest
    subscribe_response: ServerMessage.SubscribeResponse
    room_created: ServerMessage.RoomCreated
    room_deleted: ServerMessage.RoomDeleted
    hls_playable: ServerMessage.HlsPlayable
    hls_uploaded: ServerMessage.HlsUploaded
    hls_upload_crashed: ServerMessage.HlsUploadCrashed
    peer_metadata_updated: ServerMessage.PeerMetadataUpdated
    track_added: ServerMessage.TrackAdded
    track_removed: ServerMessage.TrackRemoved
    track_metadata_updated: ServerMessage.TrackMetadataUpdated
    peer_added: ServerMessage.PeerAdded
    peer_deleted: ServerMessage.PeerDeleted
    stream_connected: ServerMessage.StreamConnected
    stream_disconnected: ServerMessage.StreamDisconnected
    viewer_connected: ServerMessage.ViewerConnected
    viewer_disconnected: ServerMessage.ViewerDisconnected
    streamer_connected: ServerMessage.StreamerConnected
    streamer_disconnected: ServerMessage.StreamerDisconnected
    channel_added: ServerMessage.ChannelAdded
    channel_removed: ServerMessage.ChannelRemoved
    track_forwarding: ServerMessage.TrackForwarding
    track_forwarding_removed: ServerMessage.TrackForwardingRemoved
    vad_notification: ServerMessage.VadNotification
    notification_batch: ServerMessage.NotificationBatch
    recording_status_changed: ServerMessage.RecordingStatusChanged
    def __init__(self, room_crashed: _Optional[_Union[ServerMessage.RoomCrashed, _Mapping]] = ..., peer_connected: _Optional[_Union[ServerMessage.PeerConnected, _Mapping]] = ..., peer_disconnected: _Optional[_Union[ServerMessage.PeerDisconnected, _Mapping]] = ..., peer_crashed: _Optional[_Union[ServerMessage.PeerCrashed, _Mapping]] = ..., component_crashed: _Optional[_Union[ServerMessage.ComponentCrashed, _Mapping]] = ..., authenticated: _Optional[_Union[ServerMessage.Authenticated, _Mapping]] = ..., auth_request: _Optional[_Union[ServerMessage.AuthRequest, _Mapping]] = ..., subscribe_request: _Optional[_Union[ServerMessage.SubscribeRequest, _Mapping]] = ..., subscribe_response: _Optional[_Union[ServerMessage.SubscribeResponse, _Mapping]] = ..., room_created: _Optional[_Union[ServerMessage.RoomCreated, _Mapping]] = ..., room_deleted: _Optional[_Union[ServerMessage.RoomDeleted, _Mapping]] = ..., hls_playable: _Optional[_Union[ServerMessage.HlsPlayable, _Mapping]] = ..., hls_uploaded: _Optional[_Union[ServerMessage.HlsUploaded, _Mapping]] = ..., hls_upload_crashed: _Optional[_Union[ServerMessage.HlsUploadCrashed, _Mapping]] = ..., peer_metadata_updated: _Optional[_Union[ServerMessage.PeerMetadataUpdated, _Mapping]] = ..., track_added: _Optional[_Union[ServerMessage.TrackAdded, _Mapping]] = ..., track_removed: _Optional[_Union[ServerMessage.TrackRemoved, _Mapping]] = ..., track_metadata_updated: _Optional[_Union[ServerMessage.TrackMetadataUpdated, _Mapping]] = ..., peer_added: _Optional[_Union[ServerMessage.PeerAdded, _Mapping]] = ..., peer_deleted: _Optional[_Union[ServerMessage.PeerDeleted, _Mapping]] = ..., stream_connected: _Optional[_Union[ServerMessage.StreamConnected, _Mapping]] = ..., stream_disconnected: _Optional[_Union[ServerMessage.StreamDisconnected, _Mapping]] = ..., viewer_connected: _Optional[_Union[ServerMessage.ViewerConnected, _Mapping]] = ..., viewer_disconnected: _Optional[_Union[ServerMessage.ViewerDisconnected, _Mapping]] = ..., streamer_connected: _Optional[_Union[ServerMessage.StreamerConnected, _Mapping]] = ..., streamer_disconnected: _Optional[_Union[ServerMessage.StreamerDisconnected, _Mapping]] = ..., channel_added: _Optional[_Union[ServerMessage.ChannelAdded, _Mapping]] = ..., channel_removed: _Optional[_Union[ServerMessage.ChannelRemoved, _Mapping]] = ..., track_forwarding: _Optional[_Union[ServerMessage.TrackForwarding, _Mapping]] = ..., track_forwarding_removed: _Optional[_Union[ServerMessage.TrackForwardingRemoved, _Mapping]] = ..., vad_notification: _Optional[_Union[ServerMessage.VadNotification, _Mapping]] = ..., notification_batch: _Optional[_Union[ServerMessage.NotificationBatch, _Mapping]] = ..., recording_status_changed: _Optional[_Union[ServerMessage.RecordingStatusChanged, _Mapping]] = ...) -> None: ...
