"""Agents created and connected through the official SDK (agents.md §1, rest-api.md §8.3)."""

from __future__ import annotations

from typing import Any

from tests.compat.runner import run_scenario
from tests.support.server import ServerProcess


def agent_connection(server: ServerProcess, scenario: str) -> dict[str, Any]:
    return run_scenario("agent_connection", scenario, server)


def test_a_new_agent_is_listed_as_disconnected_and_once_deleted_cannot_connect(server: ServerProcess) -> None:
    result = agent_connection(server, "create")
    for name, mode in (("default", "auto"), ("custom", "manual")):
        agent = result[name]
        assert (agent["type"], agent["status"], agent["subscribeMode"]) == ("agent", "disconnected", mode), name
        assert agent["metadata"] == {"peer": {}, "server": {}}, name
        assert agent["tracks"] == [] and agent["subscriptions"] == {"peers": [], "tracks": []}, name
    assert result["peers_after_delete"] == 0
    assert result["deleted_agent_connects"]["raised"] == "AgentAuthError"


def test_an_agent_is_connected_inside_connect_and_disconnected_after_it(server: ServerProcess) -> None:
    result = agent_connection(server, "connect_and_leave")
    assert result["before"]["status"] == "disconnected"
    assert [(p["id"], p["status"]) for p in result["inside"]] == [(result["agent_id"], "connected")]
    assert result["after"]["status"] == "disconnected"
    # The socket is closed when connect() returns, so the server knows at once.
    assert result["after"]["after_s"] < 0.5


def test_a_fake_agent_token_raises_agent_auth_error_with_a_reason(server: ServerProcess) -> None:
    result = agent_connection(server, "fake_token")
    assert result["raised"] == "AgentAuthError"
    assert result["reason"].strip()
    assert result["real_agent_status"] == "disconnected"


def test_the_same_agent_object_can_connect_again_and_publish(server: ServerProcess) -> None:
    sessions = agent_connection(server, "reconnect")["sessions"]
    assert len(sessions) == 2
    for session in sessions:
        assert session["peer"]["status"] == "connected"
        assert [t["id"] for t in session["peer"]["tracks"]] == [session["track_id"]]
        assert session["peer"]["tracks"][0]["metadata"] == {"type": "microphone"}
        assert session["after"]["status"] == "disconnected"


def test_a_second_connection_with_the_same_token_replaces_the_first(server: ServerProcess) -> None:
    result = agent_connection(server, "replaced")
    first_end = result["first_end"]
    assert first_end is not None, "the first session's receive() did not end within 3 s"
    assert first_end["code"] is not None
    assert result["first_ended_after_s"] < 1.0
    assert [(p["id"], p["status"]) for p in result["peers"]] == [(result["agent_id"], "connected")]
    first = result["first_published"]
    assert [t["id"] for t in first["peer"]["tracks"]] == [first["track_id"]]
    # The replaced connection's track went with it.
    assert result["peers"][0]["tracks"] == []
    assert result["second_open"]
    assert [t["id"] for t in result["second_published"]["peer"]["tracks"]] == [result["second_published"]["track_id"]]


def test_deleting_a_connected_agent_or_its_room_closes_the_agent_socket(server: ServerProcess) -> None:
    result = agent_connection(server, "deleted_while_connected")
    for end, mark in (("peer_deleted_end", "delete_peer"), ("room_deleted_end", "delete_room")):
        assert result[end] is not None, f"{end}: receive() did not end within 3 s"
        assert result[end]["code"] is not None
        assert result[end]["at"] - result["marks"][mark] < 1.0
    assert result["peers_left"] == [result["by_room_id"]]
