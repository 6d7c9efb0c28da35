"""Uploads against the real server process: memory stays bounded, a crash leaves nothing."""

from __future__ import annotations

import os
import signal

import httpx
import pytest
import trio

from tests.conftest import register
from tests.hardening.helpers import server_process

MIB = 1024 * 1024


@pytest.mark.slow
async def test_concurrent_5_mib_uploads_keep_memory_bounded(tmp_path):
    data = os.urandom(5 * MIB)
    async with (
        server_process(tmp_path / "data", log_level="warning") as server,
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
    ):
        users = [await register(client, f"up{i}") for i in range(10)]

        async def send(user, name: str) -> None:
            response = await client.post(
                "/files", content=data, params={"name": name}, headers=user.auth
            )
            assert response.status_code == 201, response.text

        await send(users[0], "warm-up.bin")  # first-use allocations, out of the measure
        before = server.rss_kib()
        peak = before

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, server.rss_kib())
                await trio.sleep(0.01)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            async with trio.open_nursery() as uploads:
                for i in range(20):
                    uploads.start_soon(send, users[i % 10], f"f{i}.bin")
            nursery.cancel_scope.cancel()
    grown = (peak - before) / 1024
    print(
        f"RSS {before} KiB, peak {peak} KiB during 20 concurrent 5 MiB uploads (+{grown:.1f} MiB)"
    )
    assert grown < 16, f"RSS grew by {grown:.1f} MiB for 100 MiB uploaded"


@pytest.mark.slow
async def test_sigkill_during_an_upload_leaves_no_half_file_and_no_record(tmp_path):
    data_dir = tmp_path / "data"
    async with server_process(data_dir) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            token = (await register(client, "alice")).token
        stream = await trio.open_tcp_stream(server.host, server.port)
        await stream.send_all(
            (
                "POST /files?name=half.bin HTTP/1.1\r\nHost: t\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {5 * MIB}\r\n\r\n"
            ).encode()
            + os.urandom(2 * MIB)
        )
        tmp = data_dir / "files" / "tmp"
        with trio.fail_after(10):
            while not any(p.stat().st_size > 0 for p in tmp.iterdir()):
                await trio.sleep(0.01)  # the upload is being written
        server.process.send_signal(signal.SIGKILL)
        await server.process.wait()
        await stream.aclose()
    assert list(tmp.iterdir())  # the crash left a partial temporary file...

    async with (
        server_process(data_dir) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        assert any("unfinished upload" in line for line in server.log)
        assert list(tmp.iterdir()) == []  # ...which start-up removed
        blobs = [p for p in (data_dir / "files").rglob("*") if p.is_file()]
        assert blobs == []  # and nothing was kept as a file
        login = await client.post("/login", json={"username": "alice", "password": "correct horse"})
        assert login.status_code == 200
