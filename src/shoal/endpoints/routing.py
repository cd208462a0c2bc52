"""MediaRouter: keeps every track linked to exactly the receivers that should get it.

Publishers register a ``TrackFanout`` per track; connected receivers (agents, WebRTC
participants) register themselves. Whenever the room changes (a track is added, a peer
subscribes, connects or leaves) the router asks the room domain who should receive what
and subscribes or unsubscribes receivers accordingly. The domain decides; the router only
applies the decision; each receiver decides how to consume a track (an agent attaches a
PCM sink at once, a WebRTC participant first negotiates an m-line).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from shoal.domain import events as ev
from shoal.domain.manager import RoomManager
from shoal.domain.model import Track
from shoal.media.fanout import TrackFanout

log = logging.getLogger(__name__)


class Receiver(Protocol):
    @property
    def peer_id(self) -> str: ...

    @property
    def room_id(self) -> str: ...

    def subscribe(self, track: Track, fanout: TrackFanout) -> None:
        """Start receiving ``track`` (called once per track until unsubscribed)."""

    def unsubscribe(self, track_id: str, fanout: TrackFanout) -> None:
        """Stop receiving a track (it was removed): detach whatever sink was attached to ``fanout``."""


@dataclass
class _Publication:
    room_id: str
    fanout: TrackFanout
    subscribers: set[str] = field(default_factory=set)


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
        if publication is None:
            return
        for receiver_id in publication.subscribers:
            receiver = self._receivers.get(receiver_id)
            if receiver is not None:
                receiver.unsubscribe(track_id, publication.fanout)

    def fanout(self, room_id: str, track_id: str) -> TrackFanout | None:
        """The fan-out of a track published in ``room_id`` (None if unknown or elsewhere)."""
        publication = self._publications.get(track_id)
        return publication.fanout if publication is not None and publication.room_id == room_id else None

    def add_receiver(self, receiver: Receiver) -> None:
        self._receivers[receiver.peer_id] = receiver
        self._sync_receiver(receiver.room_id, receiver.peer_id)

    def remove_receiver(self, receiver: Receiver) -> None:
        """Forget a receiver that is going away (no unsubscribe calls: it is closing)."""
        if self._receivers.get(receiver.peer_id) is not receiver:
            return
        del self._receivers[receiver.peer_id]
        for publication in self._publications.values():
            publication.subscribers.discard(receiver.peer_id)
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
        for receiver_id in wanted - publication.subscribers:
            self._link(publication, track, receiver_id)

    def _sync_receiver(self, room_id: str, peer_id: str) -> None:
        if peer_id not in self._receivers:
            return
        for track in self._manager.tracks_for(room_id, peer_id):
            publication = self._publications.get(track.id)
            if publication is not None and peer_id not in publication.subscribers:
                self._link(publication, track, peer_id)

    def _link(self, publication: _Publication, track: Track, receiver_id: str) -> None:
        publication.subscribers.add(receiver_id)
        self._receivers[receiver_id].subscribe(track, publication.fanout)
