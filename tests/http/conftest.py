"""The ``server`` fixture: the HTTP layer alone, with the test router, on port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from tests.http.helpers import Server, start
from trio_chat.config import Config


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[Server]:
    config = Config(port=0, max_body_size=1000, max_head_size=2048, request_timeout=5)
    running = await start(nursery, config)
    yield running
    await running.close()
