"""Resource limits against the real server: head and body sizes, slow clients (both
directions), the connection cap, and the memory of many idle connections."""

from __future__ import annotations

import resource

import pytest
import trio
import trio.testing

from tests.hardening.helpers import Conn, request, server_process, wait_until

KIB = 1024


async def open_conn(chat_server) -> Conn:
    return await Conn.open(chat_server.host, chat_server.port)


async def test_head_too_large_is_431(chat_server):
    for head in (
        request("GET", "/healthz", headers=[("X-Big", "a" * 17 * KIB)]),
        request("GET", "/healthz?" + "q" * 17 * KIB),
        request("GET", "/healthz", headers=[(f"X-{i}", "b" * 100) for i in range(200)]),
    ):
        conn = await open_conn(chat_server)
        with trio.fail_after(5):
            await conn.send(head)
            response = await conn.response()
            assert response is not None and response.status == 431
            assert response.code == "request_header_fields_too_large"
            assert await conn.closed()
        await conn.aclose()


async def test_declared_length_over_the_limit_is_413_before_the_body(chat_server):
    conn = await open_conn(chat_server)
    with trio.fail_after(5):
        # Only the head: the answer must come without the server waiting for 10 MB.
        await conn.send(
            b"POST /register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n"
        )
        response = await conn.response()
    assert response is not None and response.status == 413
    assert response.code == "payload_too_large" and response.header("connection") == "close"
    await conn.aclose()


async def test_chunked_body_over_the_limit_is_413(chat_server):
    conn = await open_conn(chat_server)
    chunk = b"%x\r\n%s\r\n" % (8 * KIB, b"x" * 8 * KIB)
    with trio.fail_after(5):
        await conn.send(b"POST /register HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        # The answer comes once the running total passes 64 KiB; stop writing when it does.
        with trio.move_on_after(2):
            while sent <= 128 * KIB:
                await conn.send(chunk)
                sent += 8 * KIB
        response = await conn.response()
    assert response is not None and response.status == 413
    assert response.code == "payload_too_large"
    await conn.aclose()


async def test_unknown_transfer_coding_is_a_4xx(chat_server):
    # h11 hints 501 here; a client must not be able to make the server report a 5xx.
    conn = await open_conn(chat_server)
    with trio.fail_after(5):
        await conn.send(b"POST /register HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n")
        response = await conn.response()
    assert response is not None and response.status == 400
    await conn.aclose()


async def test_slowloris_is_cut_off_at_the_request_deadline(tuned_server, mock_clock):
    chat_server, http = await tuned_server(request_timeout=5.0, keepalive_timeout=100.0)
    slow = await open_conn(chat_server)
    await slow.send(b"GET /hea")
    await trio.testing.wait_all_tasks_blocked()
    # Others are served while the slow head trickles in.
    for piece in (b"lth", b"z HT", b"TP/1"):
        mock_clock.jump(1.0)
        await slow.send(piece)
        assert (await http.get("/healthz")).status_code == 200
        await trio.testing.wait_all_tasks_blocked()
    assert chat_server.server.http.active >= 1  # 3 s in: still waiting for the rest
    mock_clock.jump(2.5)  # 5.5 s since the request started: past the deadline
    with trio.move_on_after(1) as never:  # mock time: only a bug would make this fire
        response = await slow.response()
    assert not never.cancelled_caught
    assert response is not None and response.status == 408
    assert response.code == "request_timeout"
    assert await slow.closed()
    await slow.aclose()
    assert (await http.get("/healthz")).status_code == 200


async def test_a_client_that_never_reads_is_cut_off(tuned_server, mock_clock):
    chat_server, http = await tuned_server(request_timeout=5.0)
    # Pipelined requests whose answers (14 KB each) are never read: once TCP buffers fill,
    # the server's write blocks. It used to block forever, holding the task and a slot;
    # now the request's deadline (request_timeout for a pipelined one) bounds its answer.
    reader = await open_conn(chat_server)
    await reader.send(request("GET", "/openapi.json") * 3000)  # ~40 MB of answers
    await trio.testing.wait_all_tasks_blocked()
    assert chat_server.server.http.active == 1
    assert (await http.get("/healthz")).status_code == 200  # others are still served
    before = chat_server.server.http.active
    mock_clock.jump(6.0)  # the blocked write gives up
    await trio.testing.wait_all_tasks_blocked()
    mock_clock.jump(2.0)  # and the polite close's drain ends
    await trio.testing.wait_all_tasks_blocked()
    assert chat_server.server.http.active == before - 1
    await reader.aclose()


@pytest.mark.config(max_connections=3)
async def test_connection_cap_is_503_overloaded_then_service_resumes(chat_server):
    held = []
    for _ in range(3):
        conn = await open_conn(chat_server)
        await conn.send(request("GET", "/healthz"))  # answered: the server has accepted it
        assert (await conn.response()).status == 200
        held.append(conn)
    with trio.fail_after(5):
        for _ in range(5):
            extra = await open_conn(chat_server)
            await extra.send(request("GET", "/healthz"))
            refused = await extra.response()
            assert refused is not None and refused.status == 503
            assert refused.code == "overloaded" and refused.header("retry-after") == "1"
            assert await extra.closed()
            await extra.aclose()
        # The held connections are still served.
        await held[0].send(request("GET", "/healthz"))
        assert (await held[0].response()).status == 200
        await held.pop().aclose()
        await wait_until(lambda: chat_server.server.http.active == 2)
        again = await open_conn(chat_server)
        await again.send(request("GET", "/healthz"))
        assert (await again.response()).status == 200
        await again.aclose()
    for conn in held:
        await conn.aclose()


@pytest.mark.slow
async def test_memory_is_bounded_under_1000_silent_connections(tmp_path):
    count = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count * 4), hard))
    async with server_process(tmp_path / "data", log_level="warning") as server:
        probe = await Conn.open(server.host, server.port)
        for _ in range(20):  # warm up: the first requests allocate caches and code paths
            await probe.send(request("GET", "/healthz"))
            assert (await probe.response()).status == 200
        before = server.rss_kib()
        silent = []
        late = None
        try:
            with trio.fail_after(30):
                for _ in range(count):
                    silent.append(await trio.open_tcp_stream(server.host, server.port))
                # Accepts are in order: once a later connection is answered, all are accepted.
                late = await Conn.open(server.host, server.port)
                await late.send(request("GET", "/healthz"))
                assert (await late.response()).status == 200
                await probe.send(request("GET", "/healthz"))
                assert (await probe.response()).status == 200
            after = server.rss_kib()
            per_connection = (after - before) * KIB / count
            print(f"RSS {before} KiB -> {after} KiB: {per_connection / KIB:.1f} KiB/connection")
            assert per_connection < 64 * KIB
        finally:
            for stream in silent:
                await stream.aclose()
            await probe.aclose()
            if late is not None:
                await late.aclose()
