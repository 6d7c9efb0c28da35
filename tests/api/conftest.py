"""The API suite runs on both stores: the embedded one and Redis (a private redis-server).

A test that is about the embedded store's files (restarts on a data directory, SQLite
failures) says so with ``@pytest.mark.embedded_only`` and runs once.
"""

from __future__ import annotations

import pytest

from tests.conftest import STORES, either_store


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str | None:
    return either_store(request)
