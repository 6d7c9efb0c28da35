"""The ceiling of our stack: the smallest keep-alive h11-on-Trio server that does the same job.

It answers every ``POST`` by parsing the JSON body and replying ``201`` with a small JSON body
(``{"message": {"id": "<n>", "text": ...}}``); ``GET /events`` opens a Server-Sent Events stream
that receives every later POSTed message; any other request gets ``200 {"status": "ok"}``.
No routing beyond that, no auth, no storage: whatever trio-chat spends beyond this is the cost of
its own layers. Run it as ``python -m bench.reference_server --port 0``; it prints
``listening on http://HOST:PORT`` on stderr, like trio-chat.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
from typing import Final

import h11
import trio

MAX_INCOMPLETE_EVENT_SIZE: Final = 16 * 1024
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


async def _handle(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_INCOMPLETE_EVENT_SIZE)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
                continue
            if isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                continue
            request = event
            body = bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            if request.method == b"POST":
                text = json.loads(body).get("text")
                out = {"message": {"id": str(next(_ids)), "text": text}}
                encoded = json.dumps(out).encode()
                if _subscribers:
                    _broadcast(b"event: message\ndata: " + encoded + b"\n\n")
                await _respond(stream, conn, 201, encoded)
            elif request.target.startswith(b"/events"):
                await _stream_events(stream, conn)
                return
            else:
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


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``task_status.started`` gets the bound port."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, _handle, listeners)
        print(f"listening on http://{host}:{bound}", file=sys.stderr, flush=True)
        task_status.started(bound)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve, args.host, args.port)


if __name__ == "__main__":
    main()
