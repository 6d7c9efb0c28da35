"""Starting, talking to and stopping the servers under test, each in its own pinned process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
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


def trio_chat_command(data_dir: Path, *options: str) -> list[str]:
    """trio-chat as it ships (default log level: a line per request), with ``options`` added.

    Every scenario passes ``--rate-limit-count 0``: the default limit (20 messages an hour)
    would answer 429 within the first second of load.
    """
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
        *options,
    ]


def reference_command() -> list[str]:
    return [PYTHON, "-m", "bench.reference_server", "--port", "0"]


def trio_chat_available() -> str | None:
    """None when the server package looks runnable, else why not."""
    if not (REPO / "trio_chat" / "__main__.py").exists():
        return "trio_chat/__main__.py does not exist yet (the server is not built)"
    return None


def _child_setup() -> None:
    """In a child before exec: as many open files as allowed, and SIGINT back to its default
    (a shell starts background jobs with SIGINT ignored, and a Python started so would
    ignore our graceful stop)."""
    raise_nofile_limit()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ServerProcess:
    """A server subprocess; its port is parsed from the ``listening on`` log line.

    Its stderr (the log: a line per request at trio-chat's default level) goes to a file, as
    a deployed server's would go to a file or the journal: a pipe read by this process would
    cost this process CPU while a window is measured.
    """

    def __init__(self, name: str, argv: Sequence[str], *, pin: bool) -> None:
        self.name = name
        self.argv = list(argv)
        self._log_dir = tempfile.TemporaryDirectory(prefix="bench-log-")
        self.log_path = Path(self._log_dir.name) / "server.log"
        self.started_at = time.perf_counter()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                pinned(SERVER_CPU, argv, pin=pin),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=_child_setup,  # runs in the child before exec
            )
        self._port: int | None = None
        self.exit_status: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 12) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 64 * 1024))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_lines(self) -> int:
        """Lines the server has logged so far (a request is one line at the default level)."""
        try:
            with self.log_path.open("rb") as f:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        except OSError:
            return 0

    def wait_port(self, timeout: float = 60.0) -> int:
        if self._port is not None:
            return self._port
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if match := LISTENING.search(self.log_tail(40)):
                self._port = int(match[2])
                return self._port
            if self.proc.poll() is not None:
                break
            time.sleep(0.002)
        code = self.proc.poll()
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
        self.exit_status = self.proc.returncode
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or closed on the way out."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.exit_status = self.proc.returncode

    def cleanup(self) -> None:
        self.stop()
        self._log_dir.cleanup()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def start_trio_chat(data_dir: Path, *options: str, pin: bool) -> ServerProcess:
    if reason := trio_chat_available():
        raise BenchError(f"trio-chat is not available: {reason}")
    return _started(ServerProcess("trio-chat", trio_chat_command(data_dir, *options), pin=pin))


def start_reference(*, pin: bool) -> ServerProcess:
    return _started(ServerProcess("reference server", reference_command(), pin=pin))


def _started(server: ServerProcess) -> ServerProcess:
    try:
        server.wait_port()
    except BaseException:
        server.cleanup()
        raise
    return server


# --------------------------------------------------------------------------- Redis

REDIS_SERVER: Final = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_call(port: int, *args: str, timeout: float = 10.0) -> bytes | int:
    """One Redis command over RESP; a bulk string, status or integer answer."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"".join(parts))
        buf = b""
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise BenchError(f"redis-server closed the connection answering {args[0]}")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n")
        kind, value = head[:1], head[1:]
        if kind == b"-":
            raise BenchError(f"redis-server answered {args[0]}: {value.decode()}")
        if kind == b":":
            return int(value)
        if kind == b"+":
            return value
        if kind != b"$":
            raise BenchError(f"unexpected answer to {args[0]}: {head[:60]!r}")
        size = int(value)
        while len(rest) < size + 2:
            chunk = sock.recv(65536)
            if not chunk:
                raise BenchError(f"redis-server closed the connection answering {args[0]}")
            rest += chunk
        return rest[:size]


def parse_commandstats(info: str) -> dict[str, int]:
    """Calls per command from ``INFO commandstats`` (commands run by Lua scripts included):
    ``cmdstat_xadd:calls=12,usec=...`` -> ``{"xadd": 12}``."""
    out: dict[str, int] = {}
    for line in info.splitlines():
        name, _, fields = line.partition(":")
        if not name.startswith("cmdstat_"):
            continue
        for part in fields.split(","):
            key, _, value = part.partition("=")
            if key == "calls":
                out[name.removeprefix("cmdstat_")] = int(value)
    return out


class RedisProcess:
    """A private redis-server: a free port, a temporary directory, every write fsynced before
    it is answered (``--appendonly yes --appendfsync always``, no RDB snapshots), pinned to
    the server CPU with the trio-chat processes. Never the machine's own Redis."""

    def __init__(self, *, pin: bool) -> None:
        if not Path(REDIS_SERVER).exists():
            raise BenchError(f"{REDIS_SERVER} is not installed (Debian package redis-server)")
        self._dir = tempfile.TemporaryDirectory(prefix="bench-redis-")
        directory = Path(self._dir.name)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.argv = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
            "--logfile",
            str(directory / "redis.log"),
        ]
        self.proc = subprocess.Popen(
            pinned(SERVER_CPU, self.argv, pin=pin),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis_call(self.port, "PING") == b"PONG":
                    break
            except (OSError, BenchError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise BenchError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        return self.proc.pid  # taskset execs redis-server: the same process

    def commandstats(self) -> dict[str, int]:
        info = redis_call(self.port, "INFO", "commandstats")
        assert isinstance(info, bytes)
        return parse_commandstats(info.decode())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> RedisProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()


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


def read_all_messages(
    port: int, token: str, chat: str = "general", page: int = 100
) -> list[dict[str, Any]]:
    """Every message of ``chat`` the user can see, oldest first, paging ``GET /messages``
    back from the newest on one keep-alive connection."""

    async def run() -> list[dict[str, Any]]:
        conn = await Connection.open("127.0.0.1", port)
        pages: list[list[dict[str, Any]]] = []
        before: str | None = None
        try:
            while True:
                query = f"chat={chat}&limit={page}" + (
                    "" if before is None else f"&before={before}"
                )
                request = build_request(
                    "GET", f"/messages?{query}", f"127.0.0.1:{port}", token=token
                )
                status, raw = await conn.roundtrip(request)
                if status != 200:
                    raise BenchError(f"GET /messages?{query} answered {status}: {raw[:200]!r}")
                found: list[dict[str, Any]] = json.loads(raw)["messages"]
                if not found:
                    break
                pages.append(found)
                before = found[0]["id"]
        finally:
            conn.close()
        return [m for p in reversed(pages) for m in p]

    return trio.run(run)


def time_requests(
    port: int,
    method: str,
    path: str,
    token: str,
    *,
    count: int,
    obj: object = None,
    keep_first: bool = False,
) -> tuple[list[float], Any]:
    """Latencies (seconds) of ``count`` sequential requests on one keep-alive connection,
    opened before the first is timed; and the first answer's decoded body if ``keep_first``."""

    async def run() -> tuple[list[float], Any]:
        conn = await Connection.open("127.0.0.1", port)
        body = None if obj is None else json_body(obj)
        request = build_request(method, path, f"127.0.0.1:{port}", token=token, body=body)
        times: list[float] = []
        first: Any = None
        try:
            for i in range(count):
                t0 = time.perf_counter()
                status, raw = await conn.roundtrip(request)
                times.append(time.perf_counter() - t0)
                if status >= 300:
                    raise BenchError(f"{method} {path} answered {status}: {raw[:200]!r}")
                if i == 0 and keep_first:
                    first = json.loads(raw)
        finally:
            conn.close()
        return times, first

    return trio.run(run)


def time_first_requests(
    port: int, method: str, path: str, tokens: Sequence[str]
) -> tuple[list[float], Any]:
    """Latencies (seconds) of one request per token, one after the other, each on its own
    connection (all opened before the first is timed); and the first answer's decoded body."""

    async def run() -> tuple[list[float], Any]:
        conns = [await Connection.open("127.0.0.1", port) for _ in tokens]
        times: list[float] = []
        first: Any = None
        try:
            for conn, token in zip(conns, tokens, strict=True):
                request = build_request(method, path, f"127.0.0.1:{port}", token=token)
                t0 = time.perf_counter()
                status, raw = await conn.roundtrip(request)
                times.append(time.perf_counter() - t0)
                if status >= 300:
                    raise BenchError(f"{method} {path} answered {status}: {raw[:200]!r}")
                if first is None:
                    first = json.loads(raw)
        finally:
            for conn in conns:
                conn.close()
        return times, first

    return trio.run(run)


# --------------------------------------------------------------------------- the load process


def run_loadgen(
    port: int | Sequence[int],
    mode_args: Sequence[str],
    *,
    server_pid: int | Sequence[int] | None,
    tokens_file: Path | None,
    pin: bool,
    timeout: float,
    watch_pids: Sequence[int] = (),
) -> dict[str, Any]:
    """Run ``python -m bench.loadgen`` in its own (pinned) process; its JSON result.

    Several ``port``s spread the connections (or streams) over several server processes;
    several ``server_pid``s sum their CPU; ``watch_pids`` (redis-server) are measured apart."""
    ports = [port] if isinstance(port, int) else list(port)
    argv = [PYTHON, "-m", "bench.loadgen", "--port", ",".join(map(str, ports))]
    for pid in [server_pid] if isinstance(server_pid, int) else (server_pid or []):
        argv += ["--server-pid", str(pid)]
    for pid in watch_pids:
        argv += ["--watch-pid", str(pid)]
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
            preexec_fn=_child_setup,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"load generator did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BenchError(f"load generator failed (status {done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
