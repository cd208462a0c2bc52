"""URL derivation: fishjam id → API, notifier and agent socket URLs."""

from __future__ import annotations

import httpx
import pytest

from fishjam import FishjamClient, FishjamNotifier, MissingFishjamIdError
from fishjam.agent import Agent
from fishjam.utils import get_fishjam_url, get_livestream_whep_url, get_livestream_whip_url, http_to_ws


@pytest.mark.parametrize(
    ("fishjam_id", "expected"),
    [
        ("abc123", "https://fishjam.io/api/v1/connect/abc123"),
        ("localhost:5002", "https://fishjam.io/api/v1/connect/localhost:5002"),
        ("http://127.0.0.1:5002", "http://127.0.0.1:5002"),
        ("https://fishjam.io/api/v1/connect/x", "https://fishjam.io/api/v1/connect/x"),
        ("http://h:1/prefix/", "http://h:1/prefix/"),
    ],
)
def test_get_fishjam_url(fishjam_id: str, expected: str) -> None:
    assert get_fishjam_url(fishjam_id) == expected


def test_empty_id_is_rejected() -> None:
    with pytest.raises(MissingFishjamIdError):
        get_fishjam_url("")
    with pytest.raises(ValueError):
        FishjamClient("", "token")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h", "ws://h"),
        ("https://h", "wss://h"),
        ("ws://h", "ws://h"),
        # Only the scheme changes (the official SDK rewrites every "http").
        ("https://httpbin.example/http", "wss://httpbin.example/http"),
    ],
)
def test_http_to_ws(url: str, expected: str) -> None:
    assert http_to_ws(url) == expected


def test_livestream_urls_use_the_api_origin() -> None:
    assert get_livestream_whip_url("http://h:5002/x") == "http://h:5002/api/v1/live/api/whip"
    assert get_livestream_whep_url("abc") == "https://fishjam.io/api/v1/live/api/whep"


def test_notifier_url() -> None:
    assert FishjamNotifier("abc", "t")._fishjam_url == (
        "wss://fishjam.io/api/v1/connect/abc/socket/server/websocket"
    )
    assert FishjamNotifier("http://h:1/", "t")._fishjam_url == "ws://h:1/socket/server/websocket"


def test_agent_socket_url() -> None:
    agent = Agent("a", "r", "t", "http://127.0.0.1:5002")
    assert agent._socket_url == "ws://127.0.0.1:5002/socket/agent/websocket"
    assert agent._fishjam_url == "http://127.0.0.1:5002"
    assert Agent("a", "r", "t", "https://h/p/")._socket_url == "wss://h/p/socket/agent/websocket"


def _agent_for(peer_websocket_url: object) -> Agent:
    data: dict[str, object] = {
        "peer": {
            "id": "agent-1",
            "type": "agent",
            "status": "disconnected",
            "tracks": [],
            "metadata": None,
            "subscribeMode": "auto",
            "subscriptions": {"peers": [], "tracks": []},
        },
        "token": "tok",
    }
    if peer_websocket_url is not None:
        data["peer_websocket_url"] = peer_websocket_url
    transport = httpx.MockTransport(lambda _request: httpx.Response(201, json={"data": data}))
    return FishjamClient("http://api.test:9", "m", transport=transport).create_agent("room")


@pytest.mark.parametrize(
    ("peer_websocket_url", "expected"),
    [
        ("ws://h:5002/socket/peer/websocket", "ws://h:5002/socket/agent/websocket"),
        ("http://h:5002/socket/peer/websocket", "ws://h:5002/socket/agent/websocket"),
        ("h:5002/socket/peer/websocket", "wss://h:5002/socket/agent/websocket"),
        ("wss://h/tenant/socket/agent/websocket", "wss://h/tenant/socket/agent/websocket"),
        ("", "ws://api.test:9/socket/agent/websocket"),
        (None, "ws://api.test:9/socket/agent/websocket"),
    ],
)
def test_create_agent_derives_socket_from_peer_websocket_url(
    peer_websocket_url: str | None, expected: str
) -> None:
    agent = _agent_for(peer_websocket_url)
    assert (agent.id, agent.room_id, agent._token) == ("agent-1", "room", "tok")
    assert agent._socket_url == expected
