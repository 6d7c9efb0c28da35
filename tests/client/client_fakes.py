"""Helpers for the client's socket-free tests: a scripted ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from trio_chat_client.api import ApiClient

SERVER = "http://chat.test"
T0 = "2026-11-26T13:53:00.000Z"


def message(mid: str, text: str = "hi", author: str = "alice", to: str | None = None, **extra):
    return {"id": mid, "chat": "general", "author": author, "to": to, "text": text,
            "sent_at": T0, "comments": [], **extra}  # fmt: skip


def comment(cid: str, mid: str, text: str = "+1", author: str = "bob"):
    return {"id": cid, "message_id": mid, "author": author, "text": text, "sent_at": T0}


def error(status: int, code: str, msg: str = "nope", headers=None, **extras) -> httpx.Response:
    body = {"error": {"code": code, "message": msg, **extras}}
    return httpx.Response(status, json=body, headers=headers)


def sse(*events: dict[str, Any], keepalive: bool = True) -> bytes:
    out = ": keep-alive\n\n" if keepalive else ""
    for e in events:
        out += f"id: {e['cursor']}\nevent: {e['type']}\ndata: {json.dumps(e)}\n\n"
    return out.encode()


Handler = Callable[[httpx.Request], httpx.Response]


class FakeServer:
    """Routes ``(METHOD, path)`` to a handler or a queue of responses; records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Handler | httpx.Response | Exception]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Handler | httpx.Response | Exception):
        self.routes.setdefault((method, path), []).extend(answers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return error(404, "not_found", f"no fake for {request.method} {request.url.path}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    def client(self, token: str | None = "tok") -> ApiClient:
        return ApiClient(SERVER, token, transport=httpx.MockTransport(self.handle))

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]
