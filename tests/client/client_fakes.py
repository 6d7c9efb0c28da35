"""Helpers for the client's socket-free tests: a scripted ``httpx.MockTransport``."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import trio

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


class ScriptedConsole:
    """A line console for a :class:`~trio_chat_client.session.ChatSession` run inside the test:
    the test types lines and waits for what is shown.

    Waiting is in real time, in a thread, so it works under ``MockClock`` too (where a Trio
    deadline would never come): a line that never appears fails the test after ``timeout``
    seconds instead of hanging it.
    """

    shows_everything = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.progress_shown: list[str | None] = []
        self._send, self._receive = trio.open_memory_channel[str](100)
        self._shown = threading.Event()
        self._pos = 0

    # -- the Console protocol ---------------------------------------------------------------

    def show(self, line) -> None:
        self.lines.append(line.text)
        self._shown.set()

    def show_older(self, chat, lines) -> None:
        for line in lines:
            self.show(line)

    def changed(self) -> None:
        pass

    def progress(self, text) -> None:
        self.progress_shown.append(text)

    async def read_line(self) -> str | None:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            return None

    async def read_password(self, prompt) -> str | None:
        return None

    # -- the test's side --------------------------------------------------------------------

    def type(self, line: str) -> None:
        self._send.send_nowait(line)

    def close(self) -> None:
        self._send.close()

    async def expect(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """The next shown line (after the last one matched) that matches the regex."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            self._shown.clear()
            for i in range(self._pos, len(self.lines)):
                if found := regex.search(self.lines[i]):
                    self._pos = i + 1
                    return found
            left = deadline - time.monotonic()
            if left <= 0:
                shown = "\n".join(self.lines)
                raise AssertionError(f"no line matching {pattern!r}; shown:\n{shown}")
            await trio.to_thread.run_sync(self._shown.wait, min(left, 0.5))

    def shown_since(self) -> list[str]:
        """What was shown after the last line matched."""
        return self.lines[self._pos :]
