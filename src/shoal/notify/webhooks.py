"""Webhooks: signed protobuf POSTs of a room's notifications to its ``webhookUrl``.

Each (URL, batching) target has one bounded queue and one worker, so notifications of a
room arrive in the order they happened. With ``batchWebhookNotifications`` the worker
waits a short window and sends what gathered as one ``NotificationBatch``. Failed POSTs
(network errors, 5xx) are retried with backoff, then logged and dropped; a full queue
drops new notifications with an error log. Bodies are signed with
``x-fishjam-signature-256: sha256=<hex HMAC-SHA256>`` when a secret is configured.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass

import httpx

from shoal.domain import events as ev
from shoal.domain.manager import RoomManager
from shoal.protocol.notifications import batch, to_server_message

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (0.5, 1.0, 2.0)
REQUEST_TIMEOUT_S = 5.0
MAX_BATCH = 100


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _RoomTarget:
    url: str
    batched: bool


class _Target:
    """One webhook URL: a bounded queue and the worker that drains it in order."""

    def __init__(self, url: str, batched: bool, dispatcher: WebhookDispatcher) -> None:
        self.url = url
        self.batched = batched
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=dispatcher.queue_limit)
        self.dropped = 0
        self._dispatcher = dispatcher
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"webhook {url}")

    def put(self, frame: bytes) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("webhook %s: queue full; notification dropped (%d so far)", self.url, self.dropped)

    async def _run(self) -> None:
        while True:
            frame = await self.queue.get()
            if not self.batched:
                await self._dispatcher.post(self.url, frame)
                continue
            frames = [frame]
            await asyncio.sleep(self._dispatcher.batch_window_s)
            while len(frames) < MAX_BATCH and not self.queue.empty():
                frames.append(self.queue.get_nowait())
            await self._dispatcher.post(self.url, batch(frames))


class WebhookDispatcher:
    def __init__(
        self,
        manager: RoomManager,
        secret: str | None,
        queue_limit: int,
        batch_window_s: float,
    ) -> None:
        self._manager = manager
        self._secret = secret
        self.queue_limit = queue_limit
        self.batch_window_s = batch_window_s
        self._rooms: dict[str, _RoomTarget] = {}
        self._targets: dict[_RoomTarget, _Target] = {}
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0
        self.failed = 0

    def on_event(self, event: ev.DomainEvent) -> None:
        if isinstance(event, ev.RoomCreated):
            config = self._manager.room(event.room_id).config
            if config.webhook_url:
                self._rooms[event.room_id] = _RoomTarget(config.webhook_url, config.batch_webhook_notifications)
        room_target = self._rooms.get(event.room_id)
        if room_target is None:
            return
        message = to_server_message(event)
        if message is not None:
            target = self._targets.get(room_target)
            if target is None:
                target = self._targets[room_target] = _Target(room_target.url, room_target.batched, self)
            target.put(message.SerializeToString())
        if isinstance(event, ev.RoomDeleted):
            del self._rooms[event.room_id]

    async def post(self, url: str, body: bytes) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, follow_redirects=False)
        headers = {"content-type": "application/x-protobuf"}
        if self._secret:
            headers["x-fishjam-signature-256"] = sign(body, self._secret)
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS_S)):
            if delay:
                await asyncio.sleep(delay)
            try:
                response = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    self.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500:
                    break  # the receiver refuses this body; retrying will not help
            log.warning("webhook %s: attempt %d failed: %s", url, attempt + 1, problem)
        self.failed += 1
        log.error("webhook %s: notification not delivered (%s); giving up", url, problem)

    async def close(self) -> None:
        for target in self._targets.values():
            target.task.cancel()
        await asyncio.gather(*(t.task for t in self._targets.values()), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
