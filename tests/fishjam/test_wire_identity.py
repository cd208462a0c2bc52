"""Our SDK must put the same bytes on the wire as the official ``fishjam-server-sdk``.

Both SDKs are importable only as ``fishjam``, so the official one runs in its own
interpreter: ``official_wire.py`` records a fixed scenario there and prints it as JSON,
and the same scenario is recorded in-process with our SDK. Set
``FISHJAM_OFFICIAL_PYTHON`` to use an interpreter other than ``.venv-official``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fishjam.official_wire import ERROR_CASES, collect, rest_calls
from tests.support.official_sdk import OFFICIAL_VERSION, REPO, SETUP_HINT, official_python

SCRIPT = Path(__file__).with_name("official_wire.py")
# Statuses the official generated client documents for GET /room/{id}; only for these
# does it extract the "errors" string (for the rest it reports the raw body).
DOCUMENTED_GET_ROOM_ERRORS = {"400", "401", "404", "503"}


@pytest.fixture(scope="module")
def official() -> dict[str, Any]:
    python = official_python()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    # -I keeps our source tree (and any PYTHONPATH) out of the official interpreter.
    proc = subprocess.run(
        [str(python), "-I", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tempfile.gettempdir(),
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"official_wire.py failed under {python}:\n{proc.stderr}\n{SETUP_HINT}", pytrace=False)
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


@pytest.fixture(scope="module")
def ours() -> dict[str, Any]:
    # A private thread keeps this event loop apart from pytest-asyncio's loops.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, collect()).result(timeout=180)


def test_official_side_really_is_the_official_sdk(official: dict[str, Any], ours: dict[str, Any]) -> None:
    assert official["sdk"]["version"] == OFFICIAL_VERSION
    assert str(REPO / "src") not in official["sdk"]["module"]
    assert ours["sdk"]["module"].startswith(str(REPO / "src"))


def _frame_diff(name: str, mine: list[str], theirs: list[str]) -> str:
    lines = [f"{name}: {len(mine)} frames from us, {len(theirs)} from the official SDK"]
    for index in range(max(len(mine), len(theirs))):
        a = mine[index] if index < len(mine) else "<none>"
        b = theirs[index] if index < len(theirs) else "<none>"
        if a != b:
            lines.append(f"  frame {index}: ours {a}\n            official {b}")
    return "\n".join(lines)


def test_agent_frames_identical(official: dict[str, Any], ours: dict[str, Any]) -> None:
    mine, theirs = ours["agent"], official["agent"]
    assert mine["paths"] == theirs["paths"] == ["/socket/agent/websocket"]
    assert mine["frames"] == theirs["frames"], _frame_diff("agent", mine["frames"], theirs["frames"])
    assert mine["track_ids"] == theirs["track_ids"]


def test_agent_receive_yields_the_same_messages(official: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["agent_incoming"]["received"] == official["agent_incoming"]["received"]
    # The official iterator lets ConnectionClosedOK escape; ours simply ends.
    assert ours["agent_incoming"]["outcome"] == "returned"


def test_agent_auth_failure_identical(official: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["agent_auth_failure"] == official["agent_auth_failure"]


def test_notifier_handshake_and_dispatch_identical(official: dict[str, Any], ours: dict[str, Any]) -> None:
    mine, theirs = ours["notifier"], official["notifier"]
    assert mine["paths"] == theirs["paths"] == ["/socket/server/websocket"]
    assert mine["frames"] == theirs["frames"], _frame_diff("notifier", mine["frames"], theirs["frames"])
    assert mine["received"] == theirs["received"]
    # Official: ConnectionClosedOK escapes connect(); ours returns on a normal close.
    assert mine["outcome"] == "returned"


def test_notifier_without_handler_only_authenticates(official: dict[str, Any], ours: dict[str, Any]) -> None:
    mine, theirs = ours["notifier_no_handler"], official["notifier_no_handler"]
    assert mine["frames"] == theirs["frames"]
    assert len(mine["frames"]) == 1
    # Official: RuntimeError("Notification handler is not defined"); ours idles until closed.
    assert mine["outcome"] == "returned"


def test_notifier_bad_token_identical(official: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["notifier_bad_token"] == official["notifier_bad_token"]


@pytest.mark.parametrize("call", [name for name, _ in rest_calls(None)])
def test_rest_request_identical(call: str, official: dict[str, Any], ours: dict[str, Any]) -> None:
    mine, theirs = ours["rest"][call], official["rest"][call]
    assert len(mine["requests"]) == len(theirs["requests"]) == 1
    for key in ("method", "path", "query", "content_type", "body", "headers"):
        assert mine["requests"][0][key] == theirs["requests"][0][key], key
    assert mine["result"] == theirs["result"]


def test_agent_socket_urls_identical(official: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["agent_urls"] == official["agent_urls"]


@pytest.mark.parametrize("status", [str(status) for status, _, _ in ERROR_CASES] + ["validate_404"])
def test_error_mapping(status: str, official: dict[str, Any], ours: dict[str, Any]) -> None:
    mine, theirs = ours["errors"][status], official["errors"][status]
    assert mine["raised"] == theirs["raised"]
    if status in DOCUMENTED_GET_ROOM_ERRORS or not theirs["message"].startswith("{"):
        assert mine["message"] == theirs["message"]
    else:
        # Where the official client shows the raw JSON body, we show its "errors" field.
        assert mine["message"] == json.loads(theirs["message"])["errors"]


def test_deprecation_warnings_identical(official: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["deprecation"] == official["deprecation"]
