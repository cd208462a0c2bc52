"""The official JS server SDK (npm ``@fishjam-cloud/js-server-sdk`` 0.25.0) against shoal.

``tests/js/scenario.mjs`` drives a running server with the SDK: REST calls, a
``FishjamWSNotifier`` and two ``FishjamAgent``s (A publishes a 440 Hz pcm16 tone, B
records what it receives). It prints one JSON object; the assertions live here.

The SDK is installed by ``scripts/test.sh`` (``npm ci`` in ``tests/js``). A missing
install is a failure, never a skip: this test is the proof that the JS SDK works.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.audio import dominant_frequency
from tests.support.server import ServerProcess

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SDK_VERSION = "0.25.0"
RATE = 16000
TONE_HZ = 440.0
TONE_SECONDS = 1.0
PEER_KEYS = {"id", "type", "status", "tracks", "metadata", "subscribeMode", "subscriptions"}

Result = dict[str, Any]
Event = tuple[str, ...]


@pytest.fixture(scope="module")
def run(server: ServerProcess) -> Result:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; install Node.js >= 20 to run the JS SDK test", pytrace=False)
    if not (JS_DIR / "node_modules" / "@fishjam-cloud" / "js-server-sdk").is_dir():
        pytest.fail(
            f"{JS_DIR / 'node_modules'} is missing the JS SDK; run scripts/test.sh "
            "(or: cd tests/js && npm ci --no-audit --no-fund)",
            pytrace=False,
        )
    env = {**os.environ, "SHOAL_URL": server.url, "SHOAL_TOKEN": server.token}
    proc = subprocess.run(
        [node, "scenario.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        pytest.fail(
            f"scenario.mjs failed (exit {proc.returncode}):\nstdout: {proc.stdout}\nstderr: {proc.stderr}",
            pytrace=False,
        )
    result: Result = json.loads(lines[-1])
    return result


def events_of(run: Result) -> list[Event]:
    """The notifier's events for this run's room, as (name, peerId[, trackId]) tuples."""
    room_id = run["room"]["id"]
    events: list[Event] = []
    for n in run["notifications"]:
        if n.get("roomId") != room_id:
            continue
        event: Event = (n["event"],)
        if "peerId" in n:
            event += (n["peerId"],)
        if n.get("track"):
            event += (n["track"]["id"],)
        events.append(event)
    return events


def is_subsequence(expected: list[Event], actual: list[Event]) -> bool:
    remaining = iter(actual)
    return all(any(event == seen for seen in remaining) for event in expected)


def test_js_sdk_room_and_peer_calls_get_fishjam_shaped_answers(run: Result) -> None:
    assert run["sdkVersion"] == SDK_VERSION
    rest_errors = [
        e for e in run["errors"] if not e["step"].startswith(("agent", "createAgent", "getRoomAfter"))
    ]
    assert rest_errors == []

    room = run["room"]
    assert isinstance(room["id"], str) and room["id"]
    assert room["peers"] == []
    config = room["config"]
    assert config["maxPeers"] == 10
    assert config["roomType"] == "conference"
    assert config["videoCodec"] == "h264"
    assert config["public"] is False

    peer = run["peer"]
    assert set(peer) == PEER_KEYS
    assert peer["type"] == "webrtc"
    assert peer["status"] == "disconnected"
    assert peer["tracks"] == []
    assert peer["metadata"] == {"peer": {}, "server": {"name": "js-sdk"}}
    assert peer["subscribeMode"] == "auto"
    assert peer["subscriptions"] == {"peers": [], "tracks": []}

    assert isinstance(run["peerToken"], str) and run["peerToken"]
    assert isinstance(run["refreshedToken"], str) and run["refreshedToken"]
    assert run["refreshedToken"] != run["peerToken"]

    fetched = run["fetchedRoom"]
    assert fetched["id"] == room["id"]
    assert fetched["config"] == config
    assert fetched["peers"] == [peer]


def test_js_sdk_agents_exchange_a_tone_and_the_notifier_reports_the_lifecycle(run: Result) -> None:
    assert run["errors"] == []
    assert run["closesBeforeTeardown"] == {"notifier": None, "agents": []}, "server closed a socket early"
    assert run["notifierErrors"] == []

    agent_a, agent_b, track = run["agentA"], run["agentB"], run["trackA"]
    for agent in (agent_a, agent_b):
        assert set(agent) == PEER_KEYS
        assert agent["type"] == "agent"
    room_peers = {p["id"]: p for p in run["roomAfterAgents"]["peers"]}
    assert room_peers[agent_a["id"]]["status"] == "connected"
    assert room_peers[agent_b["id"]]["status"] == "connected"
    assert [t["id"] for t in room_peers[agent_a["id"]]["tracks"]] == [track["id"]]

    received = run["received"]
    assert received["chunks"] > 0, "agent B received no trackData"
    assert received["peerIds"] == [agent_a["id"]]
    assert received["trackIds"] == [track["id"]]
    pcm = np.frombuffer(base64.b64decode(received["pcmBase64"]), dtype="<i2")
    seconds = len(pcm) / RATE
    assert abs(seconds - TONE_SECONDS) <= 0.1, f"received {seconds:.3f} s of audio, sent {TONE_SECONDS} s"
    assert abs(dominant_frequency(pcm, RATE) - TONE_HZ) <= 5

    events = events_of(run)
    room_created, room_deleted = ("roomCreated",), ("roomDeleted",)
    peer_id, a, b = run["peer"]["id"], agent_a["id"], agent_b["id"]
    lifecycles: dict[str, list[Event]] = {
        "webrtc peer": [("peerAdded", peer_id), ("peerDeleted", peer_id)],
        "agent A": [
            ("peerAdded", a),
            ("peerConnected", a),
            ("trackAdded", a, track["id"]),
            ("peerDisconnected", a),
            ("peerDeleted", a),
        ],
        "agent B": [("peerAdded", b), ("peerConnected", b), ("peerDisconnected", b), ("peerDeleted", b)],
    }
    for who, lifecycle in lifecycles.items():
        expected = [room_created, *lifecycle, room_deleted]
        assert is_subsequence(expected, events), f"{who}: expected {expected} in order, notifier saw {events}"
