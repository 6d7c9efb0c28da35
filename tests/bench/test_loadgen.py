"""Smoke tests of the benchmark's load generator against the in-process reference server.

No timing is asserted here: only that the load generator counts, marks and checks correctly.
"""

from __future__ import annotations

import json
from pathlib import Path

import trio

from bench import reference_server
from bench.loadgen import (
    Dechunker,
    build_request,
    expand_ranges,
    json_body,
    marked_requests,
    marked_text,
    run_fanout,
    run_http,
    run_upload,
)


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


def test_marked_requests_are_valid_http_with_unique_texts() -> None:
    (make,) = marked_requests("POST", "/send", "h:1", ["tok"], {"text": "hi", "to": None}, "r1")

    for seq in (0, 7, 12345):
        head, _, body = make(seq).partition(b"\r\n\r\n")
        assert head.startswith(b"POST /send HTTP/1.1\r\nHost: h:1\r\n")
        assert b"Authorization: Bearer tok" in head
        assert f"Content-Length: {len(body)}".encode() in head
        assert json.loads(body) == {"text": marked_text("hi", "r1", 0, seq), "to": None}


async def test_marked_load_reports_every_acknowledged_request(nursery: trio.Nursery) -> None:
    port = await nursery.start(reference_server.serve, "127.0.0.1", 0)
    makers = marked_requests("POST", "/send", f"127.0.0.1:{port}", ["a", "b"], {"text": "x"}, "t")

    result = await run_http("127.0.0.1", port, makers, duration=0.2, warmup=0.05, expect_status=201)

    acked = {c: expand_ranges(r) for c, r in result.acknowledged.items()}
    # Each connection's requests are numbered 0, 1, 2, ...: all answered but the one in flight.
    for seqs in acked.values():
        assert seqs == list(range(len(seqs)))
    assert sum(map(len, acked.values())) == result.acknowledged_count >= result.requests
    assert all(seq >= len(acked[str(c)]) for c, seq in result.unacknowledged)


async def test_a_wrong_status_is_not_acknowledged(nursery: trio.Nursery) -> None:
    port = await nursery.start(reference_server.serve, "127.0.0.1", 0)
    makers = marked_requests("POST", "/send", f"127.0.0.1:{port}", ["a"], {"text": "x"}, "t")

    result = await run_http("127.0.0.1", port, makers, duration=0.1, warmup=0.05, expect_status=200)

    assert result.acknowledged_count == 0
    assert result.errors.get("status_201", 0) == result.requests > 0


async def test_fanout_receives_every_message_on_every_stream(nursery: trio.Nursery) -> None:
    port = await nursery.start(reference_server.serve, "127.0.0.1", 0)

    result = await run_fanout(
        "127.0.0.1", port, ["t"], "t", streams=5, messages=3, interval=0.01, drain_timeout=5
    )

    assert result.pairs_received == result.pairs_expected == 15
    assert result.errors == {}


async def test_uploads_reach_the_reference_servers_disk(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    port = await nursery.start(reference_server.serve, "127.0.0.1", 0, tmp_path)

    result = await run_upload("127.0.0.1", port, ["t"], uploads=3, size=200_000)

    assert result.verified == 3
    assert result.errors == {}
    stored = [p for p in (tmp_path / "files").iterdir() if p.is_file()]
    assert sorted(p.stat().st_size for p in stored) == [200_000] * 3
    assert list((tmp_path / "files" / "tmp").iterdir()) == []


def test_dechunker_reassembles_chunks_split_anywhere() -> None:
    wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"
    for split in range(len(wire) + 1):
        dechunker = Dechunker()
        out = dechunker.feed(wire[:split]) + dechunker.feed(wire[split:])
        assert out == b"hello, world"
        assert dechunker.done
