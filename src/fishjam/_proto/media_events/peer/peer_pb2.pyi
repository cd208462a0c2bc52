from fishjam._proto.media_events import shared_pb2 as _shared_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MediaEvent(_message.Message):
    __slots__ = ("connect", "disconnect", "update_endpoint_metadata", "update_track_metadata", "renegotiate_tracks", "candidate", "sdp_offer", "track_bitrates", "enable_track_variant", "disable_track_variant", "set_target_track_variant", "unmute_track")
    class VariantBitrate(_message.Message):
        __slots__ = ("variant", "bitrate")
        VARIANT_FIELD_NUMBER: _ClassVar[int]
        BITRATE_FIELD_NUMBER: _ClassVar[int]
        variant: _shared_pb2.Variant
        bitrate: int
        def __init__(self, variant: _Optional[_Union[_shared_pb2.Variant, str]] = ..., bitrate: _Optional[int] = ...) -> None: ...
    class Connect(_message.Message):
        __slots__ = ("metadata_json",)
        METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
        metadata_json: str
        def __init__(self, metadata_json: _Optional[str] = ...) -> None: ...
    class Disconnect(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class UpdateEndpointMetadata(_message.Message):
        __slots__ = ("metadata_json",)
        METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
        metadata_json: str
        def __init__(self, metadata_json: _Optional[str] = ...) -> None: ...
    class UpdateTrackMetadata(_message.Message):
        __slots__ = ("track_id", "metadata_json")
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        metadata_json: str
        def __init__(self, track_id: _Optional[str] = ..., metadata_json: _Optional[str] = ...) -> None: ...
    class RenegotiateTracks(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class SdpOffer(_message.Message):
        __slots__ = ("sdp", "track_id_to_metadata_json", "track_id_to_bitrates", "mid_to_track_id")
        class TrackIdToMetadataJsonEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: str
            def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
        class TrackIdToBitratesEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: MediaEvent.TrackBitrates
            def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[MediaEvent.TrackBitrates, _Mapping]] = ...) -> None: ...
        class MidToTrackIdEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: str
            def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
        SDP_FIELD_NUMBER: _ClassVar[int]
        TRACK_ID_TO_METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
        TRACK_ID_TO_BITRATES_FIELD_NUMBER: _ClassVar[int]
        MID_TO_TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        sdp: str
        track_id_to_metadata_json: _containers.ScalarMap[str, str]
        track_id_to_bitrates: _containers.MessageMap[str, MediaEvent.TrackBitrates]
        mid_to_track_id: _containers.ScalarMap[str, str]
        def __init__(self, sdp: _Optional[str] = ..., track_id_to_metadata_json: _Optional[_Mapping[str, str]] = ..., track_id_to_bitrates: _Optional[_Mapping[str, MediaEvent.TrackBitrates]] = ..., mid_to_track_id: _Optional[_Mapping[str, str]] = ...) -> None: ...
    class TrackBitrates(_message.Message):
        __slots__ = ("track_id", "variant_bitrates")
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        VARIANT_BITRATES_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        variant_bitrates: _containers.RepeatedCompositeFieldContainer[MediaEvent.VariantBitrate]
        def __init__(self, track_id: _Optional[str] = ..., variant_bitrates: _Optional[_Iterable[_Union[MediaEvent.VariantBitrate, _Mapping]]] = ...) -> None: ...
    class DisableTrackVariant(_message.Message):
        __slots__ = ("track_id", "variant")
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        VARIANT_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        variant: _shared_pb2.Variant
        def __init__(self, track_id: _Optional[str] = ..., variant: _Optional[_Union[_shared_pb2.Variant, str]] = ...) -> None: ...
    class EnableTrackVariant(_message.Message):
        __slots__ = ("track_id", "variant")
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        VARIANT_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        variant: _shared_pb2.Variant
        def __init__(self, track_id: _Optional[str] = ..., variant: _Optional[_Union[_shared_pb2.Variant, str]] = ...) -> None: ...
    class SetTargetTrackVariant(_message.Message):
        __slots__ = ("track_id", "variant")
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        VARIANT_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        variant: _shared_pb2.Variant
        def __init__(self, track_id: _Optional[str] = ..., variant: _Optional[_Union[_shared_pb2.Variant, str]] = ...) -> None: ...
    class UnmuteTrack(_message.Message):
        __slots__ = ("track_id",)
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        def __init__(self, track_id: _Optional[str] = ...) -> None: ...
    CONNECT_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_ENDPOINT_METADATA_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TRACK_METADATA_FIELD_NUMBER: _ClassVar[int]
    RENEGOTIATE_TRACKS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    SDP_OFFER_FIELD_NUMBER: _ClassVar[int]
    TRACK_BITRATES_FIELD_NUMBER: _ClassVar[int]
    ENABLE_TRACK_VARIANT_FIELD_NUMBER: _ClassVar[int]
    DISABLE_TRACK_VARIANT_FIELD_NUMBER: _ClassVar[int]
    SET_TARGET_TRACK_VARIANT_FIELD_NUMBER: _ClassVar[int]
    UNMUTE_TRACK_FIELD_NUMBER: _ClassVar[int]
    connect: MediaEvent.Connect
    disconnect: MediaEvent.Disconnect
    update_endpoint_metadata: MediaEvent.UpdateEndpointMetadata
    update_track_metadata: MediaEvent.UpdateTrackMetadata
    renegotiate_tracks: MediaEvent.RenegotiateTracks
    candidate: _shared_pb2.Candidate
    sdp_offer: MediaEvent.SdpOffer
    track_bitrates: MediaEvent.TrackBitrates
    enable_track_variant: MediaEvent.EnableTrackVariant
    disable_track_variant: MediaEvent.DisableTrackVariant
    set_target_track_variant: MediaEvent.SetTargetTrackVariant
    unmute_track: MediaEvent.UnmuteTrack
    def __init__(self, connect: _Optional[_Union[MediaEvent.Connect, _Mapping]] = ..., disconnect: _Optional[_Union[MediaEvent.Disconnect, _Mapping]] = ..., update_endpoint_metadata: _Optional[_Union[MediaEvent.UpdateEndpointMetadata, _Mapping]] = ..., update_track_metadata: _Optional[_Union[MediaEvent.UpdateTrackMetadata, _Mapping]] = ..., renegotiate_tracks: _Optional[_Union[MediaEvent.RenegotiateTracks, _Mapping]] = ..., candidate: _Optional[_Union[_shared_pb2.Candidate, _Mapping]] = ..., sdp_offer: _Optional[_Union[MediaEvent.SdpOffer, _Mapping]] = ..., track_bitrates: _Optional[_Union[MediaEvent.TrackBitrates, _Mapping]] = ..., enable_track_variant: _Optional[_Union[MediaEvent.EnableTrackVariant, _Mapping]] = ..., disable_track_variant: _Optional[_Union[MediaEvent.DisableTrackVariant, _Mapping]] = ..., set_target_track_variant: _Optional[_Union[MediaEvent.SetTargetTrackVariant, _Mapping]] = ..., unmute_track: _Optional[_Union[MediaEvent.UnmuteTrack, _Mapping]] = ...) -> None: ...
