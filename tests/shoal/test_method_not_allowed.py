"""405 answers (issue 10): every method-not-allowed names the methods the path does take.

A known path asked with a method it does not take got 405 with no ``Allow`` header (RFC 9110
requires one), so a client could not tell what would work. The answer must list every
method of the path — ``/room`` is two routes (GET lists, POST creates), so the union — and
carry the ``{"errors": "..."}`` body the SDKs read. Real HTTP requests against a real server.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.agent_client import create_room, rest
from tests.support.server import ServerProcess


def allow_of(response: httpx.Response) -> set[str]:
    assert response.status_code == 405, response.text
    assert "allow" in response.headers, f"405 without an Allow header: {dict(response.headers)}"
    return {method.strip() for method in response.headers["allow"].split(",")}


def test_delete_on_health_gets_405_allowing_get(server: ServerProcess) -> None:
    response = httpx.delete(f"{server.url}/health")
    assert allow_of(response) == {"GET"}
    assert "DELETE" in response.json()["errors"] and "/health" in response.json()["errors"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_unsupported_methods_on_room_get_405_allowing_both_room_routes(server: ServerProcess, method: str) -> None:
    with rest(server) as client:
        response = client.request(method, "/room")
    assert allow_of(response) == {"GET", "POST"}
    assert isinstance(response.json()["errors"], str)


def test_a_path_with_an_id_lists_the_methods_of_its_routes(server: ServerProcess) -> None:
    room = create_room(server)
    with rest(server) as client:
        on_room = client.patch(f"/room/{room}")
        on_peer = client.get(f"/room/{room}/peer")
        on_unimplemented = client.put("/recordings/x")
    assert allow_of(on_room) == {"DELETE", "GET"}
    assert allow_of(on_peer) == {"POST"}
    assert allow_of(on_unimplemented) == {"DELETE", "GET", "POST"}
    for response in (on_room, on_peer, on_unimplemented):
        assert isinstance(response.json()["errors"], str)


def test_the_allowed_methods_do_work(server: ServerProcess) -> None:
    """What ``Allow`` names is true: each listed method of ``/room`` gets a non-405 answer."""
    with rest(server) as client:
        allowed = allow_of(client.put("/room"))
        answers = {method: client.request(method, "/room", json={}).status_code for method in allowed}
    assert all(status != 405 for status in answers.values()), answers
