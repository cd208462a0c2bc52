"""PlayoutTrace: an optional record of when each frame of each track was scheduled.

Off by default. Benchmarks turn it on (``--trace-playout FILE``) to measure latency from
a frame's scheduled playout time to its arrival at a receiving agent; the monotonic
clock is shared by processes on one machine, so both sides can be compared.
"""

from __future__ import annotations

from pathlib import Path

MAX_ROWS = 5_000_000
"""About 100 MB of rows at most; later frames are not recorded."""


class PlayoutTrace:
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._rows: list[tuple[str, int, float]] = []

    def record(self, track_id: str, index: int, deadline: float) -> None:
        if len(self._rows) < MAX_ROWS:
            self._rows.append((track_id, index, deadline))

    def dump(self) -> None:
        with self.path.open("w") as out:
            for track_id, index, deadline in self._rows:
                out.write(f"{track_id} {index} {deadline:.6f}\n")
