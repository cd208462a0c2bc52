"""PreAuthGate: how many sockets each remote address may hold open before authenticating.

A socket costs memory and a task from its handshake on, but proves nothing until its first
frame authenticates it (bounded in time by ``--auth-timeout``). Without a bound per address,
one client can open sockets faster than the timeout retires them. The gate counts sockets
per remote address from accept until the first frame has been read; beyond ``limit`` a new
socket is closed at once with 1013 and a reason, counted, and logged once per interval.

The address is the TCP peer the server sees: behind a reverse proxy every client shares the
proxy's address, so raise the limit there (or set it to 0: no limit).
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from shoal.net.demux import OnceLog

log = logging.getLogger(__name__)


class PreAuthGate:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        """Unauthenticated sockets allowed per address; 0: no limit."""
        self._open: Counter[str] = Counter()
        self.refused = 0
        self._log = OnceLog(log.warning, time.monotonic)

    def admit(self, address: str) -> bool:
        """Count a new socket from ``address``; False (nothing counted) when it is over the limit."""
        if self.limit and self._open[address] >= self.limit:
            self.refused += 1
            self._log.note(
                "too_many_unauthenticated",
                lambda: f"socket from {address} refused: it already has {self.limit} sockets that have not "
                "authenticated (--max-unauthenticated-per-ip)",
            )
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        """The socket from ``address`` authenticated, failed to, or went away."""
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]  # the table holds only addresses with sockets waiting

    def waiting(self, address: str) -> int:
        return self._open.get(address, 0)
