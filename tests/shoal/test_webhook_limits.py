"""Webhooks against untrusted clients (issue 10): the URL is checked, workers survive, targets are reaped.

A room's ``webhookUrl`` is client text. Unchecked, a URL of megabytes was stored and echoed
in every listing, and one with a NUL was accepted (201) and killed its webhook worker on
httpx ``InvalidURL`` without a log line. Now a bad URL gets 400 before a room exists; a
delivery that raises something other than ``httpx.HTTPError`` — here because httpx refuses
the server's proxy URL (``ALL_PROXY=ftp://…``: ``ValueError``) — is counted and logged with
its traceback once per target, and the worker goes on; and a target (URL, batching) no
room uses any more is dropped after ``--webhook-reap-grace``. Real servers, real sockets.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from shoal.testing import ServerProcess, start_server
from tests.compat.webhook_receiver import Delivery, WebhookReceiver, webhook_receiver
from tests.support.agent_client import create_room, rest

BAD_PROXY = "ftp://127.0.0.1:9"
"""A proxy URL httpx refuses (``ValueError: Unknown scheme for proxy URL``) on every delivery."""


def room_ids(server: ServerProcess) -> set[str]:
    with rest(server) as client:
        return {room["id"] for room in client.get("/room").json()["data"]}


def stats(server: ServerProcess) -> dict[str, Any]:
    with rest(server) as client:
        body: dict[str, Any] = client.get("/limits/stats").json()
        return body


def wait_until(what: str, done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``done`` (a generous deadline: only a hang fails, never a slow machine)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def post_room(server: ServerProcess, url: str) -> httpx.Response:
    with rest(server) as client:
        return client.post("/room", json={"webhookUrl": url})


# the URL is checked before the room exists ------------------------------------------


@pytest.mark.parametrize(
    ("url", "fragment", "cause"),
    [
        ("http://example.com/" + "a" * 2030, "longer than 2048 bytes", "webhook_url.bytes"),
        ("http://example.com/" + "é" * 1020, "longer than 2048 bytes", "webhook_url.bytes"),
        ("http://example.com/\x00hook", "control character", "webhook_url.invalid"),
        ("http://example.com/\nX-Forged: 1", "control character", "webhook_url.invalid"),
        ("http://exa mple.com/hook", "whitespace", "webhook_url.invalid"),
        ("ftp://example.com/hook", "scheme must be http or https", "webhook_url.invalid"),
        ("http:///hook", "has no host", "webhook_url.invalid"),
        ("http://[::1/hook", "not a valid URL", "webhook_url.invalid"),
        ("http://xn--/hook", "not a valid URL", "webhook_url.invalid"),
        ("http://127.0.0.1:99999/hook", "port must be within 1..65535", "webhook_url.invalid"),
        ("http://127.0.0.1:0/hook", "port must be within 1..65535", "webhook_url.invalid"),
    ],
    ids=[
        "2049-bytes", "2059-utf8-bytes", "nul", "newline", "space", "ftp", "no-host", "bad-ipv6", "bad-idna",
        "port-99999", "port-0",
    ],
)
def test_a_bad_webhook_url_gets_400_and_creates_no_room(server: ServerProcess, url: str, fragment: str, cause: str) -> None:
    before = room_ids(server)
    refused_before = stats(server)["refused"].get(cause, 0)
    response = post_room(server, url)
    assert response.status_code == 400, response.text
    message = response.json()["errors"]
    assert message.startswith("webhookUrl: ") and fragment in message
    assert len(message) < 300 and "\x00" not in message and "\n" not in message
    assert room_ids(server) == before
    assert stats(server)["refused"][cause] == refused_before + 1


def test_a_10_mb_webhook_url_is_refused_and_creates_no_room(server: ServerProcess) -> None:
    """The adversarial run's 10 MB URL: refused (413 by the body limit, else 400), never stored."""
    before = room_ids(server)
    response = post_room(server, "http://example.com/" + "a" * 10_000_000)
    assert response.status_code in (400, 413), response.text
    assert isinstance(response.json()["errors"], str)
    assert room_ids(server) == before


def test_a_webhook_url_of_exactly_2048_bytes_is_accepted(server: ServerProcess) -> None:
    url = "http://example.com/" + "a" * (2048 - len("http://example.com/"))
    response = post_room(server, url)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["room"]["config"]["webhookUrl"] == url
    with rest(server) as client:
        client.delete(f"/room/{response.json()['data']['room']['id']}")


# workers survive any delivery, targets are reaped ------------------------------------


@pytest.fixture(scope="module")
def reaping() -> Iterator[ServerProcess]:
    """A server of this module's own: a short reap grace, and a log only its webhooks write to."""
    server = start_server(["--webhook-reap-grace", "0.3"])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def raising() -> Iterator[ServerProcess]:
    """A server whose every webhook delivery raises: httpx refuses its proxy URL."""
    server = start_server(env={"ALL_PROXY": BAD_PROXY})
    try:
        yield server
    finally:
        server.stop()


