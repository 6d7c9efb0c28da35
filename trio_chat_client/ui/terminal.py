"""The two consoles: a raw-mode terminal with a line editor, and plain lines for pipes.

Both offer ``show(line)`` (print a line of output, from any task), ``await read_line()``
(the next line typed, ``None`` at end of input) and ``await read_password(prompt)``. The chat
session does not know which it has. Each console reads its input in a task of its own and hands
completed lines to an :class:`InputRouter`, which gives a waiting password request priority
over the command loop.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys
import termios
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import BinaryIO, Protocol, TextIO

import trio

from .lineeditor import ERASE_LINE, LineEditor

__all__ = ["Console", "InputRouter", "PlainConsole", "RawConsole", "open_console"]


class Console(Protocol):
    def show(self, line: str) -> None: ...

    async def read_line(self) -> str | None: ...

    async def read_password(self, prompt: str) -> str | None: ...


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
    """Line in, line out: what scripts and the end-to-end tests drive through pipes."""

    def __init__(self, stdin: BinaryIO, stdout: TextIO) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._input = InputRouter(self._ask)

    def show(self, line: str) -> None:
        self._stdout.write(line + "\n")
        self._stdout.flush()  # a reader on the other end of a pipe is waiting for this line

    def _ask(self, prompt: str | None) -> None:
        if prompt is not None:
            self.show(prompt)

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
        """
        fd = self._stdin.fileno()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pollable = True
        pending = ""
        try:
            while True:
                if pollable:
                    try:
                        await trio.lowlevel.wait_readable(fd)
                    except OSError:
                        pollable = False
                await trio.lowlevel.checkpoint()
                data = os.read(fd, 65536)
                if not data:
                    break
                *lines, pending = (pending + decoder.decode(data)).split("\n")
                for line in lines:
                    self._input.put(line.rstrip("\r"))
            pending += decoder.decode(b"", final=True)
            if pending:
                self._input.put(pending.rstrip("\r"))
        finally:
            self._input.close()


class RawConsole:
    """A terminal in raw mode; incoming lines are printed above the line being typed."""

    def __init__(self, fd: int, stdout: BinaryIO, prompt: str = "> ") -> None:
        self._fd = fd
        self._out = stdout
        self.editor = LineEditor(prompt)
        self._prompt = prompt
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._input = InputRouter(self._ask)

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._out.flush()

    def show(self, line: str) -> None:
        self._write(self.editor.render_incoming(line))

    @contextlib.contextmanager
    def raw_mode(self) -> Iterator[None]:
        saved = termios.tcgetattr(self._fd)
        mode = termios.tcgetattr(self._fd)
        # No line discipline: we get every key at once, and we echo it ourselves.
        mode[0] &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON)
        # ISIG off too: Ctrl-C arrives as a byte and quits cleanly via the editor.
        mode[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self._fd, termios.TCSAFLUSH, mode)
        try:
            self._write(self.editor.render())
            yield
        finally:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)
            self._write(b"\r\n")

    def _ask(self, prompt: str | None) -> None:
        # A password is typed on the input line, under its own prompt, and never echoed.
        self.editor.prompt = self._prompt if prompt is None else prompt
        self.editor.secret = prompt is not None
        self._write(self.editor.render())

    async def read_line(self) -> str | None:
        return await self._input.line()

    async def read_password(self, prompt: str) -> str | None:
        return await self._input.secret(prompt)

    async def pump(self) -> None:
        """Read keys into the line editor, and completed lines into the router."""
        try:
            while True:
                # The fd stays blocking (it is shared with stdout on a terminal); we only read
                # after poll says there is data, so os.read() returns at once.
                await trio.lowlevel.wait_readable(self._fd)
                data = os.read(self._fd, 4096)
                if not data:
                    return
                result = self.editor.feed(self._decoder.decode(data))
                out = b""
                for line in result.lines:
                    secret = self._input.secret_wanted
                    # Commands stay visible above their output; chat text is shown when sent.
                    shown = line.startswith("/") and not secret
                    text = self.editor.prompt + line + "\r\n" if shown else ""
                    out += (ERASE_LINE + text).encode("utf-8")
                    self._input.put(line)
                if result.lines or result.redraw:
                    out += self.editor.render()
                if out:
                    self._write(out)
                if result.eof:
                    return
        finally:
            self._input.close()


@contextlib.asynccontextmanager
async def open_console(prompt: str = "> ") -> AsyncIterator[Console]:
    """A raw-mode console when stdin and stdout are a terminal, else a plain one."""
    async with trio.open_nursery() as nursery:
        if sys.stdin.isatty() and sys.stdout.isatty():
            raw = RawConsole(sys.stdin.fileno(), sys.stdout.buffer, prompt)
            with raw.raw_mode():
                nursery.start_soon(raw.pump)
                yield raw
        else:
            plain = PlainConsole(sys.stdin.buffer, sys.stdout)
            nursery.start_soon(plain.pump)
            yield plain
        nursery.cancel_scope.cancel()
