"""Whole answers written without h11's writer give the bytes and the state h11 would have."""

from __future__ import annotations

from typing import Any

import h11
import pytest
import trio
import trio.testing

from trio_chat.config import Config
from trio_chat.http import Response, Router, connection
from trio_chat.http.connection import HTTPConnection

from .helpers import BareLifecycle


def _connection_after(request: bytes) -> HTTPConnection:
    """A connection whose h11 has received ``request`` whole, as the loop leaves it."""
    stream, _ = trio.testing.memory_stream_pair()
    conn = HTTPConnection(stream, Router(), Config(), BareLifecycle())
    conn.conn.receive_data(request)
    while True:
        event = conn.conn.next_event()
        if isinstance(event, h11.Request):
            conn._head_request = event.method == b"HEAD"
        if isinstance(event, h11.EndOfMessage):
            return conn


def _both_ways(
    request: bytes, response: Response, monkeypatch: pytest.MonkeyPatch
) -> tuple[bytes, bytes, HTTPConnection, HTTPConnection, bool]:
    """(our bytes, h11's bytes, our connection, h11's, whether we wrote it ourselves)."""
    ours = _connection_after(request)
    written_by_h11 = False
    real_send = ours.conn.send

    def send(event: h11.Event) -> bytes | None:
        nonlocal written_by_h11
        written_by_h11 = True
        return real_send(event)

    monkeypatch.setattr(ours.conn, "send", send)
    our_bytes = ours._whole_answer(response)
    monkeypatch.undo()

    theirs = _connection_after(request)
    monkeypatch.setattr(connection, "_can_write_ourselves", lambda conn: False)
    their_bytes = theirs._whole_answer(response)
    monkeypatch.undo()
    return our_bytes, their_bytes, ours, theirs, not written_by_h11


def _state(conn: h11.Connection) -> tuple[Any, ...]:
    return (
        conn.our_state,
        conn.their_state,
        conn._cstate.keep_alive,
        conn.client_is_waiting_for_100_continue,
    )


GET = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"

RESPONSES = [
    Response.json(201, {"message": {"id": "m1", "text": "héllo ✓"}}),
    Response.json(200, {"ok": True}, [("X-RateLimit-Limit", "20"), ("Retry-After", "1")]),
    Response(status=404, body=b'{"error":{}}'),
    Response(status=200, body=b"<p>hi</p>", content_type="text/html; charset=utf-8"),
    Response(status=200, body=b"raw", content_type=None, headers=[("ETag", '"abc"')]),
    Response(status=200, body=b""),
    Response(status=599, body=b"{}"),  # no reason phrase known
]


@pytest.mark.parametrize("request_bytes", [GET, POST], ids=["GET", "POST"])
@pytest.mark.parametrize("response", RESPONSES, ids=[str(r.status) for r in RESPONSES])
def test_our_answer_is_h11s_answer(request_bytes, response, monkeypatch) -> None:
    ours, theirs, our_conn, their_conn, fast = _both_ways(request_bytes, response, monkeypatch)
    assert fast
    assert ours == theirs
    assert _state(our_conn.conn) == _state(their_conn.conn) == (h11.DONE, h11.DONE, True, False)
    # And the next request on the connection is read the same way.
    for conn in (our_conn.conn, their_conn.conn):
        conn.start_next_cycle()
        conn.receive_data(GET)
        assert isinstance(conn.next_event(), h11.Request)


@pytest.mark.parametrize(
    ("request_bytes", "response"),
    [
        # HEAD: the head only.
        (b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n", Response.json(200, {"a": 1})),
        # 204 and 304 carry no length.
        (GET, Response.empty()),
        (GET, Response(status=304, content_type=None)),
        # The client asked to close, or speaks HTTP/1.0: h11 adds connection: close.
        (b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", Response.json(200, {})),
        (b"GET /x HTTP/1.0\r\n\r\n", Response.json(200, {})),
        # A protocol switch proposed: h11 settles it.
        (
            b"GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
            Response.json(200, {}),
        ),
        # Headers h11 owns, or that it would refuse.
        (GET, Response.json(200, {}, [("Connection", "close")])),
        (GET, Response.json(200, {}, [("X-Bad", "a\r\nSet-Cookie: x=1")])),
        (GET, Response.json(200, {}, [("Bad Name", "1")])),
        (GET, Response(status=200, body=b"x", content_type="text/plain\r\nX-Bad: 1")),
    ],
    ids=[
        "HEAD",
        "204",
        "304",
        "close",
        "HTTP/1.0",
        "upgrade",
        "connection",
        "crlf",
        "name",
        "content-type",
    ],
)
def test_everything_else_is_h11s(request_bytes, response, monkeypatch) -> None:
    refused_by_h11 = False
    with monkeypatch.context() as patched:
        patched.setattr(connection, "_can_write_ourselves", lambda conn: False)
        try:
            _connection_after(request_bytes)._whole_answer(response)
        except h11.LocalProtocolError:
            refused_by_h11 = True
    if refused_by_h11:  # then it is never written our way either
        with pytest.raises(h11.LocalProtocolError):
            _connection_after(request_bytes)._whole_answer(response)
        return
    ours, theirs, our_conn, their_conn, fast = _both_ways(request_bytes, response, monkeypatch)
    assert not fast
    assert ours == theirs
    assert _state(our_conn.conn) == _state(their_conn.conn)


def test_shutdown_answers_go_through_h11_and_close(monkeypatch) -> None:
    conn = _connection_after(GET)
    monkeypatch.setattr(BareLifecycle, "shutting_down", True)
    data = conn._whole_answer(Response.json(200, {}))
    assert b"\r\nconnection: close\r\n" in data
    assert conn.conn.our_state is h11.MUST_CLOSE


@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
async def test_streamed_chunks_are_framed_as_h11_frames_them(version, monkeypatch) -> None:
    chunks = [b"data: one\n\n", b"", b"x" * 70_000, b"data: \xe2\x9c\x93\n\n"]

    async def body(send: Any) -> None:
        for chunk in chunks:
            await send(chunk)

    def answer() -> Response:
        return Response(status=200, content_type="text/event-stream", stream=body)

    request = b"GET /events HTTP/%s\r\nHost: x\r\n\r\n" % version
    ours = _connection_after(request)
    written: list[bytes] = []

    async def capture(self: HTTPConnection, data: bytes | None) -> None:
        written.append(data or b"")

    monkeypatch.setattr(HTTPConnection, "_send_bytes", capture)
    async with trio.open_nursery() as nursery:  # what run() gives a connection
        ours._tasks, ours._deadline = nursery, nursery.cancel_scope
        await ours._send(answer(), _request(), whole=True)

    theirs = h11.Connection(h11.SERVER)
    theirs.receive_data(request)
    while not isinstance(theirs.next_event(), h11.EndOfMessage):
        pass
    expected = theirs.send(ours._head(answer(), None)) or b""
    for chunk in chunks:
        expected += theirs.send(h11.Data(data=chunk)) or b""
    expected += theirs.send(h11.EndOfMessage()) or b""
    assert b"".join(written) == expected
    assert ours.conn.our_state is theirs.our_state


def _request() -> Any:
    from trio_chat.http import Request

    return Request(method="GET", target="/events", headers=[])
