from fishjam._proto.media_events import shared_pb2 as _shared_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MediaEvent(_message.Message):
    __slots__ = ("endpoint_updated", "track_updated", "tracks_added", "tracks_removed", "endpoint_added", "endpoint_removed", "connected", "error", "offer_data", "candidate", "sdp_answer", "vad_notification", "track_variant_switched", "track_variant_disabled", "track_variant_enabled")
    class Track(_message.Message):
        __slots__ = ("metadata_json", "simulcast_config")
        class SimulcastConfig(_message.Message):
            __slots__ = ("enabled", "enabled_variants", "disabled_variants")
            ENABLED_FIELD_NUMBER: _ClassVar[int]
            ENABLED_VARIANTS_FIELD_NUMBER: _ClassVar[int]
            DISABLED_VARIANTS_FIELD_NUMBER: _ClassVar[int]
            enabled: bool
            enabled_variants: _containers.RepeatedScalarFieldContainer[_shared_pb2.Variant]
            disabled_variants: _containers.RepeatedScalarFieldContainer[_shared_pb2.Variant]
            def __init__(self, enabled: _Optional[bool] = ..., enabled_variants: _Optional[_Iterable[_Union[_shared_pb2.Variant, str]]] = ..., disabled_variants: _Optional[_Iterable[_Union[_shared_pb2.Variant, str]]] = ...) -> None: ...
        METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
        SIMULCAST_CONFIG_FIELD_NUMBER: _ClassVar[int]
        metadata_json: str
        simulcast_config: MediaEvent.Track.SimulcastConfig
        def __init__(self, metadata_json: _Optional[str] = ..., simulcast_config: _Optional[_Union[MediaEvent.Track.SimulcastConfig, _Mapping]] = ...) -> None: ...
    class Endpoint(_message.Message):
        __slots__ = ("endpoint_type", "metadata_json", "track_id_to_track")
        class TrackIdToTrackEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: MediaEvent.Track
            def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[MediaEvent.Track, _Mapping]] = ...) -> None: ...
        ENDPOINT_TYPE_FIELD_NUMBER: _ClassVar[int]
        METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
        TRACK_ID_TO_TRACK_FIELD_NUMBER: _ClassVar[int]
        endpoint_type: str
        metadata_json: str
        track_id_to_track: _containers.MessageMap[str, MediaEvent.Track]
        def __init__(self, endpoint_type: _Optional[str] = ..., metadata_json: _Optional[str] = ..., track_id_to_track: _Optional[_Mapping[str, MediaEvent.Track]] = ...) -> None: ...
    class IceServer(_message.Message):
        __slots__ = ("credential", "urls", "username")
        CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
        URLS_FIELD_NUMBER: _ClassVar[int]
        USERNAME_FIELD_NUMBER: _ClassVar[int]
        credential: str
        urls: _containers.RepeatedScalarFieldContainer[str]
        username: str
        def __init__(self, credential: _Optional[str] = ..., urls: _Optional[_Iterable[str]] = ..., username: _Optional[str] = ...) -> None: ...
    class EndpointUpdated(_message.Message):
        __slots__ = ("endpoint_id", "metadata_json")
        ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
        METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
        endpoint_id: str
        metadata_json: str
        def __init__(self, endpoint_id: _Optional[str] = ..., metadata_json: _Optional[str] = ...) -> None: ...
    class TrackUpdated(_message.Message):
        __slots__ = ("endpoint_id", "track_id", "metadata_json")
        ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
        endpoint_id: str
        track_id: str
        metadata_json: str
        def __init__(self, endpoint_id: _Optional[str] = ..., track_id: _Optional[str] = ..., metadata_json: _Optional[str] = ...) -> None: ...
    class TracksAdded(_message.Message):
        __slots__ = ("endpoint_id", "track_id_to_track")
        class TrackIdToTrackEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: MediaEvent.Track
            def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[MediaEvent.Track, _Mapping]] = ...) -> None: ...
        ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_ID_TO_TRACK_FIELD_NUMBER: _ClassVar[int]
        endpoint_id: str
        track_id_to_track: _containers.MessageMap[str, MediaEvent.Track]
        def __init__(self, endpoint_id: _Optional[str] = ..., track_id_to_track: _Optional[_Mapping[str, MediaEvent.Track]] = ...) -> None: ...
    class TracksRemoved(_message.Message):
        __slots__ = ("endpoint_id", "track_ids")
        ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_IDS_FIELD_NUMBER: _ClassVar[int]
        endpoint_id: str
        track_ids: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, endpoint_id: _Optional[str] = ..., track_ids: _Optional[_Iterable[str]] = ...) -> None: ...
    class EndpointAdded(_message.Message):
        __slots__ = ("endpoint_id", "metadata_json")
        ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
        METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
        endpoint_id: str
        metadata_json: str
        def __init__(self, endpoint_id: _Optional[str] = ..., metadata_json: _Optional[str] = ...) -> None: ...
    class Connected(_message.Message):
        __slots__ = ("endpoint_id", "endpoint_id_to_endpoint", "ice_servers")
        class EndpointIdToEndpointEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: MediaEvent.Endpoint
            def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[MediaEvent.Endpoint, _Mapping]] = ...) -> None: ...
        ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
        ENDPOINT_ID_TO_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
        ICE_SERVERS_FIELD_NUMBER: _ClassVar[int]
        endpoint_id: str
        endpoint_id_to_endpoint: _containers.MessageMap[str, MediaEvent.Endpoint]
        ice_servers: _containers.RepeatedCompositeFieldContainer[MediaEvent.IceServer]
        def __init__(self, endpoint_id: _Optional[str] = ..., endpoint_id_to_endpoint: _Optional[_Mapping[str, MediaEvent.Endpoint]] = ..., ice_servers: _Optional[_Iterable[_Union[MediaEvent.IceServer, _Mapping]]] = ...) -> None: ...
    class EndpointRemoved(_message.Message):
        __slots__ = ("endpoint_id",)
        ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
        endpoint_id: str
        def __init__(self, endpoint_id: _Optional[str] = ...) -> None: ...
    class Error(_message.Message):
        __slots__ = ("message",)
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        message: str
        def __init__(self, message: _Optional[str] = ...) -> None: ...
    class OfferData(_message.Message):
        __slots__ = ("tracks_types",)
        class TrackTypes(_message.Message):
            __slots__ = ("audio", "video")
            AUDIO_FIELD_NUMBER: _ClassVar[int]
            VIDEO_FIELD_NUMBER: _ClassVar[int]
            audio: int
            video: int
            def __init__(self, audio: _Optional[int] = ..., video: _Optional[int] = ...) -> None: ...
        TRACKS_TYPES_FIELD_NUMBER: _ClassVar[int]
        tracks_types: MediaEvent.OfferData.TrackTypes
        def __init__(self, tracks_types: _Optional[_Union[MediaEvent.OfferData.TrackTypes, _Mapping]] = ...) -> None: ...
    class SdpAnswer(_message.Message):
        __slots__ = ("sdp", "mid_to_track_id")
        class MidToTrackIdEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: str
            def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
        SDP_FIELD_NUMBER: _ClassVar[int]
        MID_TO_TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        sdp: str
        mid_to_track_id: _containers.ScalarMap[str, str]
        def __init__(self, sdp: _Optional[str] = ..., mid_to_track_id: _Optional[_Mapping[str, str]] = ...) -> None: ...
    class VadNotification(_message.Message):
        __slots__ = ("track_id", "status")
        class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
            __slots__ = ()
            STATUS_UNSPECIFIED: _ClassVar[MediaEvent.VadNotification.Status]
            STATUS_SILENCE: _ClassVar[MediaEvent.VadNotification.Status]
            STATUS_SPEECH: _ClassVar[MediaEvent.VadNotification.Status]
        STATUS_UNSPECIFIED: MediaEvent.VadNotification.Status
        STATUS_SILENCE: MediaEvent.VadNotification.Status
        STATUS_SPEECH: MediaEvent.VadNotification.Status
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        STATUS_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        status: MediaEvent.VadNotification.Status
        def __init__(self, track_id: _Optional[str] = ..., status: _Optional[_Union[MediaEvent.VadNotification.Status, str]] = ...) -> None: ...
    class TrackVariantSwitched(_message.Message):
        __slots__ = ("endpoint_id", "track_id", "variant")
        ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        VARIANT_FIELD_NUMBER: _ClassVar[int]
        endpoint_id: str
        track_id: str
        variant: _shared_pb2.Variant
        def __init__(self, endpoint_id: _Optional[str] = ..., track_id: _Optional[str] = ..., variant: _Optional[_Union[_shared_pb2.Variant, str]] = ...) -> None: ...
    class TrackVariantDisabled(_message.Message):
        __slots__ = ("endpoint_id", "track_id", "variant")
        ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        VARIANT_FIELD_NUMBER: _ClassVar[int]
        endpoint_id: str
        track_id: str
        variant: _shared_pb2.Variant
        def __init__(self, endpoint_id: _Optional[str] = ..., track_id: _Optional[str] = ..., variant: _Optional[_Union[_shared_pb2.Variant, str]] = ...) -> None: ...
    class TrackVariantEnabled(_message.Message):
        __slots__ = ("endpoint_id", "track_id", "variant")
        ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        VARIANT_FIELD_NUMBER: _ClassVar[int]
        endpoint_id: str
        track_id: str
        variant: _shared_pb2.Variant
        def __init__(self, endpoint_id: _Optional[str] = ..., track_id: _Optional[str] = ..., variant: _Optional[_Union[_shared_pb2.Variant, str]] = ...) -> None: ...
    ENDPOINT_UPDATED_FIELD_NUMBER: _ClassVar[int]
    TRACK_UPDATED_FIELD_NUMBER: _ClassVar[int]
    TRACKS_ADDED_FIELD_NUMBER: _ClassVar[int]
    TRACKS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ADDED_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_REMOVED_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OFFER_DATA_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    SDP_ANSWER_FIELD_NUMBER: _ClassVar[int]
    VAD_NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    TRACK_VARIANT_SWITCHED_FIELD_NUMBER: _ClassVar[int]
    TRACK_VARIANT_DISABLED_FIELD_NUMBER: _ClassVar[int]
    TRACK_VARIANT_ENABLED_FIELD_NUMBER: _ClassVar[int]
    endpoint_updated: MediaEvent.EndpointUpdated
    track_updated: MediaEvent.TrackUpdated
    tracks_added: MediaEvent.TracksAdded
    tracks_removed: MediaEvent.TracksRemoved
    endpoint_added: MediaEvent.EndpointAdded
    endpoint_removed: MediaEvent.EndpointRemoved
    connected: MediaEvent.Connected
    error: MediaEvent.Error
    offer_data: MediaEvent.OfferData
    candidate: _shared_pb2.Candidate
    sdp_answer: MediaEvent.SdpAnswer
    vad_notification: MediaEvent.VadNotification
    track_variant_switched: MediaEvent.TrackVariantSwitched
    track_variant_disabled: MediaEvent.TrackVariantDisabled
    track_variant_enabled: MediaEvent.TrackVariantEnabled
    def __init__(self, endpoint_updated: _Optional[_Union[MediaEvent.EndpointUpdated, _Mapping]] = ..., track_updated: _Optional[_Union[MediaEvent.TrackUpdated, _Mapping]] = ..., tracks_added: _Optional[_Union[MediaEvent.TracksAdded, _Mapping]] = ..., tracks_removed: _Optional[_Union[MediaEvent.TracksRemoved, _Mapping]] = ..., endpoint_added: _Optional[_Union[MediaEvent.EndpointAdded, _Mapping]] = ..., endpoint_removed: _Optional[_Union[MediaEvent.EndpointRemoved, _Mapping]] = ..., connected: _Optional[_Union[MediaEvent.Connected, _Mapping]] = ..., error: _Optional[_Union[MediaEvent.Error, _Mapping]] = ..., offer_data: _Optional[_Union[MediaEvent.OfferData, _Mapping]] = ..., candidate: _Optional[_Union[_shared_pb2.Candidate, _Mapping]] = ..., sdp_answer: _Optional[_Union[MediaEvent.SdpAnswer, _Mapping]] = ..., vad_notification: _Optional[_Union[MediaEvent.VadNotification, _Mapping]] = ..., track_variant_switched: _Optional[_Union[MediaEvent.TrackVariantSwitched, _Mapping]] = ..., track_variant_disabled: _Optional[_Union[MediaEvent.TrackVariantDisabled, _Mapping]] = ..., track_variant_enabled: _Optional[_Union[MediaEvent.TrackVariantEnabled, _Mapping]] = ...) -> None: ...
