"""MediaRouter: keeps every track's fan-out attached to exactly the peers that should hear it.

Publishers register a ``TrackFanout`` per track; connected receivers (agents) register
themselves. Whenever the room changes (a track is added, a peer subscribes, connects or
leaves) the router asks the room domain who should receive what and attaches or detaches
sinks accordingly. The domain decides; the router only applies the decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from shoal.domain import events as ev
from shoal.domain.manager import RoomManager
from shoal.media.fanout import TrackFanout

log = logging.getLogger(__name__)


class Receiver(Protocol):
    peer_id: str
    room_id: str
    sample_rate: int

    def deliver(self, frame: bytes) -> None: ...


@dataclass
class _Publication:
    room_id: str
    fanout: TrackFanout


class MediaRouter:
    def __init__(self, manager: RoomManager) -> None:
        self._manager = manager
        self._publications: dict[str, _Publication] = {}
        self._receivers: dict[str, Receiver] = {}

    def publish(self, room_id: str, track_id: str, fanout: TrackFanout) -> None:
        """Register the fan-out of a track (before the domain announces the track)."""
        self._publications[track_id] = _Publication(room_id, fanout)

    def unpublish(self, track_id: str) -> None:
        publication = self._publications.pop(track_id, None)
        if publication is not None:
            for receiver_id in publication.fanout.receiver_ids:
                publication.fanout.detach(receiver_id)

    def add_receiver(self, receiver: Receiver) -> None:
        self._receivers[receiver.peer_id] = receiver
        self._sync_receiver(receiver.room_id, receiver.peer_id)

    def remove_receiver(self, receiver: Receiver) -> None:
        if self._receivers.get(receiver.peer_id) is not receiver:
            return
        del self._receivers[receiver.peer_id]
        for publication in self._publications.values():
            publication.fanout.detach(receiver.peer_id)

    def on_event(self, event: ev.DomainEvent) -> None:
        match event:
            case ev.TrackAdded(room_id, _, track):
                self._sync_track(room_id, track.track_id)
            case ev.TrackRemoved(_, _, track):
                self.unpublish(track.track_id)
            case ev.SubscriptionsChanged(room_id, peer_id):
                self._sync_receiver(room_id, peer_id)
            case ev.PeerDisconnected(_, peer_id) | ev.PeerDeleted(_, peer_id):
                receiver = self._receivers.get(peer_id)
                if receiver is not None:
                    self.remove_receiver(receiver)

    def _sync_track(self, room_id: str, track_id: str) -> None:
        publication = self._publications.get(track_id)
        track = self._manager.room(room_id).find_track(track_id) if publication else None
        if publication is None or track is None:
            return
        wanted = {peer.id for peer in self._manager.receivers(room_id, track) if peer.id in self._receivers}
        for receiver_id in publication.fanout.receiver_ids - wanted:
            publication.fanout.detach(receiver_id)
        for receiver_id in wanted:
            receiver = self._receivers[receiver_id]
            publication.fanout.attach(receiver_id, receiver.sample_rate, receiver.deliver)

    def _sync_receiver(self, room_id: str, peer_id: str) -> None:
        receiver = self._receivers.get(peer_id)
        if receiver is None:
            return
        wanted = {track.id for track in self._manager.tracks_for(room_id, peer_id)}
        for track_id, publication in self._publications.items():
            if publication.room_id != room_id:
                continue
            if track_id in wanted:
                publication.fanout.attach(peer_id, receiver.sample_rate, receiver.deliver)
            else:
                publication.fanout.detach(peer_id)
