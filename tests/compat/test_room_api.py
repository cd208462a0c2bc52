"""Rooms and peers driven by the official SDK, as its own test suite (rest-api.md §8.1) expects."""

from __future__ import annotations

from typing import Any

from tests.compat.runner import run_scenario
from tests.support.official_sdk import OFFICIAL_VERSION, REPO
from tests.support.server import ServerProcess


def room_api(server: ServerProcess, scenario: str, **params: Any) -> dict[str, Any]:
    return run_scenario("room_api", scenario, server, **params)


def test_the_scenarios_run_the_official_sdk_not_ours(server: ServerProcess) -> None:
    about = room_api(server, "about")
    assert about["version"] == OFFICIAL_VERSION
    assert not about["module"].startswith(str(REPO / "src"))


def test_an_invalid_management_token_raises_unauthorized_error(server: ServerProcess) -> None:
    result = room_api(server, "invalid_token")
    assert result["create_room"]["error"] == "UnauthorizedError"
    assert result["get_all_rooms"]["error"] == "UnauthorizedError"


def test_a_default_room_has_the_default_config_and_equals_the_listed_room(server: ServerProcess) -> None:
    result = room_api(server, "create_room")
    assert result["config"] == result["expected_config"]
    assert result["created_equals_expected"]
    assert result["peers"] == 0
    assert result["listed"] == 1 and result["listed_equals_created"]
    assert result["fetched_equals_created"]


def test_room_options_are_echoed_back(server: ServerProcess) -> None:
    result = room_api(server, "create_room", options={"max_peers": 10, "video_codec": "h264", "room_type": "audio_only"})
    assert result["config"]["maxPeers"] == 10
    assert result["config"]["roomType"] == "audio_only"
    assert result["config"] == result["expected_config"]
    assert result["created_equals_expected"] and result["listed_equals_created"] and result["fetched_equals_created"]


def test_every_room_option_is_echoed_back(server: ServerProcess) -> None:
    options = {
        "max_peers": 3,
        "video_codec": "vp8",
        "room_type": "full_feature",
        "webhook_url": "http://127.0.0.1:9/webhook",
        "batch_webhook_notifications": True,
    }
    result = room_api(server, "create_room", options=options)
    assert result["config"] == {
        "maxPeers": 3,
        "videoCodec": "vp8",
        "roomType": "full_feature",
        "webhookUrl": "http://127.0.0.1:9/webhook",
        "public": False,
        "batchWebhookNotifications": True,
    }
    assert result["created_equals_expected"] and result["listed_equals_created"] and result["fetched_equals_created"]


def test_a_non_integer_max_peers_raises_bad_request_error(server: ServerProcess) -> None:
    assert room_api(server, "invalid_max_peers")["create_room"]["error"] == "BadRequestError"


def test_getting_or_deleting_an_unknown_or_malformed_room_id_raises_not_found_error(server: ServerProcess) -> None:
    result = room_api(server, "unknown_rooms")
    assert len(result) == 3
    for room_id, calls in result.items():
        assert calls["get"]["error"] == "NotFoundError", room_id
        assert calls["delete"]["error"] == "NotFoundError", room_id


def test_a_deleted_room_is_gone(server: ServerProcess) -> None:
    result = room_api(server, "delete_room")
    assert result["delete"]["ok"]
    assert not result["still_listed"]
    assert result["get_after"]["error"] == "NotFoundError"
    assert result["delete_again"]["error"] == "NotFoundError"


def test_a_default_peer_equals_the_peer_the_official_tests_expect(server: ServerProcess) -> None:
    result = room_api(server, "create_peer")
    assert result["token"]
    assert result["room_peers"] == [result["expected"]]
    assert result["created_equals_expected"] and result["room_peers_equal_expected"]


def test_peer_metadata_is_returned_under_server(server: ServerProcess) -> None:
    result = room_api(server, "create_peer", options={"metadata": {"is_test": True, "name": "Ala"}})
    assert result["room_peers"][0]["metadata"] == {"peer": {}, "server": {"is_test": True, "name": "Ala"}}
    assert result["created_equals_expected"] and result["room_peers_equal_expected"]


def test_a_manual_peer_reports_manual_subscribe_mode_and_no_subscriptions(server: ServerProcess) -> None:
    result = room_api(server, "create_peer", options={"subscribe_mode": "manual"})
    assert result["room_peers"][0]["subscribeMode"] == "manual"
    assert result["room_peers"][0]["subscriptions"] == {"peers": [], "tracks": []}
    assert result["created_equals_expected"] and result["room_peers_equal_expected"]


def test_a_room_with_max_peers_1_refuses_a_second_peer_with_conflict_error(server: ServerProcess) -> None:
    result = room_api(server, "peer_limit")
    assert result["first"]["ok"]
    assert result["second"]["error"] == "ConflictError"
    assert result["peers"] == 1


def test_a_deleted_peer_is_gone_and_unknown_peers_raise_not_found_error(server: ServerProcess) -> None:
    result = room_api(server, "delete_peer")
    assert result["delete"]["ok"]
    assert result["peers_after"] == 0
    assert result["delete_unknown"]["error"] == "NotFoundError"
    assert result["refresh_unknown"]["error"] == "NotFoundError"


def test_a_refreshed_token_replaces_the_old_one(server: ServerProcess) -> None:
    result = room_api(server, "refresh_token")
    assert result["webrtc_new"] != result["webrtc_old"]
    assert result["agent_new"] != result["agent_old"]
    assert result["old_token"]["error"] == "AgentAuthError"
    assert result["old_token"]["reason"]
    assert result["new_token"] == {"ok": True, "status": "connected"}


def test_a_vapi_agent_is_created_with_type_vapi(server: ServerProcess) -> None:
    result = room_api(server, "vapi_agent")
    assert result["peer"]["type"] == "vapi"
    assert result["room_peers"] == [result["peer"]]


def test_credentials_are_verified_against_the_server(server: ServerProcess) -> None:
    result = room_api(server, "credentials")
    assert result["check_good"]["ok"]
    assert result["verify_good"] == {"ok": True, "value": "FishjamClient"}
    assert result["check_bad"]["error"] == "InvalidFishjamCredentialsError"
    assert result["verify_bad"]["error"] == "InvalidFishjamCredentialsError"


def test_a_manual_peer_lists_the_peers_and_tracks_it_subscribed_to(server: ServerProcess) -> None:
    result = room_api(server, "manual_subscriptions")
    assert result["published_track_ids"] == [result["track_id"]]
    assert result["subscribe_peer"]["ok"] and result["subscribe_tracks"]["ok"]
    assert result["subscriptions"] == {"peers": [result["publisher_id"]], "tracks": [result["track_id"]]}
    assert result["listed_equals_fetched_with_a_track"]


def test_livestream_tokens_for_a_conference_room_raise_not_found_error(server: ServerProcess) -> None:
    result = room_api(server, "livestream_tokens")
    assert result["viewer"]["error"] == "NotFoundError"
    assert result["streamer"]["error"] == "NotFoundError"
