"""A synchronous, ordered fan-out of domain events to the server's listeners.

Listeners run inline, in subscription order, so every listener sees events in the order
they happened. A listener must not block: those that do I/O (notifier sockets, webhooks)
only enqueue into their own bounded queues. A failing listener is logged and skipped so
one bug cannot stop notifications for everyone else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shoal.domain.events import DomainEvent

log = logging.getLogger(__name__)

Listener = Callable[[DomainEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: tuple[Listener, ...] = ()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns a function that removes it again."""
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(item for item in self._listeners if item is not listener)

        return unsubscribe

    def publish(self, event: DomainEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener %r failed on %r", listener, event)
