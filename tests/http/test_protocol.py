"""Protocol details: the HTTP version, the Date header, HEAD."""

from __future__ import annotations

import email.utils
import json
import re
import time

import pytest

from tests.hardening.helpers import Conn, RawResponse
from tests.http.helpers import read_responses, start
from trio_chat.config import Config
from trio_chat.http import Request, Response, Route, Router
from trio_chat.http.messages import HTTPDate


@pytest.mark.parametrize("version", [b"HTTP/3.0", b"HTTP/2.0", b"HTTP/0.9"])
async def test_a_major_version_other_than_1_is_505_and_closes(server, version):
    conn = Conn(await server.connect())
    # Pipelined behind it, a request that must not be answered.
    await conn.send(
        b"GET /echo " + version + b"\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answer = await conn.response()
    assert answer is not None and answer.status == 505, answer
    assert answer.code == "http_version_not_supported"
    assert answer.headers["connection"] == ["close"]
    assert await conn.response() is None  # closed, the second request unanswered


async def test_http_1_0_is_still_served(server):
    conn = Conn(await server.connect())
    await conn.send(b"GET /echo HTTP/1.0\r\n\r\n")
    answer = await conn.response()
    assert answer is not None and answer.status == 200
    assert await conn.response() is None  # HTTP/1.0 without keep-alive: closed after it


# -- Date --------------------------------------------------------------------------------------

IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT"
)


def assert_dated(answer: RawResponse | None) -> None:
    assert answer is not None
    (date,) = answer.headers["date"]  # exactly one
    assert IMF_FIXDATE.fullmatch(date), date
    assert abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) < 5


async def test_every_answer_carries_a_date(server, nursery):
    conn = Conn(await server.connect())
    await conn.send(
        b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"  # 200
        b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"  # 404
        b"PUT /echo HTTP/1.1\r\nHost: x\r\n\r\n"  # 405
        b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n"  # 500
        b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"  # chunked
        b"GET /echo HTTP/1.1\r\nBad Header\r\n\r\n"  # 400, and close
    )
    statuses = []
    while (answer := await conn.response()) is not None:
        assert_dated(answer)
        statuses.append(answer.status)
    assert statuses == [200, 404, 405, 500, 200, 400]
    # The answer to a connection over the cap is written before reading anything.
    capped = await start(nursery, Config(port=0, max_connections=1))
    held = Conn(await capped.connect())
    await held.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_dated(await held.response())
    refused = Conn(await capped.connect())
    answer = await refused.response()
    assert answer is not None and answer.status == 503
    assert_dated(answer)
    await capped.close()


def test_the_date_is_formatted_once_a_second():
    now = [784111777.25]  # RFC 9110's example: Sun, 06 Nov 1994 08:49:37 GMT
    date = HTTPDate(lambda: now[0])
    first = date()
    assert first == b"Sun, 06 Nov 1994 08:49:37 GMT"
    now[0] += 0.5
    assert date() is first  # the same second: the same bytes, not formatted again
    now[0] += 0.5
    assert date() == b"Sun, 06 Nov 1994 08:49:38 GMT"


# -- HEAD ----------------------------------------------------------------------------------


async def test_head_is_answered_like_get_with_headers_only(server):
    stream = await server.connect()
    await stream.send_all(
        b"HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n"  # a streamed answer: its head only
        b"HEAD /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"  # and the connection is still in step
    )
    head, get, stream_head, missing, again = await read_responses(
        stream, 5, ["HEAD", "GET", "HEAD", "HEAD", "GET"]
    )
    assert head[0] == get[0] == 200 and head[2] == b""
    del head[1]["date"], get[1]["date"]
    assert head[1] == get[1]  # the same headers, Content-Length included
    assert stream_head[0] == 200 and stream_head[2] == b""
    assert stream_head[1]["transfer-encoding"] == "chunked"
    assert missing[0] == 404 and missing[2] == b""
    assert again[0] == 200 and again[2] == get[2]
    await stream.aclose()


async def test_allow_lists_head_where_get_is_allowed(nursery):
    async def ok(request: Request) -> Response:
        return Response.empty()

    router = Router()
    for method, path in [("GET", "/both"), ("POST", "/both"), ("POST", "/post")]:
        router.add(Route(method, path, ok))
    server = await start(nursery, Config(port=0), router)
    stream = await server.connect()
    await stream.send_all(
        b"PUT /both HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /post HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /post HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    both, head_post, get_post = await read_responses(stream, 3, ["PUT", "HEAD", "GET"])
    assert both[0] == 405 and both[1]["allow"] == "GET, HEAD, POST"
    assert json.loads(both[2])["error"]["allow"] == ["GET", "HEAD", "POST"]
    assert head_post[0] == get_post[0] == 405
    assert head_post[1]["allow"] == get_post[1]["allow"] == "POST"
    await server.close()
