"""Fixtures for the browser tests: the page is bundled once per test session; a server per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.harness import PageFailure, build_page
from tests.support.server import ServerProcess, start_server


@pytest.fixture(scope="session")
def page_bundles() -> None:
    """Bundle page/main.js for every ts-client version under test (a missing install fails, never skips)."""
    try:
        build_page()
    except PageFailure as failure:
        message = str(failure)
    else:
        return
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="module")
def shoal() -> Iterator[ServerProcess]:
    """A server of each test module's own, so the log in a failure message is that module's."""
    proc = start_server()
    try:
        yield proc
    finally:
        proc.stop()
