"""Fixtures for the client's end-to-end tests: a real trio-chat server and real client processes.

Processes are read by background tasks into line lists; tests wait for an expected line with a
timeout (``expect``) instead of sleeping, so they are as fast as the programs and fail with the
whole output when a line never comes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import trio

from tests.client.terminal import Terminal, terminal_env
from tests.client.zones import Zone, zone_where_it_is

PYTHON = sys.executable
EXPECT_TIMEOUT = 30.0
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class Proc:
    """A subprocess whose stdout and stderr are collected line by line."""

    def __init__(self, name: str, process: trio.Process, nursery: trio.Nursery) -> None:
        self.name = name
        self.process = process
        self.out: list[str] = []
        self.err: list[str] = []
        self._pos = 0  # expect() searches stdout from here on
        self._changed = trio.Event()
        self._open = 2
        assert process.stdout is not None and process.stderr is not None
        nursery.start_soon(self._collect, process.stdout, self.out)
        nursery.start_soon(self._collect, process.stderr, self.err)

    async def _collect(self, stream: trio.abc.ReceiveStream, into: list[str]) -> None:
        pending = b""
        try:
            async for chunk in stream:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                into.extend(line.decode("utf-8", "replace") for line in lines)
                self._wake()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        finally:
            if pending:
                into.append(pending.decode("utf-8", "replace"))
            self._open -= 1
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def transcript(self) -> str:
        return (
            f"--- {self.name} stdout ---\n"
            + "\n".join(self.out)
            + f"\n--- {self.name} stderr ---\n"
            + "\n".join(self.err)
        )

    async def wait_for(
        self, pattern: str, *, stream: str = "out", timeout: float = EXPECT_TIMEOUT
    ) -> re.Match[str]:
        """Wait for a line (after the last one matched) that matches the regex ``pattern``."""
        regex = re.compile(pattern)
        lines = self.out if stream == "out" else self.err
        start = self._pos if stream == "out" else 0
        with trio.move_on_after(timeout):
            while True:
                for i in range(start, len(lines)):
                    found = regex.search(lines[i])
                    if found:
                        if stream == "out":
                            self._pos = i + 1
                        return found
                start = len(lines)
                if self._open == 0:
                    break
                await self._changed.wait()
        raise AssertionError(f"{self.name}: no line matching {pattern!r}\n{self.transcript()}")

    async def expect(self, text: str, **kw: float) -> str:
        """Wait for a stdout line containing ``text`` literally; return the line."""
        return (await self.wait_for(re.escape(text), **kw)).string

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        with trio.move_on_after(timeout):
            return await self.process.wait()
        self.process.kill()
        await self.process.wait()
        raise AssertionError(f"{self.name} did not stop on signal {sig}\n{self.transcript()}")


class Server(Proc):
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Client(Proc):
    async def say(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all((line + "\n").encode())

    async def quit(self) -> int:
        await self.say("/quit")
        with trio.fail_after(EXPECT_TIMEOUT):
            return await self.process.wait()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_CHAT_")}
    env.update(PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1", **extra)
    return env


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[StartServer]:
    """``await start_server(*extra_args, port=0, data_dir=None)`` → a running :class:`Server`."""
    started: list[Server] = []

    async def start(*extra: str, port: int = 0, data_dir: Path | None = None) -> Server:
        data = data_dir or tmp_path / f"data{len(started)}"
        data.mkdir(exist_ok=True)
        cmd = [PYTHON, "-m", "trio_chat", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--data-dir", str(data), "--log-level", "info", *extra]  # fmt: skip
        process = await trio.lowlevel.open_process(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
        )
        server = Server(f"server{len(started)}", process, nursery)
        started.append(server)
        found = await server.wait_for(LISTENING.pattern, stream="err", timeout=60)
        server.port = int(found.group(1))
        server.data_dir = data
        return server

    yield start
    for server in started:
        if server.process.returncode is None:
            await server.stop()


@pytest.fixture
def client_zone() -> Zone:
    """The clients' time zone: one where it is about noon now (they read the real clock).

    So the times they show a few hours ahead (bans, rate limits) are on the same day, whatever
    the machine's zone and hour; a test that wants another local hour passes ``zone=``.
    """
    return zone_where_it_is(12)


async def ensure_account(url: str, user: str, password: str | None) -> None:
    """The client logs in and never registers by itself (only with --register): tests that
    are not about accounts start from an existing one."""
    async with httpx.AsyncClient(base_url=url) as http:
        body = {"username": user, "password": password or "password1"}
        try:
            response = await http.post("/register", json=body)
        except httpx.ConnectError:
            return  # the server is down: the test is about that
        assert response.status_code in (201, 409), response.text
        if response.status_code == 201:  # leave no session behind: tests count them
            token = response.json()["token"]
            await http.post("/logout", headers={"Authorization": f"Bearer {token}"})


StartClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def start_client(
    nursery: trio.Nursery, tmp_path: Path, client_zone: Zone
) -> AsyncIterator[StartClient]:
    """``await start_client(server, user, *args)`` → an interactive client on pipes."""
    started: list[Client] = []

    async def start(
        server: Server,
        user: str,
        *args: str,
        password: str = "password1",
        zone: Zone = client_zone,
        cwd: Path | None = None,
    ) -> Client:
        if "--register" not in args:
            await ensure_account(server.url, user, password)
        cmd = [PYTHON, "-m", "trio_chat_client", "--server", server.url, "--user", user,
               "--config-dir", str(tmp_path / "config" / user), *args]  # fmt: skip
        # Downloads without a PATH go to the current directory: never the project's.
        workdir = cwd or tmp_path / "cwd" / user
        workdir.mkdir(parents=True, exist_ok=True)
        process = await trio.lowlevel.open_process(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(TRIO_CHAT_PASSWORD=password, TZ=zone.tz),
            cwd=workdir,
        )
        client = Client(user, process, nursery)
        started.append(client)
        return client

    yield start
    for client in started:
        if client.process.returncode is None:
            client.process.kill()
            await client.process.wait()


RunClient = Callable[..., Awaitable[subprocess.CompletedProcess[bytes]]]


@pytest.fixture
def run_client(tmp_path: Path, client_zone: Zone) -> RunClient:
    """``await run_client(server_url, user, *args, password=...)`` for the script commands."""

    async def run(
        url: str,
        user: str,
        *args: str,
        password: str | None = "password1",
        zone: Zone = client_zone,
    ) -> subprocess.CompletedProcess[bytes]:
        if "--register" not in args:
            await ensure_account(url, user, password)
        cmd = [PYTHON, "-m", "trio_chat_client", "--server", url, "--user", user,
               "--config-dir", str(tmp_path / "config" / user), *args]  # fmt: skip
        env = _env(TZ=zone.tz)
        if password is not None:
            env["TRIO_CHAT_PASSWORD"] = password
        with trio.fail_after(EXPECT_TIMEOUT):
            return await trio.run_process(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=env,
            )

    return run


StartTerminal = Callable[..., Awaitable[Terminal]]


@pytest.fixture
async def start_tui(tmp_path: Path, client_zone: Zone) -> AsyncIterator[StartTerminal]:
    """``await start_tui(server, user, *args, rows=16, cols=60)`` → the interactive client on a
    pseudo-terminal (the full-screen chat), its screen read through a terminal emulator."""
    started: list[Terminal] = []

    async def start(
        server: Server,
        user: str,
        *args: str,
        rows: int = 16,
        cols: int = 60,
        password: str | None = "password1",
        env: dict[str, str] | None = None,
    ) -> Terminal:
        if "--register" not in args:
            await ensure_account(server.url, user, password)
        workdir = tmp_path / "cwd" / user
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [PYTHON, "-m", "trio_chat_client", "--server", server.url, "--user", user,
                "--config-dir", str(tmp_path / "config" / user), *args]  # fmt: skip
        extra = {"TZ": client_zone.tz, **(env or {})}
        if password is not None:
            extra["TRIO_CHAT_PASSWORD"] = password
        terminal = Terminal(argv, terminal_env(extra), rows=rows, cols=cols, cwd=workdir)
        started.append(terminal)
        return terminal

    yield start
    for terminal in started:
        terminal.kill()
