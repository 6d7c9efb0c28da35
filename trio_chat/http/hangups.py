"""One task that notices clients hanging up on long-lived requests, for every connection.

A long-poll or an event stream waits on the service, not on its socket: without a watch, a
client that went away would be noticed only at the next write (for a long-poll, up to a
minute later). A task per request reading its socket did that, at ~4 KiB of memory per idle
stream (the task, its stack of coroutine frames, its cancel scope). Here one epoll instance of
our own holds each watched socket with ``EPOLLRDHUP`` only -- the peer's FIN; an error or a
reset is always reported -- and one task waits until that instance is readable (an epoll fd
is), then tells each connection whose peer left. Per watched socket that is a dict entry and
the kernel's epoll item.

Bytes the client sends meanwhile (a pipelined request) are not watched for: they wait in the
kernel, and TCP pushes back once its buffer is full, until the request ends and the
connection reads again.

Linux only (``select.epoll``); elsewhere ``HangupWatch.create()`` is None and each request
watches its socket with a task of its own (see ``HTTPConnection._watch``).
"""

from __future__ import annotations

import contextlib
import select
from typing import Protocol

import trio

# Events reported at most per wake-up; more are reported at the next.
_BATCH = 1024


class Watcher(Protocol):
    def hung_up(self) -> None:
        """The peer hung up (called once, from the watch's task)."""


class HangupWatch:
    __slots__ = ("_epoll", "_watched")

    def __init__(self, epoll: select.epoll) -> None:
        self._epoll = epoll
        self._watched: dict[int, Watcher] = {}

    @classmethod
    def create(cls) -> HangupWatch | None:
        if not hasattr(select, "epoll") or not hasattr(select, "EPOLLRDHUP"):
            return None
        return cls(select.epoll())

    def __len__(self) -> int:
        return len(self._watched)

    def watch(self, fd: int, watcher: Watcher) -> bool:
        """Call ``watcher.hung_up()`` (once, from the watch's task) when the peer of ``fd``
        hangs up; False if ``fd`` cannot be watched (closed already)."""
        try:
            self._epoll.register(fd, select.EPOLLRDHUP)
        except (OSError, ValueError):
            return False
        self._watched[fd] = watcher
        return True

    def unwatch(self, fd: int) -> None:
        if self._watched.pop(fd, None) is not None:
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)

    async def run(self) -> None:
        """Report hang-ups until cancelled; then close the epoll instance."""
        try:
            while True:
                await trio.lowlevel.wait_readable(self._epoll)
                for fd, _ in self._epoll.poll(0, _BATCH):
                    watcher = self._watched.get(fd)
                    if watcher is not None:
                        self.unwatch(fd)
                        watcher.hung_up()
        finally:
            self._watched.clear()
            self._epoll.close()
