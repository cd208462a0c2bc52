"""Domain events → ``fishjam.ServerMessage`` notifications (notifier socket and webhooks)."""

from __future__ import annotations

from shoal.domain import events as ev
from shoal.domain.model import PeerType, TrackKind
from shoal.protocol.pb import server_pb, shared_pb

SM = server_pb.ServerMessage

_PEER_TYPES = {
    PeerType.WEBRTC: SM.PEER_TYPE_WEBRTC,
    PeerType.AGENT: SM.PEER_TYPE_AGENT,
    PeerType.VAPI: SM.PEER_TYPE_VAPI,
}


def _track(info: ev.TrackInfo) -> shared_pb.Track:
    kind = shared_pb.TRACK_TYPE_AUDIO if info.kind is TrackKind.AUDIO else shared_pb.TRACK_TYPE_VIDEO
    return shared_pb.Track(id=info.track_id, type=kind, metadata=info.metadata_json)


def to_server_message(event: ev.DomainEvent) -> server_pb.ServerMessage | None:
    """The notification for ``event``, or None for events that are internal only."""
    match event:
        case ev.RoomCreated(room_id):
            return SM(room_created=SM.RoomCreated(room_id=room_id))
        case ev.RoomDeleted(room_id):
            return SM(room_deleted=SM.RoomDeleted(room_id=room_id))
        case ev.PeerAdded(room_id, peer_id, peer_type):
            return SM(peer_added=SM.PeerAdded(room_id=room_id, peer_id=peer_id, peer_type=_PEER_TYPES[peer_type]))
        case ev.PeerDeleted(room_id, peer_id, peer_type):
            return SM(
                peer_deleted=SM.PeerDeleted(room_id=room_id, peer_id=peer_id, peer_type=_PEER_TYPES[peer_type])
            )
        case ev.PeerConnected(room_id, peer_id, peer_type):
            return SM(
                peer_connected=SM.PeerConnected(room_id=room_id, peer_id=peer_id, peer_type=_PEER_TYPES[peer_type])
            )
        case ev.PeerDisconnected(room_id, peer_id, peer_type):
            body = SM.PeerDisconnected(room_id=room_id, peer_id=peer_id, peer_type=_PEER_TYPES[peer_type])
            return SM(peer_disconnected=body)
        case ev.PeerCrashed(room_id, peer_id, peer_type, reason):
            crashed = SM.PeerCrashed(room_id=room_id, peer_id=peer_id, reason=reason, peer_type=_PEER_TYPES[peer_type])
            return SM(peer_crashed=crashed)
        case ev.PeerMetadataUpdated(room_id, peer_id, peer_type, metadata_json):
            updated = SM.PeerMetadataUpdated(
                room_id=room_id, peer_id=peer_id, metadata=metadata_json, peer_type=_PEER_TYPES[peer_type]
            )
            return SM(peer_metadata_updated=updated)
        case ev.TrackAdded(room_id, peer_id, track):
            return SM(track_added=SM.TrackAdded(room_id=room_id, peer_id=peer_id, track=_track(track)))
        case ev.TrackRemoved(room_id, peer_id, track):
            return SM(track_removed=SM.TrackRemoved(room_id=room_id, peer_id=peer_id, track=_track(track)))
        case ev.TrackMetadataUpdated(room_id, peer_id, track):
            body_t = SM.TrackMetadataUpdated(room_id=room_id, peer_id=peer_id, track=_track(track))
            return SM(track_metadata_updated=body_t)
    return None


def room_crashed(room_id: str) -> bytes:
    """``RoomCrashed``: sent for the rooms of a cluster node that died (``shoal.cluster``)."""
    return bytes(SM(room_crashed=SM.RoomCrashed(room_id=room_id)).SerializeToString())


def batch(messages: list[bytes]) -> bytes:
    """One ``NotificationBatch`` holding already-encoded notifications, in order."""
    parsed = []
    for data in messages:
        message = SM()
        message.ParseFromString(data)
        parsed.append(message)
    return bytes(SM(notification_batch=SM.NotificationBatch(notifications=parsed)).SerializeToString())
