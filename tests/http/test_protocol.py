"""Protocol details every answer follows: the HTTP version, Date, HEAD."""

from __future__ import annotations

import pytest

from tests.hardening.helpers import Conn


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
