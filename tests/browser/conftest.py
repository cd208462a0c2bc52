"""Fixtures for the browser tests: the page is bundled once per test session."""

from __future__ import annotations

import pytest

from tests.browser.harness import PageFailure, build_page


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
