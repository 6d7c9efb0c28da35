"""Fixtures for the hardening tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import httpx
import pytest
import trio

from tests.conftest import RunningServer, start_server
from trio_chat.config import Config


@pytest.fixture
async def tuned_server(
    nursery: trio.Nursery, config: Config
) -> AsyncIterator[Callable[..., Awaitable[tuple[RunningServer, httpx.AsyncClient]]]]:
    """Start a server whose Config differs from the test default in any field.

    (``@pytest.mark.config`` cannot override the fields the shared ``config`` fixture sets
    itself, such as ``request_timeout``.)
    """
    started: list[tuple[RunningServer, httpx.AsyncClient]] = []

    async def start(**overrides: Any) -> tuple[RunningServer, httpx.AsyncClient]:
        server = await start_server(nursery, attrs.evolve(config, **overrides))
        client = httpx.AsyncClient(base_url=server.url, timeout=30)
        started.append((server, client))
        return server, client

    yield start
    for server, client in started:
        await client.aclose()
        server.server.shutdown()
