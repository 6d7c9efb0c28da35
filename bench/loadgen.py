"""A small, fast HTTP/1.1 load generator on raw Trio sockets.

Requests are pre-built bytes; responses are framed by ``Content-Length`` (or chunked encoding)
with a few ``bytes.find`` calls instead of a full HTTP parser, so that the load generator costs a
fraction of what the server spends per request. It runs in its own process (``python -m
bench.loadgen MODE ...``, printing one JSON object on stdout) so it can be pinned to its own core;
the functions are also usable in-process (the smoke test does that).

Modes:

- ``http``: N keep-alive connections, each sending one request after the other for a warm-up and
  then a measured window; requests/s, latency percentiles, errors, and (with ``--server-pid``)
  server CPU time per request measured over exactly that window.
- ``fanout``: M ``GET /events`` streams plus one sender posting K messages whose text carries
  the send time; the send-to-receive latency of every (message, stream) pair.
- ``hold``: open N ``GET /events`` streams and measure the server's RSS growth per stream.
- ``upload``: N concurrent raw-body uploads (``POST /files``); MB/s, each answer checked against
  what was sent, and the server's peak RSS growth (sampled every 5 ms).

``http --mark TAG`` makes every request body's text unique (``[bench TAG c=<connection>
s=<n>]``) and reports, per connection, which requests were acknowledged: the send scenario reads
them back from the server to check that every acknowledged message was stored.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import signal
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import trio

from bench.procstat import (
    all_cpu_seconds,
    cpu_seconds,
    raise_nofile_limit,
    rss_kib,
    system_busy_seconds,
)

RECV_SIZE: Final = 65536
OPEN_TIMEOUT: Final = 30.0  # seconds for one stream to connect and get its response head
# Linux values; the socket module does not export every one of them.
SO_TIMESTAMPNS: Final = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC: Final = struct.Struct("@qq")
MARKER: Final = re.compile(rb"\[bench seq=(\d+) t=(\d+)\]")
MARKER_MAX_LEN: Final = 64


class HttpError(Exception):
    """The peer broke HTTP framing or closed the connection mid-response."""


# --------------------------------------------------------------------------- requests


def build_request(
    method: str, path: str, host: str, *, token: str | None = None, body: bytes | None = None
) -> bytes:
    """The exact bytes of one keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head + (body or b"")


