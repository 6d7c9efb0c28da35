"""Protocol details every answer follows: the HTTP version, Date, HEAD."""

from __future__ import annotations

import email.utils
import re
import time

import pytest

from tests.hardening.helpers import Conn, RawResponse
from tests.http.helpers import start
from trio_chat.config import Config
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
