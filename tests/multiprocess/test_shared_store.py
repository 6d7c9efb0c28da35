"""Several server processes on one Redis: real ``trio-chat serve`` processes, a port each,
one private redis-server, clients spread over the processes."""

from __future__ import annotations

import itertools
import random
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import trio

from tests.hardening.helpers import ServerProcess, server_process
from tests.hardening.test_faults import check_nothing_acknowledged_was_lost
from tests.redis_server import RedisServer
from tests.sse_client import open_events

from ..conftest import PASSWORD

pytestmark = pytest.mark.slow


async def start_processes(
    stack: AsyncExitStack, data_dir: Path, redis_url: str, count: int, *args: str
) -> list[ServerProcess]:
    return [
        await stack.enter_async_context(
            server_process(
                data_dir, "--store", redis_url, "--rate-limit-count", "0", *args, cheap_hash=True
            )
        )
        for _ in range(count)
    ]


async def register(url: str, name: str) -> str:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/register", json={"username": name, "password": PASSWORD})
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_processes_share_accounts_messages_limits_and_live_delivery(tmp_path, redis_url):
    async with AsyncExitStack() as stack:
        a, b, c = await start_processes(stack, tmp_path / "data", redis_url, 3)
        alice = await register(a.url, "alice")
        bob = await register(b.url, "bob")
        eve = await register(c.url, "eve")
        # Accounts are shared: the name is taken on every process, a token works on each.
        async with httpx.AsyncClient(base_url=c.url) as client:
            again = await client.post("/register", json={"username": "ALICE", "password": "x" * 8})
            assert again.status_code == 409
            assert (await client.get("/status", headers=auth(alice))).status_code == 200
        start = 0
        async with httpx.AsyncClient(timeout=10) as client:
            # Bob and Eve wait on B and C *before* anything is sent (through A).
            async def wait(url: str, token: str, out: list[dict]) -> None:
                response = await client.get(
                    f"{url}/updates", params={"since": start, "timeout": "5"}, headers=auth(token)
                )
                assert response.status_code == 200, response.text
                out.extend(response.json()["events"])

            bob_saw: list[dict] = []
            eve_saw: list[dict] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait, b.url, bob, bob_saw)
                nursery.start_soon(wait, c.url, eve, eve_saw)
                await trio.sleep(0.3)  # both polls are parked on their processes
                sent = await client.post(
                    f"{a.url}/send", json={"text": "to bob only", "to": "bob"}, headers=auth(alice)
                )
                assert sent.status_code == 201, sent.text
            assert [e["message"]["text"] for e in bob_saw] == ["to bob only"]
            assert eve_saw == []  # private: never reaches a third user, on any process
            # One cursor space: resuming from Bob's cursor on another process misses nothing.
            common = await client.post(f"{b.url}/send", json={"text": "hi"}, headers=auth(bob))
            resumed = await client.get(
                f"{c.url}/updates",
                params={"since": bob_saw[-1]["cursor"], "timeout": "5"},
                headers=auth(alice),
            )
            assert [e["message"]["id"] for e in resumed.json()["events"]] == [
                common.json()["message"]["id"]
            ]
            # Read on one process, read everywhere.
            private = {"chat": bob_saw[0]["message"]["chat"]}
            read = await client.get(f"{a.url}/messages", params=private, headers=auth(eve))
            assert read.status_code == 404
            page = await client.get(
                f"{c.url}/messages", params={"with": "alice"}, headers=auth(bob)
            )
            assert [m["text"] for m in page.json()["messages"]] == ["to bob only"]


async def test_the_rate_limit_and_reports_are_exact_across_processes(tmp_path, redis_url):
    async with AsyncExitStack() as stack:
        processes = [
            await stack.enter_async_context(
                server_process(tmp_path / "data", "--store", redis_url, cheap_hash=True)
            )
            for _ in range(3)
        ]
        urls = [p.url for p in processes]
        mallory = await register(urls[0], "mallory")
        reporters = [await register(urls[i % 3], f"r{i}") for i in range(3)]
        async with httpx.AsyncClient(timeout=10) as client:
            answers: list[int] = []

            async def send(i: int) -> None:
                response = await client.post(
                    f"{urls[i % 3]}/send", json={"text": f"m{i}"}, headers=auth(mallory)
                )
                answers.append(response.status_code)

            async with trio.open_nursery() as nursery:  # 30 at once, spread over 3 processes
                for i in range(30):
                    nursery.start_soon(send, i)
            assert sorted(answers) == [201] * 20 + [429] * 10
            # Three reports from three processes: one ban.
            for i, token in enumerate(reporters):
                response = await client.post(
                    f"{urls[i]}/report", json={"username": "mallory"}, headers=auth(token)
                )
                assert response.status_code == 201, response.text
            for url in urls:
                status = (await client.get(f"{url}/status", headers=auth(mallory))).json()
                assert status["banned_until"] is not None