def json_body(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


RequestMaker = Callable[[int], bytes]  # the n-th request of a connection (n = 0, 1, ...)


def marked_text(text: str, tag: str, connection: int, seq: int) -> str:
    """The text of the ``seq``-th message of ``connection`` in run ``tag``: unique, so that
    what the server stored can be matched with what it acknowledged."""
    return f"{text} [bench {tag} c={connection} s={seq}]"


def marked_requests(
    method: str,
    path: str,
    host: str,
    tokens: Sequence[str | None],
    body: dict[str, Any],
    tag: str,
) -> list[RequestMaker]:
    """One request maker per token: JSON bodies whose ``text`` is ``marked_text``."""
    makers: list[RequestMaker] = []
    for connection, token in enumerate(tokens):
        template = json_body({**body, "text": marked_text(body["text"], tag, connection, 0)})
        marker = b" s=0]"
        at = template.rindex(marker) + 3
        prefix, suffix = template[:at], template[at + 1 :]
        head = build_request(method, path, host, token=token, body=b"").split(b"Content-Length: 0")[
            0
        ]

        def make(
            seq: int, prefix: bytes = prefix, suffix: bytes = suffix, head: bytes = head
        ) -> bytes:
            body = prefix + str(seq).encode() + suffix
            return head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body

        makers.append(make)
    return makers


def _header_value(head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lowercase) in a lowercased response head, or None."""
    i = head.find(b"\r\n" + name + b":")
    if i < 0:
        return None
    start = i + len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


class Dechunker:
    """Incremental decoder of ``Transfer-Encoding: chunked`` bodies."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._left = 0  # bytes left in the current chunk's data
        self._need_crlf = False  # the CRLF after a chunk's data is still to come
        self.done = False

    def feed(self, data: bytes | bytearray) -> bytes:
        buf = self._buf
        buf += data
        out = bytearray()
        while buf and not self.done:
            if self._left:
                take = min(self._left, len(buf))
                out += buf[:take]
                del buf[:take]
                self._left -= take
                if self._left:
                    break
                self._need_crlf = True
            if self._need_crlf:
                if len(buf) < 2:
                    break
                del buf[:2]
                self._need_crlf = False
            end = buf.find(b"\r\n")
            if end < 0:
                break
            size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
            del buf[: end + 2]
            if size == 0:
                self.done = True
            self._left = size
        return bytes(out)


class Connection:
    """One keep-alive client connection with minimal response framing."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.buf = bytearray()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
        try:
            sock.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, 1)
            await sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def close(self) -> None:
        self.sock.close()

    async def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            sent = await self.sock.send(view)
            view = view[sent:]

    async def _fill(self) -> None:
        chunk = await self.sock.recv(RECV_SIZE)
        if not chunk:
            raise HttpError("connection closed by server")
        self.buf += chunk

    async def read_head(self) -> tuple[int, bytes]:
        """Read a response head; returns the status and the lowercased head."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self.buf[:end]).lower()
        del self.buf[: end + 4]
        if not head.startswith(b"http/1.1 "):
            raise HttpError(f"bad status line {head[:40]!r}")
        return int(head[9:12]), head

    async def read_response(self) -> tuple[int, bytes]:
        """Read one whole response; returns its status and body."""
        status, head = await self.read_head()
        length = _header_value(head, b"content-length")
        if length is not None:
            need = int(length)
            while len(self.buf) < need:
                await self._fill()
            body = bytes(self.buf[:need])
            del self.buf[:need]
        elif _header_value(head, b"transfer-encoding") == b"chunked":
            dechunker, out = Dechunker(), bytearray()
            out += dechunker.feed(self.buf)
            self.buf.clear()
            while not dechunker.done:
                out += dechunker.feed(await self.sock.recv(RECV_SIZE))
            body = bytes(out)
        elif status in (204, 304):
            body = b""
        else:
            raise HttpError("response without Content-Length")
        if _header_value(head, b"connection") == b"close":
            self.close()
        return status, body

    async def roundtrip(self, request: bytes) -> tuple[int, bytes]:
        await self.send_all(request)
        return await self.read_response()


async def request_json(
    host: str, port: int, method: str, path: str, obj: object = None, token: str | None = None
) -> tuple[int, Any]:
    """One request on a fresh connection; the status and the decoded JSON body (or None)."""
    conn = await Connection.open(host, port)
    try:
        body = None if obj is None else json_body(obj)
        status, raw = await conn.roundtrip(
            build_request(method, path, f"{host}:{port}", token=token, body=body)
        )
    finally:
        conn.close()
    return status, json.loads(raw) if raw else None


# --------------------------------------------------------------------------- statistics


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Latency:
    """Latency summary in milliseconds."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        values = sorted(seconds)
        mean = sum(values) / len(values) if values else math.nan
        return cls(
            count=len(values),
            p50_ms=percentile(values, 50) * 1e3,
            p90_ms=percentile(values, 90) * 1e3,
            p99_ms=percentile(values, 99) * 1e3,
            max_ms=(values[-1] if values else math.nan) * 1e3,
            mean_ms=mean * 1e3,
        )


Pids = int | Sequence[int] | None


def pid_list(pids: Pids) -> list[int]:
    """One pid, several, or none, as a list."""
    if pids is None:
        return []
    return [pids] if isinstance(pids, int) else list(pids)


def port_of(ports: int | Sequence[int], index: int) -> int:
    """The port connection (or stream) ``index`` uses: spread round-robin over ``ports``."""
    if isinstance(ports, int):
        return ports
    return ports[index % len(ports)]


class CpuWindow:
    """CPU seconds used over a measured window by the server (the sum over its processes),
    by watched processes (each on its own: e.g. redis-server), by this process, by interrupts
    and by the rest of the machine. Anything else running skews the numbers: it is reported
    (the busiest other processes by name), not hidden."""

    def __init__(self, server_pid: Pids, watch_pids: Sequence[int] = ()) -> None:
        self.server_pids = pid_list(server_pid)
        self.watch_pids = list(watch_pids)
        self.server_s: float | None = None
        self.server_by_pid: dict[str, float] = {}
        self.watched_s: dict[str, float] = {}  # pid -> CPU seconds
        self.own_s = 0.0
        self.interrupts_s = 0.0
        self.other_s = 0.0
        self.other_top: dict[str, float] = {}  # "name[pid]" -> CPU seconds
        self._start: tuple[float, ...] = ()
        self._processes: dict[int, tuple[str, float]] = {}

    def _sample(self) -> tuple[float, ...]:
        busy, interrupts = system_busy_seconds()
        tracked = [cpu_seconds(pid) for pid in (*self.server_pids, *self.watch_pids)]
        return time.process_time(), busy, interrupts, *tracked

    def start(self) -> None:
        self._processes = all_cpu_seconds()
        self._start = self._sample()

    def stop(self) -> None:
        end = self._sample()
        own, busy, interrupts, *tracked = (b - a for a, b in zip(self._start, end, strict=True))
        servers = tracked[: len(self.server_pids)]
        watched = tracked[len(self.server_pids) :]
        server = sum(servers)
        if self.server_pids:
            self.server_s = server
            self.server_by_pid = {str(p): s for p, s in zip(self.server_pids, servers, strict=True)}
        self.watched_s = {str(p): s for p, s in zip(self.watch_pids, watched, strict=True)}
        self.own_s = own
        self.interrupts_s = interrupts
        self.other_s = max(0.0, busy - server - sum(watched) - own)
        ignore = {*self.server_pids, *self.watch_pids, os.getpid()}
        used = [
            (seconds - self._processes[pid][1], f"{name}[{pid}]")
            for pid, (name, seconds) in all_cpu_seconds().items()
            if pid in self._processes and pid not in ignore
        ]
        self.other_top = {name: s for s, name in sorted(used, reverse=True)[:3] if s > 0}


# --------------------------------------------------------------------------- http mode


@dataclass
class HttpResult:
    connections: int
    duration_s: float
    requests: int
    requests_per_s: float
    latency: Latency
    errors: dict[str, int]
    server_cpu_s: float | None
    server_cpu_us_per_request: float | None
    loadgen_cpu_s: float
    loadgen_cpu_pct: float
    other_cpu_pct: float
    other_top: dict[str, float]
    interrupts_cpu_pct: float
    server_rss_kib: int | None  # the sum over the server's processes
    # Per server process, and per watched process (``--watch-pid``: e.g. redis-server), by pid.
    server_cpu_by_pid: dict[str, float] = field(default_factory=dict)
    watched_cpu_s: dict[str, float] = field(default_factory=dict)
    # Every request answered with the expected status, warm-up included: per connection,
    # inclusive ranges of request numbers. With marked requests, what the server must have kept.
    acknowledged: dict[str, list[list[int]]] = field(default_factory=dict)
    acknowledged_count: int = 0
    # Written but not answered with the expected status (in flight at the end, or refused):
    # [connection, request number]. The server may or may not have kept these.
    unacknowledged: list[list[int]] = field(default_factory=list)


def _ranges(numbers: Sequence[int]) -> list[list[int]]:
    """Sorted numbers as inclusive [first, last] ranges."""
    out: list[list[int]] = []
    for n in sorted(numbers):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def expand_ranges(ranges: Sequence[Sequence[int]]) -> list[int]:
    return [n for first, last in ranges for n in range(first, last + 1)]


async def run_http(
    host: str,
    port: int | Sequence[int],
    requests: Sequence[bytes | RequestMaker],
    *,
    duration: float,
    warmup: float = 0.5,
    expect_status: int = 200,
    server_pid: Pids = None,
    watch_pids: Sequence[int] = (),
    kill: tuple[int, float] | None = None,
) -> HttpResult:
    """Closed-loop load: one connection per entry of ``requests``, each sending that request
    (or, for a maker, its next one) as soon as the previous answer is in. With several
    ``port``s (one per server process) connection i goes to ``port[i % len(port)]``.

    Only responses that complete inside the measured window (after ``warmup``) are counted
    in the rates and latencies; every answer is checked against ``expect_status``. With
    ``kill=(pid, seconds)`` the process ``pid`` (the server) gets SIGKILL that long into the
    window: a crash in the middle of the load.
    """
    measuring = False
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    acked: list[list[int]] = [[] for _ in requests]
    unacked: list[list[int]] = []
    clock = time.perf_counter

    async def worker(
        index: int, request: bytes | RequestMaker, task_status: trio.TaskStatus[None]
    ) -> None:
        conn: Connection | None = None
        started = False
        seq = 0
        in_flight = False
        try:
            while True:
                try:
                    if conn is None:
                        conn = await Connection.open(host, port_of(port, index))
                        if not started:
                            started = True
                            task_status.started()
                    data = request if isinstance(request, bytes) else request(seq)
                    t0 = clock()
                    in_flight = True
                    status, _ = await conn.roundtrip(data)
                    in_flight = False
                    t1 = clock()
                except (OSError, HttpError) as exc:
                    if not started:
                        raise
                    if measuring:
                        errors[type(exc).__name__] += 1
                    if in_flight:
                        unacked.append([index, seq])
                        in_flight = False
                        seq += 1
                    if conn is not None:
                        conn.close()
                    conn = None
                    await trio.sleep(0.01)
                    continue
                if status == expect_status:
                    acked[index].append(seq)
                else:
                    unacked.append([index, seq])
                    if not measuring:  # a refusal is an error whenever it happens
                        errors[f"status_{status}_outside_window"] += 1
                seq += 1
                if measuring:
                    latencies.append(t1 - t0)
                    statuses[status] += 1
                if conn.sock.fileno() < 0:  # closed on "Connection: close"
                    conn = None
        finally:
            if in_flight:
                unacked.append([index, seq])
            if conn is not None:
                conn.close()

    cpu = CpuWindow(server_pid, watch_pids)
    async with trio.open_nursery() as nursery:
        for index, request in enumerate(requests):
            await nursery.start(worker, index, request)
        await trio.sleep(warmup)
        measuring = True
        cpu.start()
        t_start = clock()
        if kill is not None:
            await trio.sleep(kill[1])
            os.kill(kill[0], signal.SIGKILL)
        await trio.sleep_until(trio.current_time() + duration - (clock() - t_start))
        measuring = False
        elapsed = clock() - t_start
        cpu.stop()
        rss = sum(rss_kib(pid) for pid in cpu.server_pids) if cpu.server_pids else None
        nursery.cancel_scope.cancel()

    for status, n in statuses.items():
        if status != expect_status:
            errors[f"status_{status}"] += n
    done = sum(statuses.values())
    return HttpResult(
        connections=len(requests),
        duration_s=elapsed,
        requests=done,
        requests_per_s=done / elapsed,
        latency=Latency.of(latencies),
        errors=dict(errors),
        server_cpu_s=cpu.server_s,
        server_cpu_us_per_request=(cpu.server_s / done * 1e6) if cpu.server_s and done else None,
        loadgen_cpu_s=cpu.own_s,
        loadgen_cpu_pct=100 * cpu.own_s / elapsed,
        other_cpu_pct=100 * cpu.other_s / elapsed,
        other_top=cpu.other_top,
        interrupts_cpu_pct=100 * cpu.interrupts_s / elapsed,
        server_rss_kib=rss,
        server_cpu_by_pid=cpu.server_by_pid,
        watched_cpu_s=cpu.watched_s,
        acknowledged={str(i): _ranges(seqs) for i, seqs in enumerate(acked) if seqs},
        acknowledged_count=sum(len(seqs) for seqs in acked),
        unacknowledged=unacked,
    )


# --------------------------------------------------------------------------- event streams


class EventStream:
    """One ``GET /events`` stream that records when each benchmark marker arrives.

    Receive times come from the kernel (``SO_TIMESTAMPNS``: when the data reached the socket),
    so that the time this process takes to get round to 1,000 readable sockets is not counted
    as server latency. Without kernel timestamps it falls back to the time of ``recv``.
    """

    def __init__(self, conn: Connection, *, chunked: bool) -> None:
        self.conn = conn
        self.chunked = chunked
        self.received: dict[int, int] = {}  # seq -> receive time, ns since the epoch
        self.duplicates = 0
        self.kernel_timestamps = False
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int, token: str) -> EventStream:
        conn = await Connection.open(host, port)
        try:
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            await conn.send_all(build_request("GET", "/events", f"{host}:{port}", token=token))
            status, head = await conn.read_head()
            if status != 200:
                raise HttpError(f"GET /events answered {status}")
        except BaseException:
            conn.close()
            raise
        return cls(conn, chunked=_header_value(head, b"transfer-encoding") == b"chunked")

    async def _recv(self) -> tuple[bytes, int]:
        data, ancdata, _flags, _addr = await self.conn.sock.recvmsg(
            RECV_SIZE, socket.CMSG_SPACE(TIMESPEC.size)
        )
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = TIMESPEC.unpack(payload[: TIMESPEC.size])
                self.kernel_timestamps = True
                return data, sec * 1_000_000_000 + nsec
        return data, time.time_ns()

    async def consume(self) -> None:
        """Read until the server closes, recording markers."""
        dechunker = Dechunker() if self.chunked else None
        pending = bytearray(dechunker.feed(self.conn.buf) if dechunker else self.conn.buf)
        arrived = time.time_ns()
        try:
            while True:
                last_end = 0
                for match in MARKER.finditer(pending):
                    seq = int(match[1])
                    if seq in self.received:
                        self.duplicates += 1
                    else:
                        self.received[seq] = arrived
                    last_end = match.end()
                del pending[: max(last_end, len(pending) - MARKER_MAX_LEN)]
                data, arrived = await self._recv()
                if not data:
                    break
                pending += dechunker.feed(data) if dechunker else data
        except OSError:
            pass
        finally:
            self.closed = True
            self.conn.close()


async def open_streams(
    host: str, port: int | Sequence[int], tokens: Sequence[str], count: int, *, parallel: int = 100
) -> tuple[list[EventStream], Counter[str]]:
    """Open ``count`` event streams, round-robin over ``tokens`` (and over ``port``s, when
    there are several), ``parallel`` at a time."""
    streams: list[EventStream] = []
    errors: Counter[str] = Counter()
    limiter = trio.CapacityLimiter(parallel)

    async def one(i: int) -> None:
        async with limiter:
            try:
                with trio.fail_after(OPEN_TIMEOUT):
                    streams.append(
                        await EventStream.open(host, port_of(port, i), tokens[i % len(tokens)])
                    )
            except (OSError, HttpError, trio.TooSlowError) as exc:
                errors[f"open_{type(exc).__name__}"] += 1

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, i)
    return streams, errors


@dataclass
class FanoutResult:
    streams: int
    messages: int
    interval_s: float
    pairs_expected: int
    pairs_received: int
    latency: Latency
    send_latency: Latency
    errors: dict[str, int]
    kernel_timestamps: bool
    open_s: float
    window_s: float
    server_cpu_s: float | None
    loadgen_cpu_s: float
    loadgen_cpu_pct: float
    other_cpu_pct: float
    other_top: dict[str, float]
    interrupts_cpu_pct: float
    server_cpu_by_pid: dict[str, float] = field(default_factory=dict)
    watched_cpu_s: dict[str, float] = field(default_factory=dict)


async def run_fanout(
    host: str,
    port: int | Sequence[int],
    stream_tokens: Sequence[str],
    sender_token: str,
    *,
    streams: int,
    messages: int,
    interval: float,
    sender_port: int | None = None,
    server_pid: Pids = None,
    watch_pids: Sequence[int] = (),
    drain_timeout: float = 10.0,
) -> FanoutResult:
    """``streams`` event streams (spread over ``port``s) and one sender posting ``messages``
    every ``interval`` through ``sender_port`` (default: the first port)."""
    if sender_port is None:
        sender_port = port_of(port, 0)
    t_open = time.perf_counter()
    opened, errors = await open_streams(host, port, stream_tokens, streams)
    open_s = time.perf_counter() - t_open
    send_times: dict[int, int] = {}
    send_latencies: list[float] = []
    cpu = CpuWindow(server_pid, watch_pids)
    t_run = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for stream in opened:
            nursery.start_soon(stream.consume)
        await trio.sleep(0.5)  # let every stream settle before the first message
        print(f"sending to {len(opened)} streams", file=sys.stderr, flush=True)  # bench.profile
        cpu.start()
        t_run = time.perf_counter()
        sender = await Connection.open(host, sender_port)
        try:
            start = trio.current_time()
            for seq in range(messages):
                await trio.sleep_until(start + seq * interval)
                sent_ns = time.time_ns()
                body = json_body({"text": f"fan-out [bench seq={seq} t={sent_ns}]"})
                request = build_request(
                    "POST", "/send", f"{host}:{sender_port}", token=sender_token, body=body
                )
                t0 = time.perf_counter()
                status, _ = await sender.roundtrip(request)
                send_latencies.append(time.perf_counter() - t0)
                if status != 201:
                    errors[f"send_status_{status}"] += 1
                    continue
                send_times[seq] = sent_ns
        finally:
            sender.close()
        with trio.move_on_after(drain_timeout):
            while any(len(s.received) < len(send_times) for s in opened if not s.closed):
                await trio.sleep(0.05)
        cpu.stop()
        nursery.cancel_scope.cancel()
    elapsed = time.perf_counter() - t_run

    latencies: list[float] = []
    for stream in opened:
        for seq, received_ns in stream.received.items():
            if seq in send_times:
                latencies.append((received_ns - send_times[seq]) / 1e9)
        if stream.duplicates:
            errors["duplicate_events"] += stream.duplicates
    expected = len(opened) * len(send_times)
    if expected - len(latencies):
        errors["missing_events"] += expected - len(latencies)
    if len(opened) < streams:
        errors["streams_not_opened"] += streams - len(opened)
    return FanoutResult(
        streams=len(opened),
        messages=len(send_times),
        interval_s=interval,
        pairs_expected=expected,
        pairs_received=len(latencies),
        latency=Latency.of(latencies),
        send_latency=Latency.of(send_latencies),
        errors=dict(errors),
        kernel_timestamps=all(s.kernel_timestamps for s in opened if s.received),
        open_s=open_s,
        window_s=elapsed,
        server_cpu_s=cpu.server_s,
        loadgen_cpu_s=cpu.own_s,
        loadgen_cpu_pct=100 * cpu.own_s / elapsed,
        other_cpu_pct=100 * cpu.other_s / elapsed,
        other_top=cpu.other_top,
        interrupts_cpu_pct=100 * cpu.interrupts_s / elapsed,
        server_cpu_by_pid=cpu.server_by_pid,
        watched_cpu_s=cpu.watched_s,
    )


# --------------------------------------------------------------------------- hold mode


@dataclass
class HoldResult:
    streams: int
    rss_before_kib: int | None
    rss_after_kib: int | None
    rss_per_stream_kib: float | None
    open_s: float
    still_open: int
    errors: dict[str, int] = field(default_factory=dict)
    window_s: float = 0.0
    loadgen_cpu_pct: float = 0.0
    other_cpu_pct: float = 0.0
    other_top: dict[str, float] = field(default_factory=dict)
    interrupts_cpu_pct: float = 0.0


async def run_hold(
    host: str,
    port: int,
    tokens: Sequence[str],
    *,
    streams: int,
    server_pid: int | None = None,
    settle: float = 2.0,
) -> HoldResult:
    """Open ``streams`` idle event streams; the server's RSS growth per stream."""
    # Warm the code path with a few streams, close them, then take the baseline.
    warm, _ = await open_streams(host, port, tokens, 10)
    for stream in warm:
        stream.conn.close()
    await trio.sleep(0.5)
    before = rss_kib(server_pid) if server_pid else None
    cpu = CpuWindow(server_pid)
    cpu.start()
    t0 = time.perf_counter()
    opened, errors = await open_streams(host, port, tokens, streams, parallel=200)
    open_s = time.perf_counter() - t0
    async with trio.open_nursery() as nursery:
        for stream in opened:
            nursery.start_soon(stream.consume)
        await trio.sleep(settle)
        after = rss_kib(server_pid) if server_pid else None
        still_open = sum(not s.closed for s in opened)
        nursery.cancel_scope.cancel()
    cpu.stop()
    window = time.perf_counter() - t0
    if len(opened) < streams:
        errors["streams_not_opened"] += streams - len(opened)
    if still_open < len(opened):
        errors["closed_by_server"] += len(opened) - still_open
    per_stream = (after - before) / len(opened) if before is not None and after and opened else None
    return HoldResult(
        streams=len(opened),
        rss_before_kib=before,
        rss_after_kib=after,
        rss_per_stream_kib=per_stream,
        open_s=open_s,
        still_open=still_open,
        errors=dict(errors),
        window_s=window,
        loadgen_cpu_pct=100 * cpu.own_s / window,
        other_cpu_pct=100 * cpu.other_s / window,
        other_top=cpu.other_top,
        interrupts_cpu_pct=100 * cpu.interrupts_s / window,
    )


# --------------------------------------------------------------------------- upload mode


@dataclass
class UploadResult:
    uploads: int
    size: int  # bytes per upload
    seconds: float  # from the first byte written to the last answer read
    mb_per_s: float  # all bodies' bytes / seconds, in MB (10^6 bytes)
    latency: Latency  # per upload, from its first byte to its answer
    errors: dict[str, int]
    verified: int  # answers whose size (and sha256, when the answer has one) match the body
    rss_before_kib: int | None
    rss_peak_kib: int | None  # the highest of the samples taken every few ms during the run
    rss_after_kib: int | None
    rss_growth_kib: int | None  # peak - before
    rss_samples: int
    server_cpu_s: float | None
    loadgen_cpu_pct: float
    other_cpu_pct: float
    other_top: dict[str, float]
    interrupts_cpu_pct: float


async def run_upload(
    host: str,
    port: int,
    tokens: Sequence[str | None],
    *,
    uploads: int,
    size: int,
    path: str = "/files?name=bench.bin",
    server_pid: int | None = None,
    sample_interval: float = 0.005,
) -> UploadResult:
    """``uploads`` concurrent raw-body uploads of ``size`` distinct random bytes each."""
    bodies = [os.urandom(size) for _ in range(uploads)]
    digests = [hashlib.sha256(b).hexdigest() for b in bodies]
    hostport = f"{host}:{port}"
    heads = [
        build_request("POST", path, hostport, token=tokens[i % len(tokens)], body=b"").replace(
            b"Content-Type: application/json", b"Content-Type: application/octet-stream"
        )
        for i in range(uploads)
    ]
    heads = [h.replace(b"Content-Length: 0", f"Content-Length: {size}".encode()) for h in heads]
    conns = [await Connection.open(host, port) for _ in range(uploads)]
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    verified = 0
    go = trio.Event()
    peak: int | None = None
    samples = 0

    async def one(i: int) -> None:
        nonlocal verified
        await go.wait()
        t0 = time.perf_counter()
        try:
            await conns[i].send_all(heads[i])
            await conns[i].send_all(bodies[i])
            status, raw = await conns[i].read_response()
        except (OSError, HttpError) as exc:
            errors[type(exc).__name__] += 1
            return
        finally:
            conns[i].close()
        latencies.append(time.perf_counter() - t0)
        if status != 201:
            errors[f"status_{status}"] += 1
            return
        file = json.loads(raw).get("file", {})
        if file.get("size") == size and file.get("sha256", digests[i]) == digests[i]:
            verified += 1
        else:
            errors["answer_mismatch"] += 1

    async def sample(cancel: trio.CancelScope) -> None:
        nonlocal peak, samples
        with cancel:
            while server_pid:
                rss = rss_kib(server_pid)
                peak = rss if peak is None else max(peak, rss)
                samples += 1
                await trio.sleep(sample_interval)

    before = rss_kib(server_pid) if server_pid else None
    cpu = CpuWindow(server_pid)
    sampler = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample, sampler)
        async with trio.open_nursery() as senders:
            for i in range(uploads):
                senders.start_soon(one, i)
            await trio.sleep(0.1)  # every task waits on go
            cpu.start()
            t0 = time.perf_counter()
            go.set()
        elapsed = time.perf_counter() - t0
        cpu.stop()
        await trio.sleep(0.2)  # whatever the server frees after answering
        sampler.cancel()
    after = rss_kib(server_pid) if server_pid else None
    return UploadResult(
        uploads=uploads,
        size=size,
        seconds=elapsed,
        mb_per_s=uploads * size / elapsed / 1e6,
        latency=Latency.of(latencies),
        errors=dict(errors),
        verified=verified,
        rss_before_kib=before,
        rss_peak_kib=peak,
        rss_after_kib=after,
        rss_growth_kib=None if before is None or peak is None else peak - before,
        rss_samples=samples,
        server_cpu_s=cpu.server_s,
        loadgen_cpu_pct=100 * cpu.own_s / elapsed,
        other_cpu_pct=100 * cpu.other_s / elapsed,
        other_top=cpu.other_top,
        interrupts_cpu_pct=100 * cpu.interrupts_s / elapsed,
    )


