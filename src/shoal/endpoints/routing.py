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
from shoal.tally import Tally

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

    def voice_activity(self, owner_id: str, track_id: str, speech: bool) -> None:
        """A track this receiver gets changed between speech and silence (``shoal.media.vad``)."""


TrackKey = tuple[str, str]
"""(room id, track id): track ids are chosen by clients and unique only within a room."""


@dataclass
class _Publication:
    owner_id: str
    fanout: TrackFanout
    subscribers: set[str] = field(default_factory=set)


class MediaRouter:
    """Publications are keyed by room and track id, and remember their publisher.

    A client can name its track with any id, including one that is live in another room or
    already taken in its own: the key keeps other rooms out of reach, ``publish`` refuses a
    taken key instead of replacing it, and ``unpublish`` removes only its caller's own
    publication, so a refused request never undoes what it did not do.
    """

    def __init__(self, manager: RoomManager, tally: Tally | None = None) -> None:
        self._manager = manager
        self.tally = tally if tally is not None else Tally()
        """The server's media counters; the endpoints the router links bump them (``GET /metrics``)."""
        self._publications: dict[TrackKey, _Publication] = {}
        self._receivers: dict[str, Receiver] = {}

    def publish(self, room_id: str, owner_id: str, track_id: str, fanout: TrackFanout) -> bool:
        """Register the fan-out of a track (before the domain announces the track).

        False, and nothing changes, if the room already has a publication with this id.
        """
        key = (room_id, track_id)
        if key in self._publications:
            return False
        self._publications[key] = _Publication(owner_id, fanout)
        return True

    def unpublish(self, room_id: str, owner_id: str, track_id: str) -> None:
        """Remove ``owner_id``'s publication of the track (someone else's stays)."""
        key = (room_id, track_id)
        publication = self._publications.get(key)
        if publication is None or publication.owner_id != owner_id:
            return
        del self._publications[key]
        for receiver_id in publication.subscribers:
            receiver = self._receivers.get(receiver_id)
            if receiver is not None:
                receiver.unsubscribe(track_id, publication.fanout)

    def fanout(self, room_id: str, track_id: str) -> TrackFanout | None:
        """The fan-out of a track published in ``room_id`` (None if there is none there)."""
        publication = self._publications.get((room_id, track_id))
        return publication.fanout if publication is not None else None

    def receiver(self, peer_id: str) -> Receiver | None:
        return self._receivers.get(peer_id)

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

    def voice_activity(self, room_id: str, track_id: str, speech: bool) -> None:
        """Tell every receiver of the track that its voice activity changed."""
        publication = self._publications.get((room_id, track_id))
        if publication is None:
            return
        log.debug("room %s track %s: %s", room_id, track_id, "speech" if speech else "silence")
        for receiver_id in publication.subscribers:
            receiver = self._receivers.get(receiver_id)
            if receiver is not None:
                receiver.voice_activity(publication.owner_id, track_id, speech)

    def on_event(self, event: ev.DomainEvent) -> None:
        match event:
            case ev.TrackAdded(room_id, _, track):
                self._sync_track(room_id, track.track_id)
            case ev.TrackRemoved(room_id, peer_id, track):
                self.unpublish(room_id, peer_id, track.track_id)
            case ev.SubscriptionsChanged(room_id, peer_id):
                self._sync_receiver(room_id, peer_id)
            case ev.PeerDisconnected(_, peer_id) | ev.PeerDeleted(_, peer_id):
                receiver = self._receivers.get(peer_id)
                if receiver is not None:
                    self.remove_receiver(receiver)

    def _sync_track(self, room_id: str, track_id: str) -> None:
        publication = self._publications.get((room_id, track_id))
        track = self._manager.room(room_id).find_track(track_id) if publication else None
        if publication is None or track is None or track.owner_id != publication.owner_id:
            return
        wanted = {peer.id for peer in self._manager.receivers(room_id, track) if peer.id in self._receivers}
        for receiver_id in wanted - publication.subscribers:
            self._link(publication, track, receiver_id)

    def _sync_receiver(self, room_id: str, peer_id: str) -> None:
        if peer_id not in self._receivers:
            return
        for track in self._manager.tracks_for(room_id, peer_id):
            publication = self._publications.get((room_id, track.id))
            if publication is None or publication.owner_id != track.owner_id:
                continue
            if peer_id not in publication.subscribers:
                self._link(publication, track, peer_id)

    def _link(self, publication: _Publication, track: Track, receiver_id: str) -> None:
        publication.subscribers.add(receiver_id)
        self._receivers[receiver_id].subscribe(track, publication.fanout)
