"""The lock (requirements/lock.txt) agrees with the ranges in pyproject.toml.

Fails when a dependency is added to or narrowed in pyproject.toml without refreshing the lock
(scripts/lock.sh), and when the official SDK's pin and the lock disagree.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from scripts.check_lock import canonical, problems, read_lock
from tests.support.official_sdk import official_python

ROOT = Path(__file__).resolve().parent.parent


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return [Requirement(line) for line in lines]


def test_every_declared_dependency_is_locked_within_its_range() -> None:
    pins = read_lock()
    for requirement in declared():
        name = canonical(requirement.name)
        assert name in pins, f"{requirement} is not in requirements/lock.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"the lock pins {name}=={pins[name]}, outside pyproject's {requirement}"
        )


def test_our_httpx_range_is_the_official_sdks() -> None:
    """Both SDKs send httpx's User-Agent, which the wire-identity tests compare byte for byte:
    a user installing either against its range must get an httpx the other also accepts."""
    script = "import importlib.metadata as m; print('\\n'.join(m.requires('fishjam-server-sdk')))"
    out = subprocess.run([str(official_python()), "-c", script], check=True, capture_output=True, text=True)
    theirs = next(Requirement(line) for line in out.stdout.splitlines() if Requirement(line).name == "httpx")
    ours = next(r for r in declared() if r.name == "httpx")
    assert ours.specifier == theirs.specifier, f"ours: {ours}, fishjam-server-sdk: {theirs}"
    assert ours.specifier.contains(read_lock()["httpx"])


def test_drift_is_reported() -> None:
    pins = {"httpx": "0.28.1", "numpy": "2.4.6"}
    assert problems(pins, {"httpx": "0.28.1", "numpy": "2.4.6", "shoal": "0.1.0"}) == []
    assert problems(pins, {"httpx": "0.29.0", "numpy": "2.4.6"}) == [
        "httpx==0.29.0 is installed but the lock pins 0.28.1"
    ]
    assert problems(pins, {"httpx": "0.28.1", "numpy": "2.4.6", "redis": "6.0.0"}) == [
        "redis==6.0.0 is installed but not in the lock"
    ]
