"""Starting, talking to and stopping the servers under test, each in its own pinned process."""

from __future__ import annotations

import collections
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import trio

from bench.loadgen import Connection, build_request, json_body, request_json
from bench.procstat import raise_nofile_limit

REPO: Final = Path(__file__).resolve().parent.parent
PYTHON: Final = sys.executable
SERVER_CPU: Final = "0"
LOAD_CPU: Final = "1"
LISTENING: Final = re.compile(r"listening on http://([0-9.]+):(\d+)")
PASSWORD: Final = "bench-password"


class BenchError(Exception):
    """A scenario could not run (as opposed to: it ran and missed its target)."""


def pinned(cpu: str, argv: Sequence[str], *, pin: bool) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if pin else list(argv)


def trio_chat_command(data_dir: Path) -> list[str]:
    return [
        PYTHON,
        "-m",
        "trio_chat",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
        "--rate-limit-count",
        "0",
    ]


def reference_command() -> list[str]:
    return [PYTHON, "-m", "bench.reference_server", "--port", "0"]


def trio_chat_available() -> str | None:
    """None when the server package looks runnable, else why not."""
    if not (REPO / "trio_chat" / "__main__.py").exists():
        return "trio_chat/__main__.py does not exist yet (the server is not built)"
    return None


class ServerProcess:
    """A server subprocess; its port is parsed from the ``listening on`` log line."""

    def __init__(self, name: str, argv: Sequence[str], *, pin: bool) -> None:
        self.name = name
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            pinned(SERVER_CPU, argv, pin=pin),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=raise_nofile_limit,  # runs in the child before exec
        )
        self.log: collections.deque[str] = collections.deque(maxlen=40)
        self._port: int | None = None
        self._port_seen = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())
            if self._port is None and (match := LISTENING.search(line)):
                self._port = int(match[2])
                self._port_seen.set()
        self._port_seen.set()  # the process ended: wake any waiter

    def log_tail(self, lines: int = 12) -> str:
        return "\n".join(list(self.log)[-lines:])

    def wait_port(self, timeout: float = 60.0) -> int:
        self._port_seen.wait(timeout)
        if self._port is None:
            try:
                code: int | None = self.proc.wait(2)
            except subprocess.TimeoutExpired:
                code = None
            self.stop()
            when = (
                f"exited with status {code} before logging"
                if code is not None
                else f"did not log within {timeout:.0f} s"
            )
            raise BenchError(
                f"{self.name} {when} 'listening on http://HOST:PORT'; last log lines:\n"
                + (self.log_tail() or "(none)")
            )
        return self._port

    @property
    def port(self) -> int:
        return self.wait_port()

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT (graceful), then SIGKILL after ``timeout``; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_trio_chat(data_dir: Path, *, pin: bool) -> ServerProcess:
    if reason := trio_chat_available():
        raise BenchError(f"trio-chat is not available: {reason}")
    server = ServerProcess("trio-chat", trio_chat_command(data_dir), pin=pin)
    server.wait_port()
    return server


def start_reference(*, pin: bool) -> ServerProcess:
    server = ServerProcess("reference server", reference_command(), pin=pin)
    server.wait_port()
    return server


# --------------------------------------------------------------------------- HTTP set-up calls


def call(
    port: int, method: str, path: str, obj: object = None, token: str | None = None
) -> tuple[int, Any]:
    """One request from this (orchestrating) process; status and decoded JSON body."""
    return trio.run(request_json, "127.0.0.1", port, method, path, obj, token)


def register_users(port: int, names: Sequence[str]) -> list[str]:
    """Register every user (scrypt makes this slow-ish) and return their tokens, in order."""

    async def register_all() -> list[str]:
        tokens: list[str] = []
        for name in names:
            status, body = await request_json(
                "127.0.0.1",
                port,
                "POST",
                "/register",
                {"username": name, "password": PASSWORD},
            )
            if status != 201:
                raise BenchError(f"POST /register {name} answered {status}: {body}")
            tokens.append(body["token"])
        return tokens

    return trio.run(register_all)


def login(port: int, name: str) -> str:
    status, body = call(port, "POST", "/login", {"username": name, "password": PASSWORD})
    if status != 200:
        raise BenchError(f"POST /login {name} answered {status}: {body}")
    token: str = body["token"]
    return token


def wait_healthy(port: int, timeout: float = 30.0) -> float:
    """Poll ``GET /healthz`` until it answers 200; the perf_counter time it did."""

    async def poll() -> float:
        with trio.fail_after(timeout):
            while True:
                try:
                    status, _ = await request_json("127.0.0.1", port, "GET", "/healthz")
                    if status == 200:
                        return time.perf_counter()
                except OSError:
                    pass
                await trio.sleep(0.002)

    try:
        return trio.run(poll)
    except trio.TooSlowError:
        raise BenchError(f"GET /healthz did not answer 200 within {timeout:.0f} s") from None


def time_requests(
    port: int, method: str, path: str, token: str, *, count: int, obj: object = None
) -> list[float]:
    """Latencies (seconds) of ``count`` sequential requests on one keep-alive connection."""

    async def run() -> list[float]:
        conn = await Connection.open("127.0.0.1", port)
        body = None if obj is None else json_body(obj)
        request = build_request(method, path, f"127.0.0.1:{port}", token=token, body=body)
        times: list[float] = []
        try:
            for _ in range(count):
                t0 = time.perf_counter()
                status, raw = await conn.roundtrip(request)
                times.append(time.perf_counter() - t0)
                if status >= 300:
                    raise BenchError(f"{method} {path} answered {status}: {raw[:200]!r}")
        finally:
            conn.close()
        return times

    return trio.run(run)


# --------------------------------------------------------------------------- the load process


def run_loadgen(
    port: int,
    mode_args: Sequence[str],
    *,
    server_pid: int,
    tokens_file: Path | None,
    pin: bool,
    timeout: float,
) -> dict[str, Any]:
    """Run ``python -m bench.loadgen`` in its own (pinned) process; its JSON result."""
    argv = [PYTHON, "-m", "bench.loadgen", "--port", str(port), "--server-pid", str(server_pid)]
    if tokens_file is not None:
        argv += ["--tokens", str(tokens_file)]
    argv += list(mode_args)
    try:
        done = subprocess.run(
            pinned(LOAD_CPU, argv, pin=pin),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=raise_nofile_limit,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"load generator did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BenchError(f"load generator failed (status {done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
