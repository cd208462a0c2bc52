"""Run the scenario scripts in ``official/`` under the official SDK's own interpreter.

The official ``fishjam-server-sdk`` imports as ``fishjam``, like our SDK, so it lives in
its own virtualenv (``FISHJAM_OFFICIAL_PYTHON``, default ``.venv-official/bin/python``).
A missing interpreter is a test failure, never a skip: these tests are the proof that
the official SDK works against shoal.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.official_sdk import SETUP_HINT, official_python
from tests.support.server import ServerProcess

SCENARIOS = Path(__file__).with_name("official")

Result = dict[str, Any]


def run_scenario(
    script: str,
    scenario: str,
    server: ServerProcess,
    *,
    timeout: float = 60,
    stdin: str | None = None,
    **params: Any,
) -> Result:
    """Run ``official/<script>.py <scenario>`` against ``server``; return the JSON it printed."""
    python = official_python()
    args = json.dumps({"url": server.url, "token": server.token, **params})
    # -E ignores PYTHONPATH and friends, -s the user site: only the official venv's packages
    # and the scenario directory itself are importable, never our own ``fishjam``.
    command = [str(python), "-E", "-s", str(SCENARIOS / f"{script}.py"), scenario, args]
    try:
        proc = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tempfile.gettempdir(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"scenario {script}.py {scenario} did not finish within {timeout} s:\n{stderr}", pytrace=False)
    if proc.returncode != 0:
        hint = f"\n{python} lacks the official SDK; {SETUP_HINT}" if "ModuleNotFoundError" in proc.stderr else ""
        pytest.fail(
            f"scenario {script}.py {scenario} failed (exit {proc.returncode}):\n{proc.stderr}{hint}",
            pytrace=False,
        )
    lines = proc.stdout.strip().splitlines()
    if not lines:
        pytest.fail(f"scenario {script}.py {scenario} printed nothing:\n{proc.stderr}", pytrace=False)
    result: Result = json.loads(lines[-1])
    return result
