"""benchmarks/conversation.py runs end to end: audio flows both ways, against shoal and the baseline.

The benchmark is the figure for a voice agent's cost; if a change broke one direction (e.g.
the participant no longer tapping its received audio), its table would show zeros or an
error row instead of failing anywhere else. One room for two seconds keeps this cheap.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "conversation.py"
# rooms, CPU/conv, conv/core | up delivered/sent ... | down delivered/sent ...
ROW = re.compile(r"^\s+1\s+[\d.]+%\s+\d+\s+\|\s+(\d+)/(\d+)\s[^|]*\|\s+(\d+)/(\d+)\s")


def rows(output: str) -> dict[str, tuple[int, int, int, int]]:
    """Mode → (up delivered, up sent, down delivered, down sent) of its one-room row."""
    found: dict[str, tuple[int, int, int, int]] = {}
    mode = None
    for line in output.splitlines():
        if line in ("shoal:", "baseline:"):
            mode = line[:-1]
        elif mode is not None and (match := ROW.match(line)):
            up_delivered, up_sent, down_delivered, down_sent = (int(g) for g in match.groups())
            found[mode] = (up_delivered, up_sent, down_delivered, down_sent)
    return found


def test_one_conversation_delivers_both_ways() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--rooms", "1", "--seconds", "2", "--warmup", "1"],
        capture_output=True, text=True, timeout=150, env=env, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    found = rows(run.stdout)
    assert set(found) == {"shoal", "baseline"}, run.stdout
    for mode, (up_delivered, up_sent, down_delivered, down_sent) in found.items():
        assert up_sent > 0 and up_delivered > 0, f"{mode}: participant -> agent {up_delivered}/{up_sent}\n{run.stdout}"
        assert down_sent > 0 and down_delivered > 0, f"{mode}: agent -> participant {down_delivered}/{down_sent}\n{run.stdout}"
    assert "machine: " in run.stdout and "shoal / baseline" in run.stdout
