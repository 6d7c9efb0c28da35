"""A small event-stream client on trio sockets and h11, for the tests.

(httpx's streaming iterators are nested async generators that are not closed promptly
under Trio; this one owns its socket and closes it on exit.)
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import h11
import trio


class EventStream:
    def __init__(self, stream: trio.SocketStream, conn: h11.Connection) -> None:
        self.stream = stream
        self.conn = conn
        self.status = 0
        self.headers: dict[str, str] = {}
        self.comments = 0
        self.ended = False
        self._buffer = ""
        # A chunk may end inside a character: decode across chunk boundaries.
        self._decode = codecs.getincrementaldecoder("utf-8")().decode

    async def _next(self) -> h11.Event:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
                continue
            return event  # type: ignore[return-value]

    async def start(self) -> None:
        event = await self._next()
        assert isinstance(event, h11.Response), event
        self.status = event.status_code
        self.headers = {k.decode(): v.decode() for k, v in event.headers}

    async def body(self) -> bytes:
        chunks = []
        while True:
            event = await self._next()
            if isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            else:
                return b"".join(chunks)

    async def read(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` events, each frame checked for form (id, event, data)."""
        events: list[dict[str, Any]] = []
        while len(events) < count:
            while "\n\n" not in self._buffer:
                event = await self._next()
                if isinstance(event, h11.Data):
                    self._buffer += self._decode(bytes(event.data))
                else:
                    self.ended = True
                    raise AssertionError(f"stream ended after {len(events)} of {count} events")
            frame, self._buffer = self._buffer.split("\n\n", 1)
            lines = frame.split("\n")
            if all(line.startswith(":") for line in lines):
                self.comments += 1
                continue
            fields = dict(line.split(": ", 1) for line in lines)
            assert set(fields) == {"id", "event", "data"}, frame
            data = json.loads(fields["data"])
            assert data["cursor"] == fields["id"] and data["type"] == fields["event"]
            events.append(data)
        return events

    async def read_comment(self) -> None:
        """Read up to and including the next comment frame (a keep-alive); no events before."""
        while "\n\n" not in self._buffer:
            event = await self._next()
            assert isinstance(event, h11.Data), event
            self._buffer += self._decode(bytes(event.data))
        frame, self._buffer = self._buffer.split("\n\n", 1)
        assert frame.startswith(":"), frame
        self.comments += 1

    async def read_to_end(self) -> None:
        """Read until the server ends the stream properly (chunked end, not a reset)."""
        while True:
            event = await self._next()
            if isinstance(event, h11.EndOfMessage):
                self.ended = True
                return
            assert isinstance(event, h11.Data), event


@asynccontextmanager
async def open_events(
    host: str,
    port: int,
    token: str,
    *,
    since: str | None = None,
    last_event_id: str | None = None,
) -> AsyncIterator[EventStream]:
    stream = await trio.open_tcp_stream(host, port)
    try:
        conn = h11.Connection(h11.CLIENT)
        target = "/events" + (f"?{urlencode({'since': since})}" if since is not None else "")
        headers = [("host", f"{host}:{port}"), ("authorization", f"Bearer {token}")]
        if last_event_id is not None:
            headers.append(("last-event-id", last_event_id))
        await stream.send_all(conn.send(h11.Request(method="GET", target=target, headers=headers)))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        events = EventStream(stream, conn)
        await events.start()
        yield events
    finally:
        await stream.aclose()
