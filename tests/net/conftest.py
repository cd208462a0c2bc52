"""Fixtures of the network tests: root and the tools are required (a failure, never a skip); a lab per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import page_bundles  # noqa: F401  (the browser tests' page bundles)
from tests.net.netns import NetLab, check_privileges, remove_stale


@pytest.fixture(scope="session", autouse=True)
def network_namespaces() -> None:
    """Fail every network test clearly where namespaces cannot be made; remove killed runs' leftovers."""
    problem = check_privileges()
    if problem is not None:
        pytest.fail(f"{problem}. CI runs these tests as root.", pytrace=False)
    remove_stale()


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[NetLab]:
    """The namespaces and processes of one test, removed afterwards whatever happened."""
    with NetLab(request.node.name) as net_lab:
        yield net_lab
