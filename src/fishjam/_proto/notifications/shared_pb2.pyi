from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrackType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRACK_TYPE_UNSPECIFIED: _ClassVar[TrackType]
    TRACK_TYPE_VIDEO: _ClassVar[TrackType]
    TRACK_TYPE_AUDIO: _ClassVar[TrackType]

class TrackEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRACK_ENCODING_UNSPECIFIED: _ClassVar[TrackEncoding]
    TRACK_ENCODING_PCM16: _ClassVar[TrackEncoding]
    TRACK_ENCODING_OPUS: _ClassVar[TrackEncoding]
TRACK_TYPE_UNSPECIFIED: TrackType
TRACK_TYPE_VIDEO: TrackType
TRACK_TYPE_AUDIO: TrackType
TRACK_ENCODING_UNSPECIFIED: TrackEncoding
TRACK_ENCODING_PCM16: TrackEncoding
TRACK_ENCODING_OPUS: TrackEncoding

class Track(_message.Message):
    __slots__ = ("id", "type", "metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: TrackType
    metadata: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[_Union[TrackType, str]] = ..., metadata: _Optional[str] = ...) -> None: ...