def webhooks(server: ServerProcess) -> dict[str, int]:
    figures: dict[str, int] = stats(server)["webhooks"]
    return figures


def test_a_delivery_that_raises_is_counted_logged_once_and_the_worker_goes_on(
    raising: ServerProcess, receiver: WebhookReceiver
) -> None:
    url = receiver.url("raising")
    rooms = [create_room(raising, webhookUrl=url) for _ in range(2)]
    with rest(raising) as client:
        for room in rooms:
            assert client.delete(f"/room/{room}").status_code == 204
    # RoomCreated and RoomDeleted of each room, all to the one target: four deliveries raise,
    # so the worker outlived the first three.
    wait_until("four raised deliveries", lambda: webhooks(raising)["raised"] >= 4)
    assert webhooks(raising)["raised"] == 4 and webhooks(raising)["delivered"] == 0
    log = raising.log_text()
    assert log.count("delivery raised") == 1, log
    assert "delivery raised ValueError: Unknown scheme for proxy URL" in log and url in log
    assert "Traceback (most recent call last)" in log
    assert receiver.deliveries("raising") == []
    # The worker is alive: a room created now is still handed to it (and counted).
    room = create_room(raising, webhookUrl=url)
    wait_until("a fifth raised delivery", lambda: webhooks(raising)["raised"] >= 5)
    with rest(raising) as client:
        assert client.delete(f"/room/{room}").status_code == 204


def test_a_target_no_room_uses_is_reaped_after_the_grace(reaping: ServerProcess, receiver: WebhookReceiver) -> None:
    assert reaping.process.poll() is None
    wait_until("no webhook target left from earlier tests", lambda: webhooks(reaping)["targets"] == 0)
    room = create_room(reaping, webhookUrl=receiver.url("reaped"))
    assert webhooks(reaping)["targets"] == 1
    with rest(reaping) as client:
        assert client.delete(f"/room/{room}").status_code == 204
    deliveries = receiver.wait_until("reaped", lambda got: len(got) >= 2, timeout=30)
    assert len(deliveries) == 2  # RoomCreated, RoomDeleted
    wait_until("the unused target to be reaped", lambda: webhooks(reaping)["targets"] == 0)
    assert webhooks(reaping)["reaped"] >= 1


def test_a_target_in_use_outlives_the_grace_and_a_reaped_one_comes_back(
    reaping: ServerProcess, receiver: WebhookReceiver
) -> None:
    url = receiver.url("kept")
    first = create_room(reaping, webhookUrl=url)
    wait_until("RoomCreated delivered", lambda: len(receiver.deliveries("kept")) >= 1)
    time.sleep(1.0)  # over three reap graces idle: a room still uses the target, so it stays
    assert webhooks(reaping)["targets"] == 1
    with rest(reaping) as client:
        assert client.post(f"/room/{first}/peer", json={"type": "agent"}).status_code == 201
        assert client.delete(f"/room/{first}").status_code == 204
    wait_until("the target reaped", lambda: webhooks(reaping)["targets"] == 0)
    second = create_room(reaping, webhookUrl=url)
    with rest(reaping) as client:
        assert client.delete(f"/room/{second}").status_code == 204
    got: list[Delivery] = receiver.wait_until("kept", lambda got: len(got) >= 5, timeout=30)
    assert len(got) == 5  # first: created, peer added, deleted; second: created, deleted
    assert webhooks(reaping)["failed"] == 0 and webhooks(reaping)["dropped"] == 0


def test_limits_stats_lists_the_reap_grace_and_the_webhook_figures(reaping: ServerProcess) -> None:
    body = stats(reaping)
    assert body["limits"]["webhook_reap_grace_s"] == 0.3
    assert set(body["webhooks"]) >= {"targets", "delivered", "failed", "dropped", "raised"}


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(400)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_receiver_that_refuses_every_notification_is_one_log_line_per_cause(reaping: ServerProcess) -> None:
    """A dead webhook is counted per notification but logged once per cause, not twice per notification."""
    refusing = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=refusing.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{refusing.server_address[1]}/refusing"
        before = webhooks(reaping)["failed"]
        with rest(reaping) as client:
            for _ in range(10):
                room = create_room(reaping, webhookUrl=url)
                assert client.delete(f"/room/{room}").status_code == 204
        wait_until("twenty failed deliveries", lambda: webhooks(reaping)["failed"] - before >= 20)
        log = [line for line in reaping.log_text().splitlines() if "/refusing" in line and "httpx" not in line]
        assert len(log) == 1 and "notification not delivered (HTTP 400); giving up" in log[0], log
    finally:
        refusing.shutdown()