async def test_a_scheduled_message_is_sent_once_even_when_its_process_dies(tmp_path, redis_url):
    async with AsyncExitStack() as stack:
        a, b, c = await start_processes(stack, tmp_path / "data", redis_url, 3)
        alice = await register(a.url, "alice")
        async with httpx.AsyncClient(timeout=10) as client:
            send_at = datetime.fromtimestamp(time.time() + 2, tz=UTC).isoformat()
            made = await client.post(
                f"{a.url}/send", json={"text": "later", "send_at": send_at}, headers=auth(alice)
            )
            assert made.status_code == 202, made.text
            a.process.kill()  # the process that took it is gone before its time
            await a.process.wait()
            with trio.fail_after(10):
                while True:
                    page = await client.get(f"{b.url}/messages", headers=auth(alice))
                    texts = [m["text"] for m in page.json()["messages"]]
                    if texts:
                        break
                    await trio.sleep(0.1)
            await trio.sleep(1)  # both survivors' timers have fired by now
            page = await client.get(f"{c.url}/messages", headers=auth(alice))
            assert [m["text"] for m in page.json()["messages"]] == ["later"]


async def test_sigkill_of_one_process_mid_storm_loses_nothing_acknowledged(tmp_path, redis_url):
    async with AsyncExitStack() as stack:
        processes = await start_processes(stack, tmp_path / "data", redis_url, 3)
        urls = [p.url for p in processes]
        tokens = {f"u{i}": await register(urls[i % 3], f"u{i}") for i in range(6)}
        acked: dict[str, str] = {}
        attempted: set[str] = set()
        victim = processes[1]
        killed = trio.Event()
        after_kill = 0

        async def storm(name: str, rng: random.Random) -> None:
            nonlocal after_kill
            async with httpx.AsyncClient(timeout=10) as client:
                for n in itertools.count():
                    if len(acked) >= 900:
                        return
                    url = rng.choice([u for u in urls if u != victim.url or not killed.is_set()])
                    text = f"{name} #{n} {rng.random()}"
                    attempted.add(text)
                    try:
                        response = await client.post(
                            f"{url}/send", json={"text": text}, headers=auth(tokens[name])
                        )
                    except httpx.TransportError:
                        continue  # that process is gone: the client moves to another
                    assert response.status_code == 201, response.text
                    acked[response.json()["message"]["id"]] = text
                    after_kill += killed.is_set()

        with trio.fail_after(90):
            async with trio.open_nursery() as nursery:
                for i, name in enumerate(tokens):
                    nursery.start_soon(storm, name, random.Random(i))
                while len(acked) < 300:
                    await trio.sleep(0.01)
                victim.process.kill()  # SIGKILL mid-storm: it may hold the write lease
                killed.set()
        assert victim.process.returncode == -9
        assert after_kill > 0  # the others carried on
        async with httpx.AsyncClient(base_url=urls[2], timeout=30) as client:
            await check_nothing_acknowledged_was_lost(client, tokens["u0"], acked, {}, attempted)


async def test_a_stream_cut_by_a_dead_process_resumes_on_another_losing_nothing(
    tmp_path, redis_url
):
    async with AsyncExitStack() as stack:
        a, b, c = await start_processes(stack, tmp_path / "data", redis_url, 3)
        alice = await register(a.url, "alice")
        bob = await register(b.url, "bob")
        async with httpx.AsyncClient(timeout=10) as client:

            async def send(text: str) -> str:
                response = await client.post(
                    f"{a.url}/send", json={"text": text}, headers=auth(alice)
                )
                assert response.status_code == 201, response.text
                message_id: str = response.json()["message"]["id"]
                return message_id

            async with open_events(b.host, b.port, bob, since="0") as stream:
                first = [await send(f"before {i}") for i in range(3)]
                seen = await stream.read(3)  # sent through A, streamed by B
                assert [e["message"]["id"] for e in seen] == first
                b.process.kill()  # B dies with the stream open
                await b.process.wait()
            later = [await send(f"after {i}") for i in range(3)]
            # Bob's client reconnects to C with the last id it got: nothing lost or repeated.
            async with open_events(
                c.host, c.port, bob, last_event_id=seen[-1]["cursor"]
            ) as resumed:
                again = await resumed.read(3)
            assert [e["message"]["id"] for e in again] == later


async def test_a_redis_that_does_not_fsync_every_write_is_refused(tmp_path, redis_server):
    loose = RedisServer(tmp_path / "redis", durable=False)
    try:
        command = ["serve", "--port", "0", "--data-dir", str(tmp_path / "d"), "--store", loose.url]
        result = await trio.run_process([*_python(), *command], capture_stderr=True, check=False)
        assert result.returncode == 1
        stderr = result.stderr.decode()
        assert "appendfsync" in stderr and "--allow-unsafe-store" in stderr
        assert "Traceback" not in stderr
        async with server_process(
            tmp_path / "d", "--store", loose.url, "--allow-unsafe-store"
        ) as server:
            assert any("does not persist every write" in line for line in server.log)
    finally:
        loose.stop()


def _python() -> list[str]:
    import sys

    return [sys.executable, "-m", "trio_chat"]
