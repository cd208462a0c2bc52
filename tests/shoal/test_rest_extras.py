"""REST details beyond the SDK's own expectations: OpenAPI, 501s, path hygiene, peer URLs."""

from __future__ import annotations

import httpx

from tests.support.agent_client import create_room, rest
from tests.support.server import ServerProcess


def test_the_openapi_document_describes_the_implemented_endpoints(server: ServerProcess) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    paths = document["paths"]
    for path, method in [
        ("/room", "post"), ("/room", "get"), ("/room/{room_id}", "delete"), ("/room/{room_id}/peer", "post"),
        ("/room/{room_id}/peer/{peer_id}/refresh_token", "post"),
        ("/room/{room_id}/peer/{peer_id}/subscribe_peer", "post"),
        ("/room/{room_id}/peer/{peer_id}/subscribe_tracks", "post"), ("/validate", "get"),
    ]:
        assert method in paths[path], f"{method.upper()} {path} missing"
    schemas = document["components"]["schemas"]
    assert set(schemas["PeerOut"]["properties"]) == {
        "id", "type", "status", "tracks", "metadata", "subscribeMode", "subscriptions",
    }


def test_unimplemented_features_answer_501_with_a_message(server: ServerProcess) -> None:
    with rest(server) as client:
        for method, path in [("GET", "/recordings"), ("POST", "/livestream"), ("GET", "/livestream/x")]:
            response = client.request(method, path)
            assert response.status_code == 501
            assert "not implemented" in response.json()["errors"]
        moq = client.post("/moq/access", json={"publishPath": None, "subscribePath": None})
        assert moq.status_code == 400
        assert client.post("/moq/access", json={"publishPath": "a"}).status_code == 501


def test_double_slashes_from_the_js_sdk_are_collapsed(server: ServerProcess) -> None:
    with rest(server) as client:
        response = client.post(f"{server.url}//room", json={})
    assert response.status_code == 201


def test_peer_websocket_url_has_a_scheme_and_the_peer_path(server: ServerProcess) -> None:
    room = create_room(server)
    with rest(server) as client:
        data = client.post(f"/room/{room}/peer", json={"type": "webrtc"}).json()["data"]
    assert data["peer_websocket_url"] == f"{server.ws_url}/socket/peer/websocket"
    assert data["peer"]["metadata"] == {"peer": {}, "server": {}}


def test_legacy_subscribe_option_is_accepted(server: ServerProcess) -> None:
    room = create_room(server)
    body = {"type": "webrtc", "options": {"enableSimulcast": True, "subscribe": {"audioFormat": "pcm16", "audioSampleRate": 24000}}}
    with rest(server) as client:
        response = client.post(f"/room/{room}/peer", json=body)
    assert response.status_code == 201, response.text
