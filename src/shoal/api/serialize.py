"""Domain objects → the JSON shapes of the REST API."""

from __future__ import annotations

from typing import Any

from shoal.domain.model import Peer, Room, RoomConfig


def config_json(config: RoomConfig) -> dict[str, Any]:
    return {
        "maxPeers": config.max_peers,
        "videoCodec": config.video_codec.value,
        "webhookUrl": config.webhook_url,
        "roomType": config.room_type.value,
        "public": config.public,
        "batchWebhookNotifications": config.batch_webhook_notifications,
    }


def peer_json(peer: Peer) -> dict[str, Any]:
    return {
        "id": peer.id,
        "type": peer.type.value,
        "status": peer.status.value,
        "tracks": [
            {"id": track.id, "type": track.kind.value, "metadata": track.metadata} for track in peer.tracks.values()
        ],
        "metadata": peer.metadata,
        "subscribeMode": peer.subscribe_mode.value,
        "subscriptions": {"peers": list(peer.subscribed_peers), "tracks": list(peer.subscribed_tracks)},
    }


def room_json(room: Room) -> dict[str, Any]:
    return {"id": room.id, "config": config_json(room.config), "peers": [peer_json(p) for p in room.peers.values()]}
