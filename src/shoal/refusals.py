"""Refusals: every request refused for going over a limit, counted per cause and logged once per cause.

Going over a limit is an error the client sees (400/413/431/…, a close reason); the
operator sees it here: ``GET /limits/stats`` lists the counts, and the log has one line
per cause (then one summary per minute), never one per request — a flood of bad requests
must not become a flood of log. Causes are names chosen by the code (``"http.header_bytes"``,
``"metadata.depth"``), never client text; messages carry client-supplied values only
through ``shoal.logtext.clip``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from shoal.net.demux import OnceLog

log = logging.getLogger("shoal.limits")

Report = Callable[[str, str], None]
"""``report(cause, message)``: how sans-I/O code tells the server it refused something."""


class Refusals:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = OnceLog(log.warning, clock)

    def note(self, cause: str, message: str | Callable[[], str]) -> None:
        """Count one refusal of ``cause``; log ``message`` if the cause is new (or a minute has passed)."""
        self._log.note(cause, message)

    def counts(self) -> dict[str, int]:
        return dict(sorted(self._log.counts.items()))
