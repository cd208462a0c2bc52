"""Tests use the public harness in ``shoal.testing``, with one test-only default.

Test servers tolerate a 2 s playout lag (``SHOAL_PLAYOUT_MAX_LAG``) instead of 0.2 s: on a
loaded CI machine a server process can be descheduled for a few hundred ms, and the default
policy then drops the late audio — right for a call, but it would make every test that waits
for all of a track's samples flaky. Tests of the catch-up pass ``--playout-max-lag`` themselves.
"""

from __future__ import annotations

from shoal.testing import ServerProcess, free_port
from shoal.testing import start_server as _start_server

__all__ = ["ServerProcess", "free_port", "start_server"]

TEST_MAX_LAG_S = "2"


def start_server(
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    token: str | None = None,
    port: int | None = None,
) -> ServerProcess:
    return _start_server(extra_args, {"SHOAL_PLAYOUT_MAX_LAG": TEST_MAX_LAG_S, **(env or {})}, token, port)
