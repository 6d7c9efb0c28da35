"""The ceiling of our stack: the smallest keep-alive h11-on-Trio server that does the same job.

It answers every ``POST`` by parsing the JSON body and replying ``201`` with a small JSON body
(``{"message": {"id": "<n>", "text": ...}}``); ``GET /events`` opens a Server-Sent Events stream
that receives every later POSTed message; ``POST /files`` streams its body to a temporary file in
the chunks it arrives in, fsyncs it, renames it into place, fsyncs the directory and answers
``201 {"file": {"id": ..., "size": ...}}`` (what trio-chat does with an upload, less hashing it and
keeping a record); any other request gets ``200 {"status": "ok"}``.

No routing beyond that, no auth, no storage of messages: whatever trio-chat spends beyond this is
the cost of its own layers. It is tuned as trio-chat is, so that a ratio compares the work and not
the tuning: the same JSON library (orjson) and the same garbage-collector settings (trio-chat's own
``tune_gc_for_a_long_lived_server``, applied once listening, as ``trio-chat serve`` does).

Run it as ``python -m bench.reference_server --port 0``; it prints ``listening on
http://HOST:PORT`` on stderr, like trio-chat.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import secrets
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import h11
import orjson
import trio

from trio_chat.cli import tune_gc_for_a_long_lived_server

MAX_INCOMPLETE_EVENT_SIZE: Final = 16 * 1024
READ_SIZE: Final = 65536
STREAM_BUFFER: Final = 1024  # events queued per /events stream before it is dropped
_ids = itertools.count(1)
_subscribers: set[trio.MemorySendChannel[bytes]] = set()


def _broadcast(event: bytes) -> None:
    for channel in list(_subscribers):
        try:
            channel.send_nowait(event)
        except trio.WouldBlock:  # too slow a reader: drop it, as a real server would
            _subscribers.discard(channel)
            channel.close()


async def _stream_events(stream: trio.SocketStream, conn: h11.Connection) -> None:
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await stream.send_all(conn.send(h11.Response(status_code=200, headers=headers)))
    send, receive = trio.open_memory_channel[bytes](STREAM_BUFFER)
    _subscribers.add(send)
    try:
        async for event in receive:
            await stream.send_all(conn.send(h11.Data(data=event)))
    finally:
        _subscribers.discard(send)


async def _respond(
    stream: trio.SocketStream, conn: h11.Connection, status: int, body: bytes
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    data = conn.send(h11.Response(status_code=status, headers=headers))
    data += conn.send(h11.Data(data=body))
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)


async def _next_event(stream: trio.SocketStream, conn: h11.Connection) -> h11.Event:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event  # type: ignore[return-value]
        conn.receive_data(await stream.receive_some(READ_SIZE))


async def _read_body(stream: trio.SocketStream, conn: h11.Connection) -> bytes:
    body = bytearray()
    while True:
        event = await _next_event(stream, conn)
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return bytes(body)
        else:
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}", 400)


def _fsync(fd: int) -> None:
    os.fsync(fd)


def _keep(temp: Path, final: Path) -> None:
    os.replace(temp, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _store_upload(stream: trio.SocketStream, conn: h11.Connection, files: Path) -> bytes:
    """The body to disk as it arrives (memory: one read), durably; the JSON answer."""
    name = secrets.token_hex(16)
    temp = files / "tmp" / name
    size = 0
    try:
        async with await trio.open_file(temp, "wb") as out:
            while True:
                event = await _next_event(stream, conn)
                if isinstance(event, h11.Data):
                    size += len(event.data)
                    await out.write(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}", 400)
            await out.flush()
            await trio.to_thread.run_sync(_fsync, out.wrapped.fileno())
        await trio.to_thread.run_sync(_keep, temp, files / name)
    except BaseException:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(lambda: temp.unlink(missing_ok=True))
        raise
    return orjson.dumps({"file": {"id": name, "size": size}})


def _handler(files: Path) -> Callable[[trio.SocketStream], Awaitable[None]]:
    async def handle(stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_INCOMPLETE_EVENT_SIZE)
        try:
            while True:
                event = await _next_event(stream, conn)
                if isinstance(event, h11.ConnectionClosed):
                    return
                if not isinstance(event, h11.Request):
                    continue
                request = event
                if request.method == b"POST" and request.target.startswith(b"/files"):
                    await _respond(stream, conn, 201, await _store_upload(stream, conn, files))
                elif request.method == b"POST":
                    text = orjson.loads(await _read_body(stream, conn)).get("text")
                    encoded = orjson.dumps({"message": {"id": str(next(_ids)), "text": text}})
                    if _subscribers:
                        _broadcast(b"event: message\ndata: " + encoded + b"\n\n")
                    await _respond(stream, conn, 201, encoded)
                elif request.target.startswith(b"/events"):
                    await _read_body(stream, conn)
                    await _stream_events(stream, conn)
                    return
                else:
                    await _read_body(stream, conn)
                    await _respond(stream, conn, 200, b'{"status": "ok"}')
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except ValueError:  # bad JSON: a benchmark bug, not a client we must be polite to
            pass
        finally:
            await stream.aclose()

    return handle


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: Path | None = None,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``task_status.started`` gets the bound port. Uploads go to
    ``data_dir/files`` (a temporary directory, removed at the end, when not given)."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ref-")))
        files = data_dir / "files"
        (files / "tmp").mkdir(parents=True, exist_ok=True)
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, _handler(files), listeners)
            print(f"listening on http://{host}:{bound}", file=sys.stderr, flush=True)
            task_status.started(bound)


async def _main(host: str, port: int, data_dir: Path | None) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, host, port, data_dir)
        tune_gc_for_a_long_lived_server()  # as trio-chat's serve does, once listening


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, help="where uploads go (default: a temp dir)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(_main, args.host, args.port, args.data_dir)


if __name__ == "__main__":
    main()
