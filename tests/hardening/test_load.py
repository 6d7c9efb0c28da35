"""Load: 200 concurrent clients mixing every endpoint for 30 s against a server process.

No 5xx, and every acknowledged message (and comment) is there exactly once afterwards.
"""

from __future__ import annotations

import collections
import random

import attrs
import httpx
import pytest
import trio

from tests.conftest import PASSWORD
from tests.hardening.helpers import page_all, request, server_process

CLIENTS = 200
DURATION = 30.0
MIX = {  # action -> weight
    "send": 30,
    "private": 10,
    "messages": 12,
    "comment": 8,
    "status": 5,
    "connect": 5,
    "updates": 5,
    "events": 3,
    "login": 2,
    "report": 2,
    "healthz": 2,
    "openapi": 1,
}


@attrs.define
class Tally:
    statuses: collections.Counter[tuple[str, int]] = attrs.field(factory=collections.Counter)
    general: dict[str, str] = attrs.field(factory=dict)  # id -> text, every 201
    private: dict[str, tuple[str, str, str]] = attrs.field(factory=dict)  # id -> (a, b, text)
    comments: dict[str, tuple[str, str]] = attrs.field(factory=dict)  # id -> (message id, text)

    def record(self, name: str, response: httpx.Response) -> httpx.Response:
        self.statuses[(name, response.status_code)] += 1
        assert response.status_code < 500, (name, response.status_code, response.text)
        return response


async def simulate(
    client: httpx.AsyncClient, me: int, tokens: list[str], tally: Tally, deadline: float
) -> None:
    rng = random.Random(me)
    name, peer = f"load{me}", f"load{(me + 1) % CLIENTS}"
    token = tokens[me]
    counter = 0

    def auth() -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    while trio.current_time() < deadline:
        counter += 1
        action = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if action == "send":
            text = f"{name} says {counter}"
            r = tally.record(
                action, await client.post("/send", json={"text": text}, headers=auth())
            )
            if r.status_code == 201:
                tally.general[r.json()["message"]["id"]] = text
        elif action == "private":
            text = f"{name} whispers {counter}"
            body = {"text": text, "to": peer}
            r = tally.record(action, await client.post("/send", json=body, headers=auth()))
            if r.status_code == 201:
                tally.private[r.json()["message"]["id"]] = (name, peer, text)
        elif action == "messages":
            params = rng.choice([{}, {"limit": "100"}, {"with": peer}, {"limit": "3"}])
            tally.record(action, await client.get("/messages", params=params, headers=auth()))
        elif action == "comment" and tally.general:
            target = rng.choice(list(tally.general)[-50:])
            text = f"{name} comments {counter}"
            body = {"message_id": target, "text": text}
            r = tally.record(action, await client.post("/comment", json=body, headers=auth()))
            if r.status_code == 201:
                tally.comments[r.json()["comment"]["id"]] = (target, text)
        elif action == "status":
            tally.record(action, await client.get("/status", headers=auth()))
        elif action == "connect":
            tally.record(action, await client.post("/connect", headers=auth()))
        elif action == "updates":
            params = {"timeout": rng.choice(["0", "0.5"])}
            tally.record(action, await client.get("/updates", params=params, headers=auth()))
        elif action == "events":
            # Open a stream (raw: httpx dislikes abandoned streams), read a moment, vanish.
            stream = await trio.open_tcp_stream(client.base_url.host, client.base_url.port)
            async with stream:
                await stream.send_all(request("GET", "/events", token=token))
                data = b""
                with trio.move_on_after(0.5):
                    while b"\r\n\r\n" not in data or b"event:" not in data:
                        chunk = await stream.receive_some(65536)
                        assert chunk, data
                        data += chunk
                status = int(data.split(b" ", 2)[1])
                tally.statuses[(action, status)] += 1
                assert status == 200, data
        elif action == "login":
            body = {"username": name, "password": PASSWORD}
            r = tally.record(action, await client.post("/login", json=body))
            token = r.json()["token"]
            tokens[me] = token
        elif action == "report":
            body = {"username": f"load{rng.randrange(CLIENTS)}"}
            tally.record(action, await client.post("/report", json=body, headers=auth()))
        elif action == "healthz":
            tally.record(action, await client.get("/healthz"))
        elif action == "openapi":
            tally.record(action, await client.get("/openapi.json"))


@pytest.mark.slow
async def test_200_clients_for_30_seconds_no_5xx_nothing_lost_or_doubled(tmp_path):
    tally = Tally()
    args = ("--rate-limit-count", "0", "--ban-threshold", "1000000")
    async with server_process(tmp_path / "data", *args, cheap_hash=True) as server:
        limits = httpx.Limits(max_connections=CLIENTS + 10, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
            tokens: list[str] = [""] * CLIENTS

            async def sign_up(i: int) -> None:
                body = {"username": f"load{i}", "password": PASSWORD}
                response = await client.post("/register", json=body)
                assert response.status_code == 201, response.text
                tokens[i] = response.json()["token"]

            async with trio.open_nursery() as nursery:
                for i in range(CLIENTS):
                    nursery.start_soon(sign_up, i)

            deadline = trio.current_time() + DURATION
            with trio.fail_after(DURATION + 60):
                async with trio.open_nursery() as nursery:
                    for i in range(CLIENTS):
                        nursery.start_soon(simulate, client, i, tokens, tally, deadline)

            # Read everything back.
            general = await page_all(client, tokens[0])
            ids = [m["id"] for m in general]
            assert len(ids) == len(set(ids)), "a message appears twice"
            stored = {m["id"]: m for m in general}
            assert {i: stored[i]["text"] for i in tally.general if i in stored} == tally.general
            assert set(stored) == set(tally.general), "lost, or stored without a 201"
            comments = {c["id"]: (m["id"], c["text"]) for m in general for c in m["comments"]}
            assert comments == tally.comments

            for i in range(CLIENTS):
                a, b = f"load{i}", f"load{(i + 1) % CLIENTS}"
                pair = await page_all(client, tokens[i], **{"with": b})
                sent = {k: v[2] for k, v in tally.private.items() if v[0] == a}
                mine = {m["id"]: m["text"] for m in pair if m["author"] == a}
                assert len(pair) == len({m["id"] for m in pair})
                assert mine == sent, f"private messages {a} -> {b} differ"
    assert server.process.returncode == 0  # and it stopped gracefully on SIGTERM
    total = sum(tally.statuses.values())
    by_status = collections.Counter()
    for (_, status), n in tally.statuses.items():
        by_status[status] += n
    print(
        f"{total} requests in {DURATION:.0f} s ({total / DURATION:.0f}/s): {dict(by_status)}; "
        f"{len(tally.general)} common + {len(tally.private)} private messages, "
        f"{len(tally.comments)} comments, all read back once"
    )