# --------------------------------------------------------------------------- command line


def _ports(text: str) -> list[int]:
    """``8001`` or ``8001,8002``."""
    try:
        ports = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port or comma-separated ports: {text!r}") from None
    if not ports:
        raise argparse.ArgumentTypeError("no port given")
    return ports


def _load_tokens(path: str) -> list[str]:
    with open(path) as f:
        tokens = json.load(f)
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise SystemExit(f"{path}: expected a JSON list of token strings")
    return tokens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address (127.0.0.1)")
    parser.add_argument(
        "--port",
        type=_ports,
        required=True,
        help="server port; several (comma-separated, one per server process) for http and "
        "fanout: connections and streams are spread over them round-robin",
    )
    parser.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="server process: measure its CPU time and RSS from /proc (repeatable: the sum "
        "over several processes)",
    )
    parser.add_argument(
        "--watch-pid",
        type=int,
        action="append",
        default=[],
        help="another process (e.g. redis-server) whose CPU time over the window is reported "
        "on its own (repeatable)",
    )
    parser.add_argument("--tokens", help="JSON file with a list of bearer tokens")
    modes = parser.add_subparsers(dest="mode", required=True)
    http = modes.add_parser("http", help="closed-loop requests on keep-alive connections")
    http.add_argument("--connections", type=int, default=64)
    http.add_argument("--duration", type=float, default=5.0)
    http.add_argument("--warmup", type=float, default=1.0)
    http.add_argument("--method", default="POST")
    http.add_argument("--path", default="/send")
    http.add_argument("--body", help="JSON request body")
    http.add_argument("--expect-status", type=int, default=201)
    http.add_argument(
        "--kill-pid",
        type=int,
        help="send this process SIGKILL --kill-after seconds into the window",
    )
    http.add_argument("--kill-after", type=float, default=1.0)
    http.add_argument(
        "--mark",
        metavar="TAG",
        help="make every body's text unique: '<text> [bench TAG c=<connection> s=<n>]'",
    )
    fanout = modes.add_parser("fanout", help="one sender, many /events streams")
    fanout.add_argument("--streams", type=int, default=1000)
    fanout.add_argument("--messages", type=int, default=200)
    fanout.add_argument("--interval", type=float, default=0.02)
    fanout.add_argument("--sender-token", required=True)
    fanout.add_argument(
        "--sender-port", type=int, help="send through this port (default: the first)"
    )
    hold = modes.add_parser("hold", help="many idle /events streams; server RSS per stream")
    hold.add_argument("--streams", type=int, default=10_000)
    upload = modes.add_parser("upload", help="concurrent raw-body uploads; MB/s and server RSS")
    upload.add_argument("--uploads", type=int, default=20)
    upload.add_argument("--size", type=int, default=5 * 1024 * 1024)
    upload.add_argument("--path", default="/files?name=bench.bin")
    args = parser.parse_args(argv)

    raise_nofile_limit()
    tokens = _load_tokens(args.tokens) if args.tokens else []
    ports: list[int] = args.port
    server_pids: list[int] = args.server_pid
    first_pid = server_pids[0] if server_pids else None
    result: object
    if args.mode in ("hold", "upload") and (len(ports) > 1 or len(server_pids) > 1):
        raise SystemExit(f"{args.mode}: one --port and at most one --server-pid")
    if args.mode == "http":
        body = args.body.encode() if args.body is not None else None
        hostport = f"{args.host}:{ports[0]}"
        per_connection = [
            tokens[i % len(tokens)] if tokens else None for i in range(args.connections)
        ]
        requests: list[bytes | RequestMaker]
        if args.mark is not None:
            if body is None:
                raise SystemExit("--mark needs a --body with a text field")
            requests = list(
                marked_requests(
                    args.method, args.path, hostport, per_connection, json.loads(body), args.mark
                )
            )
        else:
            requests = [
                build_request(args.method, args.path, hostport, token=token, body=body)
                for token in per_connection
            ]
        result = trio.run(
            lambda: run_http(
                args.host,
                ports,
                requests,
                duration=args.duration,
                warmup=args.warmup,
                expect_status=args.expect_status,
                server_pid=server_pids,
                watch_pids=args.watch_pid,
                kill=None if args.kill_pid is None else (args.kill_pid, args.kill_after),
            )
        )
    elif args.mode == "fanout":
        result = trio.run(
            lambda: run_fanout(
                args.host,
                ports,
                tokens,
                args.sender_token,
                streams=args.streams,
                messages=args.messages,
                interval=args.interval,
                sender_port=args.sender_port,
                server_pid=server_pids,
                watch_pids=args.watch_pid,
            )
        )
    elif args.mode == "upload":
        result = trio.run(
            lambda: run_upload(
                args.host,
                ports[0],
                tokens or [None],
                uploads=args.uploads,
                size=args.size,
                path=args.path,
                server_pid=first_pid,
            )
        )
    else:
        result = trio.run(
            lambda: run_hold(
                args.host, ports[0], tokens, streams=args.streams, server_pid=first_pid
            )
        )
    json.dump(asdict(result), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
