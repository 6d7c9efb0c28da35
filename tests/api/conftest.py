"""The API suite runs on both stores: the embedded one and Redis (a private redis-server).

A test that is about the embedded store's files (restarts on a data directory, SQLite
failures) says so with ``@pytest.mark.embedded_only`` and runs once.
"""

from __future__ import annotations

import pytest


@pytest.fixture(params=["embedded", "redis"])
def store(request: pytest.FixtureRequest) -> str | None:
    if request.param == "embedded":
        return None
    if request.node.get_closest_marker("embedded_only"):
        pytest.skip("about the embedded store")
    url: str = request.getfixturevalue("redis_url")
    return url
