"""Hostile HTTP against a listening server, property-based.

Each property starts one real server and lets Hypothesis drive many connections at it.
Hypothesis runs in a worker thread and does its I/O in the test's Trio run through
``trio.from_thread.run``, so the server is shared by every example. For each example: the
server answers with well-formed responses (never a 5xx, but for the 505 of a request line
that is not HTTP/1.x) or closes cleanly, within a bound, and logs no crash; afterwards it
still answers ``/healthz`` and holds no connection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TEST_SCRYPT_N, RunningServer, start_server
from tests.hardening.helpers import (
    Conn,
    RawResponse,
    parse_all,
    receive_all,
    request,
    wait_until,
)
from trio_chat.config import Config
from trio_chat.http.messages import dump_json

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXAMPLE_BOUND = 10.0  # seconds for one example's whole exchange


def fuzz_config(tmp_path: Path) -> Config:
    return Config(
        port=0,
        data_dir=tmp_path / "data",
        scrypt_n=TEST_SCRYPT_N,
        rate_limit_count=0,
        request_timeout=5,
        keepalive_timeout=5,
    )


async def exchange(server: RunningServer, pieces: list[bytes]) -> list[RawResponse]:
    """Send ``pieces`` (one write each), half-close, read to the server's close; parse."""
    with trio.fail_after(EXAMPLE_BOUND):
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            try:
                for piece in pieces:
                    await stream.send_all(piece)
                await stream.send_eof()
            except trio.BrokenResourceError:
                pass  # the server gave up on us early: fine, read what it said
            data = await receive_all(stream)
    responses, rest = parse_all(data)
    assert rest == b"", f"trailing bytes that are not a response: {rest[:200]!r}"
    for response in responses:
        response.check()
        # The one 5xx a client may cause: a request line whose version is not HTTP/1.x.
        assert response.status < 500 or response.code == "http_version_not_supported", response
    return responses


async def healthy(server: RunningServer) -> None:
    (response,) = await exchange(server, [request("GET", "/healthz")])
    assert response.status == 200 and response.json() == {"status": "ok"}


