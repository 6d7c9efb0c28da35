"""Smoke test of the benchmark's load generator against the in-process reference server."""

from __future__ import annotations

import trio

from bench import reference_server
from bench.loadgen import Dechunker, build_request, json_body, run_fanout, run_http


async def test_http_load_counts_responses_without_errors(nursery: trio.Nursery) -> None:
    port = await nursery.start(reference_server.serve, "127.0.0.1", 0)
    body = json_body({"text": "smoke"})
    requests = [build_request("POST", "/send", f"127.0.0.1:{port}", token="t", body=body)] * 4

    result = await run_http(
        "127.0.0.1", port, requests, duration=0.3, warmup=0.05, expect_status=201
    )

    assert result.requests > 0
    assert result.latency.count == result.requests
    assert result.errors == {}


async def test_fanout_receives_every_message_on_every_stream(nursery: trio.Nursery) -> None:
    port = await nursery.start(reference_server.serve, "127.0.0.1", 0)

    result = await run_fanout(
        "127.0.0.1", port, ["t"], "t", streams=5, messages=3, interval=0.01, drain_timeout=5
    )

    assert result.pairs_received == result.pairs_expected == 15
    assert result.errors == {}


def test_dechunker_reassembles_chunks_split_anywhere() -> None:
    wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"
    for split in range(len(wire) + 1):
        dechunker = Dechunker()
        out = dechunker.feed(wire[:split]) + dechunker.feed(wire[split:])
        assert out == b"hello, world"
        assert dechunker.done
