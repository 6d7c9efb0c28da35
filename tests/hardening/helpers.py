"""Tools for attacking the server: raw HTTP over Trio sockets, a strict response parser,
and the server as a subprocess (for SIGKILL, RSS and load).

The parser is deliberately strict: a response that is not well-formed HTTP/1.1 (status
line, headers, exact framing) or an error whose body is not the contract's JSON fails the
test that read it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [\x20-\x7e]*")
HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
ERROR_CODE = re.compile(r"[a-z][a-z0-9_]*")


class Incomplete(Exception):
    """The buffer ends before the response does."""


@attrs.define
class RawResponse:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        if self.status < 400:
            return None
        return str(self.json()["error"]["code"])

    def check(self) -> RawResponse:
        """Assert the contract's shape for an error; return self."""
        if self.status >= 400:
            assert self.header("content-type") == "application/json", self
            error = self.json()["error"]
            assert ERROR_CODE.fullmatch(error["code"]), self
            assert isinstance(error["message"], str) and error["message"], self
        return self


def parse_response(buf: bytes | bytearray, pos: int = 0) -> tuple[RawResponse, int]:
    """One response from ``buf[pos:]``; raises ``Incomplete`` if more bytes are needed."""
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        raise Incomplete
    lines = bytes(buf[pos:end]).split(b"\r\n")
    match = STATUS_LINE.fullmatch(lines[0])
    assert match, f"bad status line {lines[0]!r}"
    status = int(match[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        assert sep and HEADER_NAME.fullmatch(name), f"bad header line {line!r}"
        headers.setdefault(name.decode().lower(), []).append(value.strip().decode("latin-1"))
    at = end + 4
    if status < 200 or status in (204, 304):
        assert "content-length" not in headers or headers["content-length"] == ["0"]
        return RawResponse(status, headers, b""), at
    if headers.get("transfer-encoding") == ["chunked"]:
        assert "content-length" not in headers
        body = bytearray()
        while True:
            line_end = buf.find(b"\r\n", at)
            if line_end < 0:
                raise Incomplete
            size = int(bytes(buf[at:line_end]).split(b";")[0], 16)
            at = line_end + 2
            if len(buf) < at + size + 2:
                raise Incomplete
            body += buf[at : at + size]
            assert buf[at + size : at + size + 2] == b"\r\n"
            at += size + 2
            if size == 0:
                return RawResponse(status, headers, bytes(body)), at
    lengths = headers.get("content-length")
    assert lengths and len(lengths) == 1 and lengths[0].isdigit(), f"no framing: {headers}"
    length = int(lengths[0])
    if len(buf) < at + length:
        raise Incomplete
    return RawResponse(status, headers, bytes(buf[at : at + length])), at + length


def parse_all(buf: bytes) -> tuple[list[RawResponse], bytes]:
    """Every complete response in ``buf`` (1xx included), and the bytes left over."""
    out: list[RawResponse] = []
    pos = 0
    while pos < len(buf):
        try:
            response, pos = parse_response(buf, pos)
        except Incomplete:
            break
        out.append(response)
    return out, buf[pos:]


async def receive_all(stream: trio.abc.Stream) -> bytes:
    """Everything until the server closes (a reset counts as a close)."""
    data = bytearray()
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


class Conn:
    """A raw client connection that reads one response at a time."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        return cls(await trio.open_tcp_stream(host, port))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def response(self) -> RawResponse | None:
        """The next final response, or None if the server closed first."""
        while True:
            try:
                response, used = parse_response(self.buf)
            except Incomplete:
                try:
                    chunk = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    chunk = b""
                if not chunk:
                    return None
                self.buf += chunk
                continue
            del self.buf[:used]
            if response.status >= 200:
                return response.check()

    async def closed(self) -> bool:
        """True once the server has closed the connection (nothing more is sent)."""
        rest = await receive_all(self.stream)
        self.buf += rest
        return True

    async def aclose(self) -> None:
        await self.stream.aclose()


def request(
    method: str,
    target: str,
    *,
    body: bytes | None = None,
    token: str | None = None,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: test"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def wait_until(predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
    """For states no event announces (the kernel noticing a peer went away): poll briefly."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)


# -- the server as a subprocess --------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]

# The real command line, except a cheap scrypt cost (hundreds of registrations would
# otherwise cost 80 ms of CPU each on this machine); everything else is `trio-chat serve`.
CHEAP_HASH_LAUNCHER = (
    "import sys, attrs, trio\n"
    "from trio_chat import cli\n"
    "args = cli.build_parser().parse_args(sys.argv[1:])\n"
    "config = attrs.evolve(cli.config_from(args, {}), scrypt_n=2**4)\n"
    "cli.setup_logging(config.log_level)\n"
    "cli.raise_open_file_limit()\n"
    "trio.run(cli.serve, config)\n"
)


@attrs.define
class ServerProcess:
    process: trio.Process
    host: str
    port: int
    log: list[str]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


@asynccontextmanager
async def server_process(
    data_dir: Path,
    *args: str,
    cheap_hash: bool = False,
    log_level: str = "info",
    launcher: str | None = None,
) -> AsyncIterator[ServerProcess]:
    """Run ``trio-chat serve`` on port 0; stop it with SIGTERM at the end (if still alive).

    ``launcher`` replaces ``python -m trio_chat`` with code of a test's own (which may patch
    the server before running ``trio_chat.cli.main``)."""
    if launcher is not None:
        command = [sys.executable, "-c", launcher]
    elif cheap_hash:
        command = [sys.executable, "-c", CHEAP_HASH_LAUNCHER]
    else:
        command = [sys.executable, "-m", "trio_chat"]
    command += [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--log-level",
        log_level,
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await trio.lowlevel.open_process(command, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    log: list[str] = []
    address: list[tuple[str, int]] = []
    listening = trio.Event()
    assert process.stderr is not None
    stderr = process.stderr

    async def drain() -> None:
        # Keep reading: a full pipe would stall the server on its next log line.
        pending = b""
        while chunk := await stderr.receive_some(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace")
                log.append(line)
                match = re.search(r"listening on http://([\d.]+):(\d+)", line)
                if match:
                    address.append((match[1], int(match[2])))
                if " ready in " in line:  # logged once the service is up, after listening
                    listening.set()
        listening.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        with trio.fail_after(20):
            await listening.wait()
        assert address, "\n".join(log)
        host, port = address[0]
        try:
            yield ServerProcess(process, host, port, log)
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.terminate()
                with trio.move_on_after(15):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()


async def page_all(client: httpx.AsyncClient, token: str, **query: str) -> list[dict]:
    """A whole chat by ``before`` paging, newest page first; returned oldest first."""
    out: list[dict] = []
    before: str | None = None
    while True:
        params = {**query, "limit": "100"} | ({"before": before} if before else {})
        response = await client.get(
            "/messages", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        page = response.json()["messages"]
        if not page:
            return out
        out[:0] = page
        before = page[0]["id"]
