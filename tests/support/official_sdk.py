"""Where the official ``fishjam-server-sdk`` lives for the tests, and how to get it.

It imports as ``fishjam`` like our SDK, so it has its own virtualenv
(``FISHJAM_OFFICIAL_PYTHON``, default ``.venv-official/bin/python``). A missing
interpreter is a test failure with this hint, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OFFICIAL_REQUIREMENT = (REPO / "requirements" / "official-sdk.txt").read_text().strip()
OFFICIAL_VERSION = OFFICIAL_REQUIREMENT.partition("==")[2]
SETUP_HINT = (
    "run scripts/test.sh, which creates it with the locked versions "
    "(or point FISHJAM_OFFICIAL_PYTHON at an interpreter that has "
    f"{OFFICIAL_REQUIREMENT})"
)


def official_python() -> Path:
    """The official SDK's interpreter; fails the test with ``SETUP_HINT`` if it is missing."""
    configured = os.environ.get("FISHJAM_OFFICIAL_PYTHON")
    python = Path(configured) if configured else REPO / ".venv-official" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"official SDK interpreter {python} is missing; {SETUP_HINT}", pytrace=False)
    return python