def split(payload: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(payload) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(payload[start:point])
        start = point
    pieces.append(payload[start:])
    return [p for p in pieces if p]


async def run_property(
    server: RunningServer, prop: Callable[[], None], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="trio_chat"):
        await trio.to_thread.run_sync(prop)
    # Nothing was stuck or crashed: every connection ended, nothing logged an exception.
    await wait_until(lambda: server.server.http.active == 0)
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not crashes, [r.getMessage() for r in crashes]
    await healthy(server)


async def register_raw(server: RunningServer, name: str) -> str:
    body = json.dumps({"username": name, "password": "correct horse"}).encode()
    (response,) = await exchange(server, [request("POST", "/register", body=body)])
    assert response.status == 201, response
    return str(response.json()["token"])


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out, at = b"", 0
    for size in sizes:
        piece = body[at : at + size]
        if not piece:
            break
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
        at += len(piece)
    if at < len(body):
        out += b"%x\r\n%s\r\n" % (len(body) - at, body[at:])
    return out + b"0\r\n\r\n"


# -- 1. mutated requests -----------------------------------------------------------------


def seed_requests(token: str) -> list[bytes]:
    send = json.dumps({"text": "hello"}).encode()
    return [
        request("GET", "/healthz"),
        request("GET", "/status", token=token),
        request("GET", "/messages?chat=general&limit=5", token=token),
        request("GET", "/updates?timeout=0", token=token),
        request("POST", "/send", body=send, token=token),
        request("POST", "/register", body=b'{"username": "x", "password": "correct horse"}'),
        request("POST", "/login", body=b'{"username": "x", "password": "wrong horse!"}'),
        request("POST", "/connect", body=b"{}", token=token),
        request("GET", "/openapi.json"),
        # Chunked, with an extension and a trailer.
        b"POST /send HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
        + token.encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n"
        + send[:5]
        + b"\r\n"
        + b"%x\r\n" % (len(send) - 5)
        + send[5:]
        + b"\r\n0\r\nX-Trailer: y\r\n\r\n",
        request("POST", "/register", body=b"{}", headers=[("Expect", "100-continue")]),
        b"GET /healthz HTTP/1.0\r\n\r\n",
    ]


JUNK_HEADERS = [
    b"Content-Length: -1\r\n",
    b"Content-Length: 10\r\nContent-Length: 11\r\n",
    b"Content-Length: 99999999999999999999999999\r\n",
    b"Content-Length: 1e3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Transfer-Encoding: chunked, chunked\r\n",
    b"Host: a\r\nHost: b\r\n",
    b" folded\r\n",
    b"No-Colon\r\n",
    b"Bad Name: x\r\n",
    b"X: \x00\x7f\xff\r\n",
    b"Authorization: Bearer \xff\xfe\r\n",
    b"Authorization: Basic Zm9vOmJhcg==\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: close\r\n",
    b"Connection: Upgrade\r\nUpgrade: h2c\r\n",
    b"X-Long: " + b"a" * 20000 + b"\r\n",
]
BAD_CHUNKS = [
    b"zz\r\n",
    b"-1\r\n",
    b"5\r\nab\r\n",
    b"ffffffffffffffffff\r\n",
    b"3\r\nabcde",
    b"0\r\n",
]


@st.composite
def mutations(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "header", "chunk", "dup"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            data[at % len(data)] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "cut":
            del data[at:]
        elif op == "header":
            line_end = data.find(b"\r\n")
            if line_end >= 0:
                data[line_end + 2 : line_end + 2] = draw(st.sampled_from(JUNK_HEADERS))
        elif op == "chunk":
            data[at:at] = draw(st.sampled_from(BAD_CHUNKS))
        elif op == "dup":
            data += data[: draw(st.integers(0, len(data)))]
    return bytes(data)


async def test_mutated_requests_get_4xx_or_close(tmp_path, caplog):
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, fuzz_config(tmp_path))
        seeds = seed_requests(await register_raw(server, "fuzzer"))
        seen: dict[int, int] = {}

        @SETTINGS
        @given(mutations(seeds), st.lists(st.integers(min_value=0), max_size=8))
        def prop(payload: bytes, cuts: list[int]) -> None:
            responses = trio.from_thread.run(exchange, server, split(payload, cuts))
            for response in responses:
                seen[response.status] = seen.get(response.status, 0) + 1

        await run_property(server, prop, caplog)
        # The fuzzer reached both the parser's errors and the handlers.
        assert any(400 <= s < 500 for s in seen) and any(200 <= s < 300 for s in seen), seen
        server.server.shutdown()


# -- 2. valid requests, pipelined and split at random points ---------------------------------


def pipeline_table(token: str) -> list[tuple[bytes, int]]:
    send = json.dumps({"text": "pipelined"}).encode()
    return [
        (request("GET", "/healthz"), 200),
        (request("GET", "/nope"), 404),
        (request("DELETE", "/healthz"), 405),
        (request("GET", "/status"), 401),
        (request("GET", "/status", token=token), 200),
        (request("GET", "/messages?limit=0", token=token), 400),
        (request("POST", "/send", body=send, token=token), 201),
        (request("POST", "/register", body=b"{not json"), 400),
        (request("POST", "/connect", body=b"", token=token), 200),
        (
            b"POST /send HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
            + token.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked(send, [3, 1, 7]),
            201,
        ),
    ]


async def test_pipelined_requests_split_anywhere_are_answered_in_order(tmp_path, caplog):
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, fuzz_config(tmp_path))
        table = pipeline_table(await register_raw(server, "piper"))

        @SETTINGS
        @given(
            st.lists(st.sampled_from(table), min_size=1, max_size=12),
            st.lists(st.integers(min_value=0), max_size=20),
        )
        def prop(requests: list[tuple[bytes, int]], cuts: list[int]) -> None:
            payload = b"".join(r for r, _ in requests)
            responses = trio.from_thread.run(exchange, server, split(payload, cuts))
            assert [r.status for r in responses] == [status for _, status in requests]

        await run_property(server, prop, caplog)
        server.server.shutdown()


