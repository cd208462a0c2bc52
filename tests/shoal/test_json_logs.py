"""``--log-format json`` and ``--access-log``: every line parses, names its room, peer and track as fields,
REST requests get one line each, and every connection ends with one summary line.

A real server, a REST client, a WebRTC participant publishing a tone and an agent hearing it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from fishjam import AgentOptions, AgentOutputOptions, FishjamClient
from shoal.testing import ToneSource, WebRTCPeer, start_server
from shoal.testing.server import ServerProcess


def json_lines(server: ServerProcess) -> list[dict[str, Any]]:
    lines = []
    for number, text in enumerate(server.log_text().splitlines(), 1):
        try:
            line = json.loads(text)
        except ValueError:
            raise AssertionError(f"log line {number} is not JSON: {text!r}") from None
        assert {"ts", "level", "logger", "message"} <= line.keys(), line
        lines.append(line)
    return lines


async def a_call(server: ServerProcess) -> dict[str, str]:
    client = FishjamClient(server.url, server.token)
    room = client.create_room()
    peer, token = client.create_peer(room.id)
    agent = client.create_agent(room.id, AgentOptions(output=AgentOutputOptions(audio_sample_rate=16000)))
    async with agent.connect() as session:
        participant = await WebRTCPeer.join(server.ws_url, token, metadata={"name": "talker"})
        await participant.publish_audio(ToneSource(440))
        heard: list[str] = []
        async for message in session.receive():
            heard.append(message.track.id)  # type: ignore[union-attr]
            if len(heard) == 50:
                break
        track_id = heard[-1]
        await participant.close()
        await asyncio.sleep(0.5)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(httpx.get, f"{server.url}/room/{room.id}", headers={"authorization": "Bearer wrong"})
    client.delete_room(room.id)
    return {"room_id": room.id, "peer_id": peer.id, "agent_id": agent.id, "track_id": track_id}


@pytest.fixture(scope="module")
def logged_call() -> tuple[dict[str, str], list[dict[str, Any]]]:
    """One call on a server logging JSON with the access log: the call's ids and the log's lines."""
    server = start_server(["--log-format", "json", "--access-log"])
    try:
        ids = asyncio.run(a_call(server))
    finally:
        server.stop()
    return ids, json_lines(server)


def test_json_lines_carry_the_ids_of_what_they_are_about(logged_call: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    ids, lines = logged_call
    about = {
        "room_id": [ids["room_id"]],
        "peer_id": [ids["peer_id"], ids["agent_id"]],
        "track_id": [ids["track_id"]],
    }
    checked = 0
    for line in lines:
        for field, values in about.items():
            for value in values:
                if value in line["message"] and not line["logger"].startswith("shoal.access"):
                    checked += 1
                    if field == "peer_id":
                        assert line.get(field) in values, f"{field} missing or wrong on {line}"
                    else:
                        assert line.get(field) == value, f"{field} missing or wrong on {line}"
    assert checked >= 10, f"only {checked} lines named the call's ids"
    for peer_id in (ids["peer_id"], ids["agent_id"]):
        assert any(line.get("peer_id") == peer_id and line.get("room_id") == ids["room_id"] for line in lines)


def test_rest_requests_and_connections_get_one_line_each(logged_call: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    ids, lines = logged_call
    access = [line for line in lines if line["logger"] == "shoal.access"]
    created = [a for a in access if a["method"] == "POST" and a["path"] == "/room"]
    assert len(created) == 1 and created[0]["status"] == 201 and created[0]["duration_ms"] > 0
    peers = [a for a in access if a["path"] == f"/room/{ids['room_id']}/peer"]
    assert [a["status"] for a in peers] == [201, 201] and all(a["room_id"] == ids["room_id"] for a in peers)
    refused = [a for a in access if a["method"] == "GET" and a["status"] == 401]
    assert len(refused) == 1 and refused[0]["room_id"] == ids["room_id"]
    deleted = [a for a in access if a["method"] == "DELETE"]
    assert [a["status"] for a in deleted] == [204]

    summaries = {line["peer_id"]: line for line in lines if line.get("event") == "connection_summary"}
    participant = summaries[ids["peer_id"]]
    assert participant["channel"] == "peer" and participant["room_id"] == ids["room_id"]
    assert participant["ended"] == "client closed the socket"
    assert participant["duration_s"] > 0.5 and participant["packets_received"] >= 50
    assert participant["tracks_published"] == 1
    agent = summaries[ids["agent_id"]]
    assert agent["frames_sent"] >= 50 and agent["frames_dropped"] == 0
    assert agent["ended"] == "client closed the socket"
    assert len([line for line in lines if line.get("event") == "connection_summary"]) == 2
