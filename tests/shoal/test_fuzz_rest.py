"""schemathesis over a live server's ``/openapi.json``: no request gets a 5xx, every 4xx says why.

Every operation the server documents is called with requests schemathesis generates from
the schema, both valid ones (positive) and ones that break it (negative: wrong types,
missing fields, extra fields), with random path ids and with the ids of a live room and
peer (so requests get past "no such room" into the handlers), with the management token
and sometimes with a wrong or missing one. Then requests the schema does not describe:
other methods on every path, unknown paths. Each answer must be below 500, and each 4xx
must carry the error body the official SDKs read, ``{"errors": "<string>"}`` — except
``/validate``, whose 404 for a bad token has no body, as Fishjam's.

The server is this module's own (the run creates and deletes rooms and peers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from shoal.testing import ServerProcess, start_server
from tests.support.fuzz import FUZZ, hostile_text, json_values

REST_EXAMPLES = 25
"""Examples per operation and generation mode (15 operations × 2 modes × 25 ≈ 750 requests)."""

ERROR_FREE = {("GET", "/validate", 404)}
"""Answers whose empty body is part of the protocol (spec §4.1)."""


@pytest.fixture(scope="module")
def live() -> Iterator[ServerProcess]:
    server = start_server(["--log-level", "warning"])
    try:
        yield server
    finally:
        server.stop()


class Ids:
    """A live room with one peer, remade when a generated request deletes them."""

    def __init__(self, server: ServerProcess) -> None:
        self._http = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {server.token}"}, timeout=10)
        self.room_id = self.peer_id = ""
        self.refresh()

    def refresh(self) -> None:
        if self.room_id and self._http.get(f"/room/{self.room_id}").status_code == 200:
            peers = self._http.get(f"/room/{self.room_id}").json()["data"]["peers"]
            if any(p["id"] == self.peer_id for p in peers):
                return
        self.room_id = self._http.post("/room", json={}).json()["data"]["room"]["id"]
        body = {"type": "webrtc", "options": {}}
        self.peer_id = self._http.post(f"/room/{self.room_id}/peer", json=body).json()["data"]["peer"]["id"]

    def for_operation(self, path: str) -> dict[str, str]:
        known = {"room_id": self.room_id, "peer_id": self.peer_id}
        return {name: value for name, value in known.items() if "{" + name + "}" in path}


def check_answer(method: str, path: str, status: int, body: bytes, request: str) -> None:
    # 501 is a deliberate refusal (MoQ is not implemented), not a failure: it too needs the error body.
    assert status < 500 or status == 501, f"{request} → {status}: {body[:300]!r}"
    if 400 <= status < 600 and (method, path, status) not in ERROR_FREE:
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        assert isinstance(parsed, dict) and isinstance(parsed.get("errors"), str), (
            f"{request} → {status} without an {{'errors': str}} body: {body[:300]!r}"
        )


def operations(server: ServerProcess) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 10, "the schema lists too few operations to be shoal's"
    return found


def auth_headers(server: ServerProcess) -> st.SearchStrategy[dict[str, str]]:
    good = {"authorization": f"Bearer {server.token}"}
    bad = st.sampled_from([{"authorization": "Bearer wrong"}, {}, {"authorization": server.token}])
    return st.one_of(st.just(good), st.just(good), st.just(good), st.just(good), st.just(good), bad)


@pytest.fixture(scope="module")
def ids(live: ServerProcess) -> Ids:
    return Ids(live)


def fuzz_operation(server: ServerProcess, ids: Ids, operation: Any, mode: GenerationMode, session: requests.Session) -> None:
    method = operation.method.upper()
    raw = operation.definition.raw
    breakable = raw.get("requestBody") or any(p["in"] != "path" for p in raw.get("parameters", []))
    if mode is GenerationMode.NEGATIVE and not breakable:
        return  # any string is a valid path id: nothing the schema constrains, so nothing to break
    strategy = st.one_of(
        operation.as_strategy(generation_mode=mode),
        st.builds(lambda: ids.for_operation(operation.path)).flatmap(
            lambda known: operation.as_strategy(generation_mode=mode, path_parameters=known)
        ),
    )

    @settings(FUZZ, max_examples=REST_EXAMPLES)
    @given(case=strategy, headers=auth_headers(server))
    def call(case: Any, headers: dict[str, str]) -> None:
        response = case.call(base_url=server.url, session=session, headers=headers, timeout=10)
        check_answer(method, operation.path, response.status_code, response.content, case.as_curl_command(headers=headers))
        if method == "DELETE":
            ids.refresh()

    call()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_every_documented_operation_answers_below_500_with_the_error_shape(
    live: ServerProcess, ids: Ids, mode: GenerationMode
) -> None:
    with requests.Session() as session:
        for operation in operations(live):
            fuzz_operation(live, ids, operation, mode, session)


@pytest.fixture(scope="module")
def known_paths(live: ServerProcess) -> list[str]:
    return list(httpx.get(f"{live.url}/openapi.json").json()["paths"])


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_undocumented_methods_paths_and_bodies_answer_below_500_with_the_error_shape(
    live: ServerProcess, ids: Ids, known_paths: list[str], data: Any
) -> None:
    real = data.draw(st.booleans())
    template = data.draw(st.sampled_from(known_paths) | hostile_text().map(lambda t: "/" + t[:200]))
    path = template.replace("{room_id}", ids.room_id if real else "r").replace("{peer_id}", ids.peer_id if real else "p")
    method = data.draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))
    body = data.draw(st.one_of(st.none(), st.binary(max_size=200), hostile_text().map(str.encode)))
    content_type = data.draw(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]))
    headers = {"authorization": f"Bearer {live.token}", **({"content-type": content_type} if content_type else {})}
    try:
        response = httpx.request(method, live.url + path, content=body, headers=headers, timeout=10)
    except httpx.InvalidURL:
        return  # not a request any client can send (httpx refuses it before the socket)
    check_answer(method, template, response.status_code, response.content, f"{method} {path!r} body={body!r:.100}")


def deep(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


hostile_metadata = st.one_of(
    json_values(max_leaves=40),
    st.builds(deep, st.integers(1, 900), st.sampled_from(["list", "dict"])),  # deeper: json.dumps in the client fails
    hostile_text(),
)


@settings(FUZZ, max_examples=60)
@given(metadata=hostile_metadata)
def test_hostile_peer_metadata_never_breaks_the_room_listing(live: ServerProcess, metadata: Any) -> None:
    """Whatever metadata one peer is created with, its room and the listing still answer.

    Each example has a room of its own, deleted at the end, so one example's damage does not
    show up in the next one.
    """
    http = httpx.Client(base_url=live.url, headers={"authorization": f"Bearer {live.token}"}, timeout=10)
    described = f"metadata {json.dumps(metadata)[:120]}"

    def send(method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise AssertionError(f"{method} {path} after a peer with {described}: connection failed ({exc!r})") from exc

    with http:
        room_id = send("POST", "/room", json={}).json()["data"]["room"]["id"]
        try:
            body = {"type": "webrtc", "options": {"metadata": {"m": metadata}}}  # the API takes an object
            created = send("POST", f"/room/{room_id}/peer", json=body)
            check_answer("POST", "/room/{room_id}/peer", created.status_code, created.content, f"POST peer with {described}")
            for path in (f"/room/{room_id}", "/room"):
                listed = send("GET", path)
                check_answer("GET", path, listed.status_code, listed.content, f"GET {path} after a peer with {described}")
                assert listed.status_code == 200
        finally:
            delete_room(live, room_id)


def delete_room(server: ServerProcess, room_id: str) -> None:
    """Delete a room over a new connection (the last one may have been reset), retrying once."""
    for attempt in range(2):
        try:
            httpx.delete(f"{server.url}/room/{room_id}", headers={"authorization": f"Bearer {server.token}"}, timeout=10)
            return
        except httpx.TransportError:
            if attempt:
                raise