# -- 3. hostile JSON bodies ----------------------------------------------------------------


class Body(bytes):
    """A request body whose repr stays short when Hypothesis reports a 60 KiB example."""

    def __repr__(self) -> str:
        text = super().__repr__()
        return text if len(text) < 200 else f"{text[:100]}...({len(self)} bytes)"


def big(make: Callable[[int], bytes]) -> Callable[[int], bytes]:
    return lambda n: Body(make(n))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
FIELDS_RAW = [b"text", b"to", b"username", b"password", b"message_id", b"reason", b"x"]
FIELDS = st.sampled_from([f.decode() for f in FIELDS_RAW])

bodies = st.one_of(
    st.binary(max_size=200),
    # Invalid UTF-8 (and surrogates, overlongs) inside an otherwise valid object.
    st.binary(min_size=1, max_size=40).map(lambda b: b'{"text": "' + b + b'"}'),
    st.sampled_from([b'{"text": "\xed\xa0\x80"}', b'{"text": "\xc0\xaf"}', b"\xef\xbb\xbf{}"]),
    st.sampled_from(FIELDS_RAW).map(lambda f: b'{"%s": "x\\udc80"}' % f),
    # Deep nesting, up to what fits under the 64 KiB body limit.
    st.integers(1, 30_000).map(big(lambda n: b"[" * n + b"]" * n)),
    st.integers(1, 10_000).map(big(lambda n: b'{"a":' * n + b"1" + b"}" * n)),
    # Huge numbers.
    st.integers(1, 60_000).map(big(lambda n: b'{"text": ' + b"9" * n + b"}")),
    st.sampled_from([b'{"text": 1e999999}', b'{"text": -0.0e-999}', b"NaN", b"[Infinity]"]),
    # Well-formed JSON of the wrong shape.
    st.dictionaries(FIELDS, JSON_VALUES, max_size=4).map(lambda d: json.dumps(d).encode()),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
)
JSON_ENDPOINTS = ["/register", "/login", "/send", "/comment", "/report", "/connect"]


