"""Livestream tokens and MoQ access through the official SDK.

shoal does not implement livestreams or MoQ yet (see the README); until it does, these
calls must fail clearly — a 501 whose message says what is missing — while validation
and authentication still behave as the official SDK's own tests expect (rest-api.md §8.1).
"""

from __future__ import annotations

from tests.compat.runner import run_scenario
from tests.support.server import ServerProcess


def test_livestream_tokens_for_a_livestream_room_are_refused_as_not_implemented(server: ServerProcess) -> None:
    result = run_scenario("room_api", "livestream_room_tokens", server)
    assert result["public"] is True
    for kind in ("viewer", "streamer"):
        refused = result[kind]
        assert not refused["ok"] and refused["error"] == "InternalServerError", refused
        assert "livestreams are not implemented" in refused["message"], refused


def test_moq_access_without_paths_raises_bad_request_and_with_a_bad_token_unauthorized(server: ServerProcess) -> None:
    result = run_scenario("room_api", "moq_access", server)
    assert result["no_params"]["error"] == "BadRequestError"
    assert result["bad_token"]["error"] == "UnauthorizedError"


def test_moq_access_with_paths_is_refused_as_not_implemented(server: ServerProcess) -> None:
    result = run_scenario("room_api", "moq_access", server)
    for case in ("publish", "subscribe", "both"):
        refused = result[case]
        assert not refused["ok"] and refused["error"] == "InternalServerError", f"{case}: {refused}"
        assert "MoQ access is not implemented" in refused["message"], case
