from fishjam._proto.media_events.peer import peer_pb2 as _peer_pb2
from fishjam._proto.media_events.server import server_pb2 as _server_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PeerMessage(_message.Message):
    __slots__ = ("authenticated", "auth_request", "media_event", "rtc_stats_report", "peer_media_event", "server_media_event")
    class RoomType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ROOM_TYPE_UNSPECIFIED: _ClassVar[PeerMessage.RoomType]
        ROOM_TYPE_CONFERENCE: _ClassVar[PeerMessage.RoomType]
        ROOM_TYPE_AUDIO_ONLY: _ClassVar[PeerMessage.RoomType]
        ROOM_TYPE_LIVESTREAM: _ClassVar[PeerMessage.RoomType]
    ROOM_TYPE_UNSPECIFIED: PeerMessage.RoomType
    ROOM_TYPE_CONFERENCE: PeerMessage.RoomType
    ROOM_TYPE_AUDIO_ONLY: PeerMessage.RoomType
    ROOM_TYPE_LIVESTREAM: PeerMessage.RoomType
    class SdkDeprecation(_message.Message):
        __slots__ = ("status", "message")
        class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
            __slots__ = ()
            STATUS_UNSPECIFIED: _ClassVar[PeerMessage.SdkDeprecation.Status]
            STATUS_UP_TO_DATE: _ClassVar[PeerMessage.SdkDeprecation.Status]
            STATUS_DEPRECATED: _ClassVar[PeerMessage.SdkDeprecation.Status]
            STATUS_UNSUPPORTED: _ClassVar[PeerMessage.SdkDeprecation.Status]
        STATUS_UNSPECIFIED: PeerMessage.SdkDeprecation.Status
        STATUS_UP_TO_DATE: PeerMessage.SdkDeprecation.Status
        STATUS_DEPRECATED: PeerMessage.SdkDeprecation.Status
        STATUS_UNSUPPORTED: PeerMessage.SdkDeprecation.Status
        STATUS_FIELD_NUMBER: _ClassVar[int]
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        status: PeerMessage.SdkDeprecation.Status
        message: str
        def __init__(self, status: _Optional[_Union[PeerMessage.SdkDeprecation.Status, str]] = ..., message: _Optional[str] = ...) -> None: ...
    class Authenticated(_message.Message):
        __slots__ = ("room_type", "sdk_deprecation")
        ROOM_TYPE_FIELD_NUMBER: _ClassVar[int]
        SDK_DEPRECATION_FIELD_NUMBER: _ClassVar[int]
        room_type: PeerMessage.RoomType
        sdk_deprecation: PeerMessage.SdkDeprecation
        def __init__(self, room_type: _Optional[_Union[PeerMessage.RoomType, str]] = ..., sdk_deprecation: _Optional[_Union[PeerMessage.SdkDeprecation, _Mapping]] = ...) -> None: ...
    class AuthRequest(_message.Message):
        __slots__ = ("token", "sdk_version")
        TOKEN_FIELD_NUMBER: _ClassVar[int]
        SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
        token: str
        sdk_version: str
        def __init__(self, token: _Optional[str] = ..., sdk_version: _Optional[str] = ...) -> None: ...
    class RTCStatsReport(_message.Message):
        __slots__ = ("data",)
        DATA_FIELD_NUMBER: _ClassVar[int]
        data: str
        def __init__(self, data: _Optional[str] = ...) -> None: ...
    class MediaEvent(_message.Message):
        __slots__ = ("data",)
        DATA_FIELD_NUMBER: _ClassVar[int]
        data: str
        def __init__(self, data: _Optional[str] = ...) -> None: ...
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQUEST_FIELD_NUMBER: _ClassVar[int]
    MEDIA_EVENT_FIELD_NUMBER: _ClassVar[int]
    RTC_STATS_REPORT_FIELD_NUMBER: _ClassVar[int]
    PEER_MEDIA_EVENT_FIELD_NUMBER: _ClassVar[int]
    SERVER_MEDIA_EVENT_FIELD_NUMBER: _ClassVar[int]
    authenticated: PeerMessage.Authenticated
    auth_request: PeerMessage.AuthRequest
    media_event: PeerMessage.MediaEvent
    rtc_stats_report: PeerMessage.RTCStatsReport
    peer_media_event: _peer_pb2.MediaEvent
    server_media_event: _server_pb2.MediaEvent
    def __init__(self, authenticated: _Optional[_Union[PeerMessage.Authenticated, _Mapping]] = ..., auth_request: _Optional[_Union[PeerMessage.AuthRequest, _Mapping]] = ..., media_event: _Optional[_Union[PeerMessage.MediaEvent, _Mapping]] = ..., rtc_stats_report: _Optional[_Union[PeerMessage.RTCStatsReport, _Mapping]] = ..., peer_media_event: _Optional[_Union[_peer_pb2.MediaEvent, _Mapping]] = ..., server_media_event: _Optional[_Union[_server_pb2.MediaEvent, _Mapping]] = ...) -> None: ...
