"""Memory under hostile but legal use: it is bounded by configuration, not by what users send."""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.conftest import register
from tests.hardening.helpers import server_process
from tests.sse_client import open_events

KIB = 1024


@pytest.mark.slow
async def test_memory_stays_flat_under_a_flood_of_maximum_size_messages(tmp_path):
    """The caches are bounded in bytes: once full, more big messages cost no more memory."""
    biggest = "\N{GRINNING FACE}" * 4096  # 4096 characters, 16 KiB in memory and in UTF-8
    async with (
        server_process(
            tmp_path / "data", "--cache-size", "2MiB", "--rate-limit-count", "0"
        ) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        senders = [await register(client, f"flood{i}") for i in range(4)]
        reader = await register(client, "reader")

        async def flood(count: int) -> None:
            async def one(sender) -> None:
                for _ in range(count // len(senders)):
                    await sender.send(biggest, to="reader")
                    # Read back at once, through the caches.
                    response = await reader.get(
                        "/messages", params={"with": sender.name, "limit": "5"}
                    )
                    assert response.status_code == 200

            async with trio.open_nursery() as nursery:
                for sender in senders:
                    nursery.start_soon(one, sender)

        received = 0

        async def listen(live) -> None:
            nonlocal received
            while True:
                received += len(await live.read(1))

        async with (
            open_events(server.host, server.port, reader.token) as live,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(listen, live)  # a live stream gets every one (frame cache)
            await flood(400)  # fills the caches: 2 MiB is about 100 of these
            before = server.rss_kib()
            await flood(1200)  # 19 MiB of text more
            after = server.rss_kib()
            with trio.fail_after(10):
                while received < 1600:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    print(f"RSS {before} KiB -> {after} KiB after 1200 more 16 KiB messages")
    assert after - before < 8 * KIB
