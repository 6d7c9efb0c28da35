"""Shared fixtures: a real server listening on port 0, and clients that talk to it.

``chat_server`` runs the whole server (store, service, HTTP) inside the test's own Trio
run, so tests can use ``mock_clock`` to move time and still talk to it over real sockets.
(Autojump is avoided: it would jump time while a test merely waits for a disk write.)
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from trio_chat.app import ChatServer
from trio_chat.clock import Clock
from trio_chat.config import Config

from .redis_server import RedisServer

# A cheap scrypt cost keeps hundreds of registrations fast; the hashing code is the same.
TEST_SCRYPT_N = 2**4
PASSWORD = "correct horse"

# Every test runs in this zone, whatever the machine's: UTC+05:45 (no DST), so code that mixes up
# local time and UTC fails everywhere, not only on some machines. A POSIX rule: no tz database.
TEST_TZ = "<+0545>-5:45"


@pytest.fixture(autouse=True)
def _pinned_time_zone() -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = TEST_TZ
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for the session. Without one installed the tests that need it
    skip, except in CI (``CI`` set), where a skipped store would hide a failure."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """An empty Redis database for this test."""
    redis_server.flush()
    return redis_server.url


def either_store(request: pytest.FixtureRequest) -> str | None:
    """For a ``store`` fixture with ``params=STORES``: None (embedded) or an empty Redis."""
    if request.param == "embedded":
        return None
    if request.node.get_closest_marker("embedded_only"):
        pytest.skip("about the embedded store")
    url: str = request.getfixturevalue("redis_url")
    return url


STORES = ["embedded", "redis"]


@pytest.fixture
def store() -> str | None:
    """The store the test server runs on: None is the embedded one. ``tests/api`` runs every
    test on both (see its conftest)."""
    return None


@pytest.fixture
def config(data_dir: Path, store: str | None, request: pytest.FixtureRequest) -> Config:
    """The test server's settings; ``@pytest.mark.config(field=value)`` overrides any."""
    marker = request.node.get_closest_marker("config")
    overrides = marker.kwargs if marker else {}
    fields: dict[str, Any] = {
        "port": 0,
        "data_dir": data_dir,
        "scrypt_n": TEST_SCRYPT_N,
        # Under MockClock these only move when a test jumps the clock; keep them out of the way.
        "keepalive_timeout": 10**6,
        "request_timeout": 10**6,
        # Tests jump the clock by hours: messages live for ever unless a test says otherwise.
        "message_ttl": 0,
        "store": store,
    }
    return Config(**{**fields, **overrides})


@attrs.define
class RunningServer:
    server: ChatServer
    host: str
    port: int
    stopped: trio.Event

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def service(self) -> Any:
        return self.server.service

    async def stop(self) -> None:
        """Graceful shutdown, as on SIGTERM; returns once the server has stopped."""
        self.server.shutdown()
        await self.stopped.wait()


async def start_server(
    nursery: trio.Nursery, config: Config, clock: Clock | None = None
) -> RunningServer:
    """Start a server; pass one ``clock`` to several servers to keep time across restarts."""
    server = ChatServer(config, clock=clock)
    stopped = trio.Event()

    async def run(task_status: trio.TaskStatus[tuple[str, int]]) -> None:
        try:
            await server.run(task_status=task_status)
        finally:
            stopped.set()

    host, port = await nursery.start(run)
    return RunningServer(server, host, port, stopped)


@pytest.fixture
async def chat_server(nursery: trio.Nursery, config: Config) -> AsyncIterator[RunningServer]:
    running = await start_server(nursery, config)
    yield running
    running.server.shutdown()


@pytest.fixture
async def http(chat_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=chat_server.url, timeout=30) as client:
        yield client


@attrs.define
class User:
    name: str
    token: str
    client: httpx.AsyncClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.post(path, json=json, headers=self.auth, **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.auth, **kw)

    async def send(self, text: str, to: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if to is not None:
            body["to"] = to
        response = await self.post("/send", body)
        assert response.status_code == 201, response.text
        message: dict[str, Any] = response.json()["message"]
        return message


async def register(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> User:
    response = await client.post("/register", json={"username": name, "password": password})
    assert response.status_code == 201, response.text
    return User(name, response.json()["token"], client)


@pytest.fixture
def make_user(http: httpx.AsyncClient) -> Callable[[str], Any]:
    async def make(name: str) -> User:
        return await register(http, name)

    return make
