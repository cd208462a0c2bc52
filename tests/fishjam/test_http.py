"""REST transport: error mapping, headers, deprecation notices, request validation."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import httpx
import pytest

from fishjam import FishjamClient, InvalidFishjamCredentialsError, RoomOptions
from fishjam import errors as fj_errors
from fishjam.version import __version__

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler) -> FishjamClient:
    return FishjamClient("http://api.test", "secret", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, fj_errors.BadRequestError),
        (401, fj_errors.UnauthorizedError),
        (402, fj_errors.QuotaExceededError),
        (404, fj_errors.NotFoundError),
        (409, fj_errors.ConflictError),
        (422, fj_errors.BadRequestError),
        (500, fj_errors.InternalServerError),
        (418, fj_errors.InternalServerError),
        (503, fj_errors.ServiceUnavailableError),
    ],
)
def test_status_maps_to_error(status: int, error: type[fj_errors.HTTPError]) -> None:
    client = client_for(lambda _r: httpx.Response(status, json={"errors": f"failed with {status}"}))
    with pytest.raises(error) as caught:
        client.delete_room("r")
    assert str(caught.value) == f"failed with {status}"
    assert isinstance(caught.value, fj_errors.HTTPError)


def test_error_message_falls_back_to_raw_body() -> None:
    client = client_for(lambda _r: httpx.Response(502, content=b"Bad Gateway"))
    with pytest.raises(fj_errors.InternalServerError, match="^Bad Gateway$"):
        client.get_all_rooms()
    odd = client_for(lambda _r: httpx.Response(400, json={"detail": ["x"]}))
    with pytest.raises(fj_errors.BadRequestError, match="detail"):
        odd.get_all_rooms()


def test_every_request_is_authenticated_and_identified() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    client_for(handler).delete_peer("room/1", "peer 2")
    request = seen[0]
    assert request.headers["authorization"] == "Bearer secret"
    assert request.headers["x-fishjam-api-client"] == f"python-server/{__version__}"
    assert request.url.raw_path == b"/room/room%2F1/peer/peer%202"
    assert "content-type" not in request.headers


def test_redirects_are_not_followed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"location": "http://api.test/room/"})

    with pytest.raises(fj_errors.InternalServerError, match="redirect to http://api.test/room/"):
        client_for(handler).get_all_rooms()
    assert len(seen) == 1


def test_check_credentials() -> None:
    calls: list[str] = []

    def ok(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200)

    FishjamClient("http://api.test", "t", transport=httpx.MockTransport(ok)).check_credentials()
    assert calls == ["/validate"]
    with pytest.raises(InvalidFishjamCredentialsError, match="Invalid Fishjam credentials"):
        client_for(lambda _r: httpx.Response(404)).check_credentials()
    with pytest.raises(fj_errors.UnauthorizedError):
        client_for(lambda _r: httpx.Response(401, json={"errors": "no"})).check_credentials()


def _deprecated(value: str) -> Handler:
    room = {"id": "r", "config": {}, "peers": []}
    return lambda _r: httpx.Response(200, json={"data": room}, headers={"x-fishjam-api-deprecated": value})


def test_deprecation_notice_warns_once_per_client() -> None:
    client = client_for(_deprecated(json.dumps({"status": "deprecated", "message": "upgrade"})))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.get_room("r")
        client.get_room("r")
    assert [(w.category, str(w.message)) for w in caught] == [(DeprecationWarning, "upgrade")]
    assert caught[0].filename == __file__, "the warning should point at the caller"


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        json.dumps({"status": "deprecated"}),
        json.dumps(["x"]),
        json.dumps({"status": "other", "message": "m"}),
    ],
)
def test_odd_deprecation_notices_are_ignored(value: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client_for(_deprecated(value)).get_room("r")
    assert caught == []


def test_invalid_room_options_fail_before_sending() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    client = client_for(handler)
    with pytest.raises(ValueError):
        client.create_room(RoomOptions(video_codec="h420"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        client.create_room(RoomOptions(room_type="party"))  # type: ignore[arg-type]
    assert sent == []
