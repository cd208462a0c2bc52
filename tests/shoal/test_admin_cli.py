"""``shoal room|peer|agent|notifications`` against a real server: output, --json, exit codes, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from shoal.testing.server import stop_process
from tests.support.server import ServerProcess


def shoal(*args: str, server: ServerProcess | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    if server is not None:
        environment.update(SHOAL_URL=server.url, SHOAL_MANAGEMENT_TOKEN=server.token)
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "shoal.cli", *args], capture_output=True, text=True, env=environment, timeout=60)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_room_is_created_listed_shown_with_its_peers_and_deleted(server: ServerProcess) -> None:
    created = shoal("room", "create", "--max-peers", "5", "--json", server=server)
    room = as_json(created)["room"]
    assert room["config"]["maxPeers"] == 5

    table = shoal("room", "list", server=server)
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ROOM", "TYPE", "MAX", "PEERS", "PEERS", "CONNECTED"]
    assert any(row.split()[0] == room["id"] and row.split()[2] == "5" for row in rows)

    peer = as_json(shoal("peer", "create", room["id"], "--metadata", '{"name": "ada"}', "--json", server=server))
    assert peer["token"] and peer["join_url"].startswith(f"{server.url}/demo?room={room['id']}&token=")
    agent = as_json(shoal("agent", "create", room["id"], "--sample-rate", "24000", "--json", server=server))
    assert agent["peer"]["type"] == "agent"

    shown = shoal("room", "show", room["id"], server=server)
    assert shown.returncode == 0
    assert f"{peer['peer']['id']}  webrtc" in shown.stdout and '{"name": "ada"}' in shown.stdout
    assert f"{agent['peer']['id']}  agent" in shown.stdout

    peer_table = shoal("peer", "create", room["id"], server=server)
    assert peer_table.stdout.splitlines()[0].split() == ["PEER", "TOKEN", "JOIN", "URL"]

    deleted = shoal("room", "delete", room["id"], server=server)
    assert deleted.returncode == 0 and f"deleted room {room['id']}" in deleted.stdout
    gone = shoal("room", "show", room["id"], server=server)
    assert gone.returncode == 1
    assert f"Room {room['id']} does not exist (HTTP 404)" in gone.stderr and gone.stdout == ""


def test_errors_have_their_own_exit_codes_and_say_what_went_wrong(server: ServerProcess) -> None:
    bad_token = shoal("room", "list", "--url", server.url, "--token", "not-the-token")
    assert bad_token.returncode == 4 and "refused the management token" in bad_token.stderr

    unknown_room = shoal("peer", "create", "no-such-room", server=server)
    assert unknown_room.returncode == 1 and "HTTP 404" in unknown_room.stderr

    bad_option = shoal("room", "create", "--room-type", "karaoke", server=server)
    assert bad_option.returncode == 1 and "HTTP 400" in bad_option.stderr and "roomType" in bad_option.stderr

    bad_metadata = shoal("peer", "create", "r", "--metadata", "{not json", server=server)
    assert bad_metadata.returncode == 2 and "--metadata is not JSON" in bad_metadata.stderr

    no_token = shoal("room", "list", "--url", server.url)
    assert no_token.returncode == 2 and "SHOAL_MANAGEMENT_TOKEN" in no_token.stderr

    unreachable = shoal("room", "list", "--url", "http://127.0.0.1:9", "--token", "t")
    assert unreachable.returncode == 3 and "cannot reach http://127.0.0.1:9" in unreachable.stderr

    usage = shoal("room", "frobnicate", server=server)
    assert usage.returncode == 2


@pytest.mark.parametrize("as_json_lines", [False, True])
def test_notifications_are_tailed_as_readable_lines(server: ServerProcess, as_json_lines: bool) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    environment.update(SHOAL_URL=server.url, SHOAL_MANAGEMENT_TOKEN=server.token)
    tail = subprocess.Popen(
        [sys.executable, "-m", "shoal.cli", "notifications", *(["--json"] if as_json_lines else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(tail.stdout or []), daemon=True).start()
    try:
        assert tail.stderr is not None
        assert "listening to" in tail.stderr.readline()
        room = as_json(shoal("room", "create", "--json", server=server))["room"]["id"]
        shoal("room", "delete", room, server=server)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(room in line for line in lines) < 2:
            time.sleep(0.05)
    finally:
        stop_process(tail)
    mine = [line for line in lines if room in line]
    if as_json_lines:
        events = [json.loads(line) for line in mine]
        assert [e["type"] for e in events] == ["RoomCreated", "RoomDeleted"]
        assert all(e["room_id"] == room for e in events)
    else:
        assert [line.split()[1] for line in mine] == ["RoomCreated", "RoomDeleted"]
        assert all(f"room_id={room}" in line for line in mine)
