"""Webhooks against untrusted clients (issue 10): the URL is checked before a room exists.

A room's ``webhookUrl`` is client text. Unchecked, a URL of megabytes was stored and echoed
in every listing, and one with a NUL was accepted (201) and killed its webhook worker on
httpx ``InvalidURL`` without a log line. Now a bad URL gets 400 before a room exists,
counted per cause in ``GET /limits/stats``. Real server, real sockets.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shoal.testing import ServerProcess
from tests.support.agent_client import rest


def room_ids(server: ServerProcess) -> set[str]:
    with rest(server) as client:
        return {room["id"] for room in client.get("/room").json()["data"]}


def stats(server: ServerProcess) -> dict[str, Any]:
    with rest(server) as client:
        body: dict[str, Any] = client.get("/limits/stats").json()
        return body


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
    ],
    ids=["2049-bytes", "2059-utf8-bytes", "nul", "newline", "space", "ftp", "no-host", "bad-ipv6", "bad-idna"],
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
