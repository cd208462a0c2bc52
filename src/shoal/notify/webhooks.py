"""Webhooks: signed protobuf POSTs of a room's notifications to its ``webhookUrl``.

Each (URL, batching) target has one bounded queue and one worker, so notifications of a
room arrive in the order they happened. With ``batchWebhookNotifications`` the worker
waits a short window and sends what gathered as one ``NotificationBatch``. Failed POSTs
(network errors, 5xx) are retried with backoff, then logged and dropped; a full queue
drops new notifications with an error log. A delivery that raises anything else (httpx
refusing a URL at send time, a bug) is counted, logged with its traceback once per target
and cause, and the worker goes on with the next notification: a worker never dies.
A target no room uses any more is reaped once its queue has been empty for
``reap_grace_s``, so rooms with ever new URLs do not leave a queue and a task each behind.
Bodies are signed with ``x-fishjam-signature-256: sha256=<hex HMAC-SHA256>`` when a
secret is configured.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial

import httpx

from shoal.domain import events as ev
from shoal.domain.manager import RoomManager
from shoal.logtext import clip
from shoal.net.demux import OnceLog
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

    def __init__(self, key: _RoomTarget, dispatcher: WebhookDispatcher) -> None:
        self.key = key
        self.url = key.url
        self.batched = key.batched
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=dispatcher.queue_limit)
        self.dropped = 0
        self._dispatcher = dispatcher
        # Per target, so the log says which URL breaks, and the table dies with the target.
        self._raised = OnceLog(lambda text: log.error("%s", text, exc_info=True), time.monotonic)
        self.problems = OnceLog(log.warning, time.monotonic)
        """Failed attempts, give-ups and queue drops: a dead URL is a line per cause, not per notification."""
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"webhook {clip(self.url)}")

    def put(self, frame: bytes) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1
            self._dispatcher.dropped += 1
            self.problems.note("queue full", lambda: f"webhook {clip(self.url, 200)}: queue full; notification dropped")

    async def _run(self) -> None:
        while True:
            try:
                frame = await asyncio.wait_for(self.queue.get(), self._dispatcher.reap_grace_s)
            except TimeoutError:
                if self._dispatcher.reap(self):
                    return
                continue
            try:
                await self._deliver(frame)
            except Exception as exc:  # the worker must outlive any one delivery
                self._dispatcher.raised += 1
                self._raised.note(type(exc).__name__, partial(self._raised_text, exc))

    async def _deliver(self, frame: bytes) -> None:
        if not self.batched:
            await self._dispatcher.post(self.url, frame, self.problems)
            return
        frames = [frame]
        await asyncio.sleep(self._dispatcher.batch_window_s)
        while len(frames) < MAX_BATCH and not self.queue.empty():
            frames.append(self.queue.get_nowait())
        await self._dispatcher.post(self.url, batch(frames), self.problems)

    def _raised_text(self, exc: Exception) -> str:
        return (
            f"webhook {clip(self.url, 200)}: delivery raised {type(exc).__name__}: {clip(str(exc), 200)}; "
            "notification dropped, going on with the next"
        )


class WebhookDispatcher:
    def __init__(
        self,
        manager: RoomManager,
        secret: str | None,
        queue_limit: int,
        batch_window_s: float,
        reap_grace_s: float = 60.0,
    ) -> None:
        self._manager = manager
        self._secret = secret
        self.queue_limit = queue_limit
        self.batch_window_s = batch_window_s
        self.reap_grace_s = reap_grace_s
        self._rooms: dict[str, _RoomTarget] = {}
        self._users: Counter[_RoomTarget] = Counter()
        """Rooms per target key; a key with none is a candidate for reaping."""
        self._targets: dict[_RoomTarget, _Target] = {}
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0
        self.failed = 0
        """POSTs given up on (network errors and 5xx after retries, other 4xx at once)."""
        self.dropped = 0
        """Notifications refused by a full queue."""
        self.raised = 0
        """Deliveries that raised something else; each dropped its notification(s)."""
        self.reaped = 0

    def stats(self) -> dict[str, int]:
        return {
            "targets": len(self._targets),
            "delivered": self.delivered,
            "failed": self.failed,
            "dropped": self.dropped,
            "raised": self.raised,
            "reaped": self.reaped,
        }

    def on_event(self, event: ev.DomainEvent) -> None:
        if isinstance(event, ev.RoomCreated):
            config = self._manager.room(event.room_id).config
            if config.webhook_url:
                key = self._rooms[event.room_id] = _RoomTarget(config.webhook_url, config.batch_webhook_notifications)
                self._users[key] += 1
        room_target = self._rooms.get(event.room_id)
        if room_target is None:
            return
        message = to_server_message(event)
        if message is not None:
            target = self._targets.get(room_target)
            if target is None:
                target = self._targets[room_target] = _Target(room_target, self)
            target.put(message.SerializeToString())
        if isinstance(event, ev.RoomDeleted):
            del self._rooms[event.room_id]
            self._users[room_target] -= 1
            if self._users[room_target] <= 0:
                del self._users[room_target]

    def send_once(self, url: str, batched: bool, frame: bytes) -> None:
        """Queue a notification for a room this node does not hold (a dead cluster node's ``RoomCrashed``)."""
        key = _RoomTarget(url, batched)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target(key, self)
        target.put(frame)

    def reap(self, target: _Target) -> bool:
        """Forget ``target`` if no room uses its URL and nothing waits in its queue; True if so.

        Called by the target's own worker after ``reap_grace_s`` idle; no await between the
        check and the removal, so a room created meanwhile gets a fresh target.
        """
        if target.key in self._users or not target.queue.empty():
            return False
        if self._targets.get(target.key) is target:
            del self._targets[target.key]
        self.reaped += 1
        return True

    async def post(self, url: str, body: bytes, problems: OnceLog) -> None:
        """POST one body with retries; failures are logged through ``problems``, once per cause."""
        note = problems.note
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
            note(f"attempt {problem[:40]}", f"webhook {clip(url, 200)}: attempt {attempt + 1} failed: {clip(problem, 200)}")
        self.failed += 1
        note(f"gave up {problem[:40]}", f"webhook {clip(url, 200)}: notification not delivered ({clip(problem, 200)}); giving up")

    def _pending(self) -> bool:
        return any(not target.queue.empty() for target in self._targets.values())

    async def close(self, flush_s: float = 2.0) -> None:
        """Stop every worker, after giving queued notifications up to ``flush_s`` to go out."""
        deadline = time.monotonic() + flush_s
        while self._pending() and time.monotonic() < deadline:  # noqa: ASYNC110 - a bounded wait at shutdown only
            await asyncio.sleep(0.02)
        for target in self._targets.values():
            target.task.cancel()
        await asyncio.gather(*(t.task for t in self._targets.values()), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
