"""Server notifications received by the official ``FishjamNotifier`` (notifications.md §3, §5).

The notifier subscribes before the room exists, so it has to receive everything, and the
order is checked as a subsequence of the room's notifications, as the SDK's tests do.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.compat.events import PEER_LIFECYCLE, assert_in_order, for_room, types
from tests.compat.runner import run_scenario
from tests.support.server import ServerProcess

WEBRTC = "PEER_TYPE_WEBRTC"
AGENT = "PEER_TYPE_AGENT"


@pytest.fixture(scope="module")
def peer_deleted_then_room(server: ServerProcess) -> dict[str, Any]:
    return run_scenario("notifier", "peer_lifecycle", server, delete_peer=True)


@pytest.fixture(scope="module")
def room_deleted_with_peer(server: ServerProcess) -> dict[str, Any]:
    return run_scenario("notifier", "peer_lifecycle", server, delete_peer=False)


@pytest.fixture(scope="module")
def agent_run(server: ServerProcess) -> dict[str, Any]:
    return run_scenario("notifier", "agent_lifecycle", server)


def timed_for_room(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's notifications for its room, keeping arrival times (``t``)."""
    return [e for e in run["events"] if e.get("room_id") == run["room_id"]]


def assert_peer_lifecycle(run: dict[str, Any]) -> None:
    events = for_room(run["events"], run["room_id"])
    found = assert_in_order(events, [{"type": name} for name in PEER_LIFECYCLE])
    for event in found[1:-1]:
        assert (event["peer_id"], event["peer_type"]) == (run["peer_id"], WEBRTC), event


def test_a_webrtc_peer_connecting_and_being_deleted_is_notified_in_order(
    peer_deleted_then_room: dict[str, Any],
) -> None:
    assert_peer_lifecycle(peer_deleted_then_room)


def test_deleting_a_room_with_a_connected_peer_disconnects_and_deletes_it_before_room_deleted(
    room_deleted_with_peer: dict[str, Any],
) -> None:
    assert_peer_lifecycle(room_deleted_with_peer)


def test_a_peer_socket_counts_as_connected_after_authenticated(peer_deleted_then_room: dict[str, Any]) -> None:
    # PeerMessage{authenticated(1): {...}}: the first byte is field 1, length-delimited.
    assert peer_deleted_then_room["peer_socket"]["first_reply_hex"].startswith("0a")
    assert peer_deleted_then_room["status_while_connected"] == "connected"


@pytest.mark.parametrize("scenario", ["peer_deleted_then_room", "room_deleted_with_peer"])
def test_the_server_closes_the_socket_of_a_deleted_peer(scenario: str, request: pytest.FixtureRequest) -> None:
    run: dict[str, Any] = request.getfixturevalue(scenario)
    socket = run["peer_socket"]
    assert socket["closed_at"] is not None, "the peer socket stayed open after its peer was deleted"
    first_delete = min(run["marks"].values())
    assert socket["closed_at"] - first_delete < 1.0


def test_an_agent_connecting_is_notified_with_peer_connected_and_metadata_updated_within_5_s(
    agent_run: dict[str, Any],
) -> None:
    agent = agent_run["agent_id"]
    connected = agent_run["marks"]["connected"]
    timed = timed_for_room(agent_run)
    wanted = [{"type": "PeerAdded", "peer_type": AGENT}, *types("PeerConnected", "PeerMetadataUpdated", peer_type=AGENT)]
    found = assert_in_order(timed, [{**w, "peer_id": agent} for w in wanted])
    for event in found[1:]:
        assert event["t"] - connected < 5.0, event
    # The metadata it carries is the agent's metadata as the REST API reports it.
    assert json.loads(found[2]["metadata"]) == {"peer": {}, "server": {}}
    assert agent_run["status_while_connected"] == "connected"


def test_an_agent_leaving_is_notified_with_peer_disconnected_within_5_s(agent_run: dict[str, Any]) -> None:
    agent = agent_run["agent_id"]
    timed = timed_for_room(agent_run)
    (disconnected,) = assert_in_order(timed, types("PeerDisconnected", peer_id=agent))
    assert disconnected["peer_type"] == AGENT
    assert 0 <= disconnected["t"] - agent_run["marks"]["leaving"] < 5.0


def test_an_agent_track_is_added_and_removed_when_the_agent_leaves(agent_run: dict[str, Any]) -> None:
    agent, track = agent_run["agent_id"], agent_run["track_id"]
    timed = timed_for_room(agent_run)
    added, removed, _ = assert_in_order(
        timed, [*types("TrackAdded", "TrackRemoved", peer_id=agent), {"type": "PeerDisconnected", "peer_id": agent}]
    )
    for event in (added, removed):
        assert event["track"]["id"] == track
        assert event["track"]["type"] == "TRACK_TYPE_AUDIO"
        assert json.loads(event["track"]["metadata"]) == {"type": "microphone"}
    assert added["t"] < agent_run["marks"]["leaving"] <= removed["t"]


def test_the_agent_room_notifications_start_with_room_created_and_end_with_room_deleted(agent_run: dict[str, Any]) -> None:
    events = for_room(agent_run["events"], agent_run["room_id"])
    assert events[0]["type"] == "RoomCreated"
    assert events[-1]["type"] == "RoomDeleted"
    assert [e["type"] for e in events].count("PeerDeleted") == 1


def test_a_notifier_with_a_wrong_management_token_fails_with_invalid_management_token(server: ServerProcess) -> None:
    result = run_scenario("notifier", "bad_token", server)
    assert result == {"raised": "RuntimeError", "message": "Invalid management token"}
