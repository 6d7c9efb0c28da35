"""The line console, for pipes and dumb terminals, and what both consoles share.

The line console prints each :class:`~trio_chat_client.render.Line` as it comes and reads input
a line at a time (``ui.tui`` is the full-screen console). Each console reads its input in a
task of its own and hands completed input to an :class:`InputRouter`, which gives a waiting
password request priority over the command loop.
"""

from __future__ import annotations

import codecs
import os
from collections import deque
from collections.abc import Callable
from typing import BinaryIO, Final, TextIO

import trio

from ..render import Line

__all__ = ["InputRouter", "PlainConsole"]

# On a terminal, lines that follow one another within this time were pasted together, not
# typed: they are one message (a pasted "/msg alice …" must not spill into the common chat).
PASTE_GAP: Final = 0.03


class InputRouter:
    """Where a completed input line goes: to a waiting password request, else to the commands.

    The order matters for privacy: while a password is asked for, the next line typed must
    never reach the command loop (it would be sent to the chat).
    """

    def __init__(self, on_secret: Callable[[str | None], None] | None = None) -> None:
        self._lines: deque[str] = deque()
        self._closed = False
        self._changed = trio.Event()
        self._on_secret = on_secret
        self._secret_wanted = False
        self._secret: str | None = None

    @property
    def secret_wanted(self) -> bool:
        return self._secret_wanted

    def put(self, line: str) -> None:
        if self._secret_wanted and self._secret is None:
            self._secret = line
        else:
            self._lines.append(line)
        self._wake()

    def close(self) -> None:
        """End of input: waiting readers get ``None``."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def line(self) -> str | None:
        while not self._lines:
            if self._closed:
                return None
            await self._changed.wait()
        return self._lines.popleft()

    async def secret(self, prompt: str) -> str | None:
        """The next line typed from now on (callers take turns: see ``auth.Relogin``)."""
        self._secret_wanted, self._secret = True, None
        if self._on_secret is not None:
            self._on_secret(prompt)
        try:
            while self._secret is None:
                if self._closed:
                    return None
                await self._changed.wait()
            return self._secret
        finally:
            self._secret_wanted, self._secret = False, None
            if self._on_secret is not None:
                self._on_secret(None)


class PlainConsole:
    """Line in, line out: what scripts, pipes and dumb terminals get."""

    shows_everything = True

    def __init__(self, stdin: BinaryIO, stdout: TextIO) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._input = InputRouter(self._ask)

    def print(self, text: str) -> None:
        self._stdout.write(text + "\n")
        self._stdout.flush()  # a reader on the other end of a pipe is waiting for this line

    def show(self, line: Line) -> None:
        self.print(line.text)

    def show_older(self, chat: str, lines: list[Line]) -> None:
        for line in lines:
            self.print(line.text)

    def changed(self) -> None:
        pass  # nothing on screen shows state

    def progress(self, text: str | None) -> None:
        pass  # a line per step would bury the chat; the transfer's end is a notice

    def _ask(self, prompt: str | None) -> None:
        if prompt is not None:
            self.print(prompt)

    async def read_line(self) -> str | None:
        return await self._input.line()

    async def read_password(self, prompt: str) -> str | None:
        return await self._input.secret(prompt)

    async def pump(self) -> None:
        """Read stdin into the router until end of input.

        Straight from the file descriptor, waiting for it to be readable, rather than with
        ``readline()`` in a thread: a thread left blocked in ``readline()`` after ``/quit``
        holds stdin's lock and aborts the interpreter at exit. Regular files and
        ``/dev/null`` cannot be waited for (epoll refuses them) and never block anyway.
        On a terminal, lines that arrive together (a paste) are handed on as one input.
        """
        fd = self._stdin.fileno()
        terminal = os.isatty(fd)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pollable = True
        pending = ""
        lines: list[str] = []
        try:
            while True:
                if pollable:
                    try:
                        if terminal and lines:
                            with trio.move_on_after(PASTE_GAP) as waited:
                                await trio.lowlevel.wait_readable(fd)
                            if waited.cancelled_caught:
                                self._input.put("\n".join(lines))
                                lines = []
                                continue
                        else:
                            await trio.lowlevel.wait_readable(fd)
                    except OSError:
                        pollable = False
                await trio.lowlevel.checkpoint()
                data = os.read(fd, 65536)
                if not data:
                    break
                *complete, pending = (pending + decoder.decode(data)).split("\n")
                lines.extend(line.rstrip("\r") for line in complete)
                if not terminal:
                    for line in lines:
                        self._input.put(line)
                    lines = []
            pending += decoder.decode(b"", final=True)
            if pending:
                lines.append(pending.rstrip("\r"))
            if lines and terminal:
                self._input.put("\n".join(lines))
            else:
                for line in lines:
                    self._input.put(line)
        finally:
            self._input.close()
