"""Fixtures of the network tests: root and the tools are required (a failure, never a skip); a lab per test."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from tests.browser.conftest import page_bundles  # noqa: F401  (the browser tests' page bundles)
from tests.net.netns import NetLab, check_privileges, remove_stale


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def network_namespaces() -> Iterator[None]:
    """Fail every network test clearly where namespaces cannot be made; remove killed runs' leftovers.

    While these tests run, SIGTERM interrupts like Ctrl-C, so fixture teardown still removes the
    namespaces (SIGKILL cannot be caught: the next run's ``remove_stale`` does it then).
    """
    problem = check_privileges()
    if problem is not None:
        pytest.fail(f"{problem}. CI runs these tests as root.", pytrace=False)
    remove_stale()
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[NetLab]:
    """The namespaces and processes of one test, removed afterwards whatever happened."""
    with NetLab(request.node.name) as net_lab:
        yield net_lab