def parsed(body: bytes) -> object:
    """The JSON value of ``body``, or None if it has none (None is no object either)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


async def test_hostile_json_bodies_get_400_never_5xx(tmp_path, caplog):
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, fuzz_config(tmp_path))
        token = await register_raw(server, "jsonfuzz")
        await register_raw(server, "target")
        codes: dict[str, int] = {}

        @SETTINGS
        @given(st.sampled_from(JSON_ENDPOINTS), bodies)
        def prop(path: str, body: bytes) -> None:
            raw = request("POST", path, body=body, token=token)
            (response,) = trio.from_thread.run(exchange, server, [raw])
            assert response.status in (200, 201, 400, 401, 403, 404, 409, 429), response
            if body.strip() and not is_json(body):
                assert response.code == "malformed_json", (body[:100], response)
            elif (
                body.strip()
                and response.code == "invalid_request"
                and not isinstance(parsed(body), dict)
            ):
                assert response.json()["error"]["fields"] == [
                    {"path": "$", "message": "must be a JSON object"}
                ], (body[:100], response)
            codes[response.code or "ok"] = codes.get(response.code or "ok", 0) + 1

        await run_property(server, prop, caplog)
        assert codes.get("malformed_json") and codes.get("invalid_request"), codes
        server.server.shutdown()


async def test_head_is_answered_with_headers_only(chat_server, caplog):
    # h11 frames a HEAD response without a body; the server used to try to send one anyway,
    # crash the connection task and answer nothing.
    with caplog.at_level(logging.WARNING, logger="trio_chat"), trio.fail_after(EXAMPLE_BOUND):
        stream = await trio.open_tcp_stream(chat_server.host, chat_server.port)
        async with stream:
            await stream.send_all(
                request("HEAD", "/healthz")
                + request("HEAD", "/nothing")
                + request("GET", "/healthz")
            )
            await stream.send_eof()
            data = await receive_all(stream)
    head, at = data.split(b"\r\n\r\n", 1)[0], data.index(b"\r\n\r\n") + 4
    # Answered as GET would be, Content-Length included, but no body bytes follow.
    assert head.startswith(b"HTTP/1.1 200 ") and b"\r\ncontent-length: 15\r\n" in head + b"\r\n"
    assert data[at:].startswith(b"HTTP/1.1 404 ")
    missing, at = data[at:], data[at:].index(b"\r\n\r\n") + 4
    assert missing[at:].startswith(b"HTTP/1.1 200 ")
    assert missing[at:].endswith(b'\r\n\r\n{"status":"ok"}')
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- lone surrogates: JSON can carry a string that has no UTF-8 form -------------------------

SURROGATE_TEXT = b'{"text": "a\\ud800b"}'


def test_the_json_encoder_survives_a_lone_surrogate():
    # Defence in depth (the API now rejects such text, see below): it used to raise, so one
    # stored string made every /messages and /connect that included it a 500.
    encoded = dump_json({"text": "a\ud800b", "ok": "\u00e9"})
    assert json.loads(encoded) == {"text": "a\ud800b", "ok": "\u00e9"}
    assert dump_json({"ok": "\u00e9"}) == '{"ok":"\u00e9"}'.encode()


async def test_a_lone_surrogate_in_text_is_rejected(make_user):
    alice = await make_user("alice")
    response = await alice.post("/send", content=SURROGATE_TEXT)
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"


async def test_a_lone_surrogate_in_a_password_is_a_400(http):
    body = b'{"username": "carol", "password": "correct \\ud800horse"}'
    for path in ("/register", "/login"):
        response = await http.post(path, content=body)
        assert response.status_code in (400, 401), (path, response.text)


# -- a JSON body that is not an object --------------------------------------------------------


async def test_a_json_body_that_is_not_an_object_is_a_field_error(make_user):
    alice = await make_user("alice")
    for body in (b'["hi"]', b'"x"', b"3", b"null", b"true"):
        response = await alice.post("/send", content=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        # Like every other validation error: the code, and where in the body it is wrong.
        assert error["code"] == "invalid_request", body
        assert error["fields"] == [{"path": "$", "message": "must be a JSON object"}], body
        assert error["message"] == "must be a JSON object @ $", body


# -- request smuggling -------------------------------------------------------------------------


async def test_content_length_with_transfer_encoding_is_400_and_closes(chat_server, make_user):
    """RFC 9112 §6.1: a request with both is a smuggling attempt: answer 400 and close."""
    alice = await make_user("alice")
    hidden = json.dumps({"text": "smuggled"}).encode()
    smuggled = request("POST", "/send", body=hidden, token=alice.token)
    # Framed by Transfer-Encoding the body ends at "0\r\n\r\n" and a second request follows;
    # framed by Content-Length all of it is one body.
    chunked_body = b"0\r\n\r\n" + smuggled
    raw = (
        b"POST /send HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + alice.token.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" % len(chunked_body)
    ) + chunked_body
    with trio.fail_after(EXAMPLE_BOUND):
        conn = await Conn.open(chat_server.host, chat_server.port)
        await conn.send(raw)
        answers = [await conn.response(), await conn.response()]
        await conn.aclose()
    # One answer, then the close: the hidden request is never served.
    assert [(a.status, a.code) if a else None for a in answers] == [(400, "bad_request"), None]
    assert answers[0] is not None and answers[0].header("connection") == "close"
    history = await alice.get("/messages")
    assert [m["text"] for m in history.json()["messages"]] == []
