"""NotifierHub: encodes each notification once and queues it for every subscribed notifier."""

from __future__ import annotations

from shoal.domain import events as ev
from shoal.protocol.notifications import to_server_message
from shoal.signaling.outbox import Outbox


class NotifierHub:
    def __init__(self) -> None:
        self._subscribers: tuple[Outbox, ...] = ()

    def subscribe(self, outbox: Outbox) -> None:
        self._subscribers = (*self._subscribers, outbox)

    def unsubscribe(self, outbox: Outbox) -> None:
        self._subscribers = tuple(item for item in self._subscribers if item is not outbox)

    def deliver(self, frame: bytes) -> None:
        """Queue an already-encoded notification (one from another cluster node)."""
        for outbox in self._subscribers:
            outbox.put(frame)

    def on_event(self, event: ev.DomainEvent) -> None:
        if not self._subscribers:
            return
        message = to_server_message(event)
        if message is None:
            return
        frame = message.SerializeToString()
        for outbox in self._subscribers:
            outbox.put(frame)
