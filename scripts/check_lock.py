"""Fail when a venv holds a package that requirements/lock.txt does not pin at that version.

Usage: check_lock.py PYTHON [PYTHON ...]. Run by scripts/test.sh after installing, so a
dependency added to pyproject.toml without refreshing the lock (scripts/lock.sh) is caught
on the machine that added it, not by a user's install months later.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements" / "lock.txt"
UNLOCKED = {"shoal", "fishjam-server-sdk"}  # the project itself and the SDK it compares against


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def installed(python: str) -> dict[str, str]:
    out = subprocess.run(
        [python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        check=True, capture_output=True, text=True,
    ).stdout
    return {canonical(p["name"]): p["version"] for p in json.loads(out)}


def problems(pins: dict[str, str], packages: dict[str, str]) -> list[str]:
    found = []
    for name, version in sorted(packages.items()):
        if name in UNLOCKED:
            continue
        if name not in pins:
            found.append(f"{name}=={version} is installed but not in the lock")
        elif pins[name] != version:
            found.append(f"{name}=={version} is installed but the lock pins {pins[name]}")
    return found


def main(argv: list[str]) -> int:
    pins = read_lock()
    failed = False
    for python in argv:
        for problem in problems(pins, installed(python)):
            print(f"{python}: {problem}", file=sys.stderr)
            failed = True
    if failed:
        print("refresh the lock with scripts/lock.sh and commit requirements/lock.txt", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
