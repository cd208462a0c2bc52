from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Variant(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VARIANT_UNSPECIFIED: _ClassVar[Variant]
    VARIANT_LOW: _ClassVar[Variant]
    VARIANT_MEDIUM: _ClassVar[Variant]
    VARIANT_HIGH: _ClassVar[Variant]
VARIANT_UNSPECIFIED: Variant
VARIANT_LOW: Variant
VARIANT_MEDIUM: Variant
VARIANT_HIGH: Variant

class Candidate(_message.Message):
    __slots__ = ("candidate", "sdp_m_line_index", "sdp_mid", "username_fragment")
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    SDP_M_LINE_INDEX_FIELD_NUMBER: _ClassVar[int]
    SDP_MID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FRAGMENT_FIELD_NUMBER: _ClassVar[int]
    candidate: str
    sdp_m_line_index: int
    sdp_mid: str
    username_fragment: str
    def __init__(self, candidate: _Optional[str] = ..., sdp_m_line_index: _Optional[int] = ..., sdp_mid: _Optional[str] = ..., username_fragment: _Optional[str] = ...) -> None: ...

class ChannelMessageBinaryPayload(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ChannelMessage(_message.Message):
    __slots__ = ("source", "destinations", "binary")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    BINARY_FIELD_NUMBER: _ClassVar[int]
    source: str
    destinations: _containers.RepeatedScalarFieldContainer[str]
    binary: ChannelMessageBinaryPayload
    def __init__(self, source: _Optional[str] = ..., destinations: _Optional[_Iterable[str]] = ..., binary: _Optional[_Union[ChannelMessageBinaryPayload, _Mapping]] = ...) -> None: ...
