"""The two consoles: a raw-mode terminal with a line editor, and plain lines for pipes.

Both offer ``show(line)`` (print a line of output, from any task) and ``await read_line()``
(the next line typed, ``None`` at end of input). The chat session does not know which it has.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys
import termios
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO, Protocol, TextIO

import trio

from .lineeditor import ERASE_LINE, LineEditor

__all__ = ["Console", "PlainConsole", "RawConsole", "open_console"]


class Console(Protocol):
    def show(self, line: str) -> None: ...

    async def read_line(self) -> str | None: ...


class PlainConsole:
    """Line in, line out: what scripts and the end-to-end tests drive through pipes."""

    def __init__(self, stdin: BinaryIO, stdout: TextIO) -> None:
        self._stdin = stdin
        self._stdout = stdout

    def show(self, line: str) -> None:
        self._stdout.write(line + "\n")
        self._stdout.flush()  # a reader on the other end of a pipe is waiting for this line

    async def read_line(self) -> str | None:
        # A worker thread, because stdin may be a regular file, which cannot be polled.
        # abandon_on_cancel: a thread stuck in readline() must not keep the client from quitting.
        data = await trio.to_thread.run_sync(self._stdin.readline, abandon_on_cancel=True)
        if not data:
            return None
        return data.decode("utf-8", errors="replace").rstrip("\r\n")


class RawConsole:
    """A terminal in raw mode; incoming lines are printed above the line being typed."""

    def __init__(self, fd: int, stdout: BinaryIO, prompt: str = "> ") -> None:
        self._fd = fd
        self._out = stdout
        self.editor = LineEditor(prompt)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines: deque[str] = deque()
        self._eof = False

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

    async def read_line(self) -> str | None:
        while not self._lines:
            if self._eof:
                return None
            # The fd stays blocking (it is shared with stdout on a terminal); we only read
            # after poll says there is data, so os.read() returns at once.
            await trio.lowlevel.wait_readable(self._fd)
            data = os.read(self._fd, 4096)
            if not data:
                self._eof = True
                continue
            result = self.editor.feed(self._decoder.decode(data))
            out = b""
            for line in result.lines:
                self._lines.append(line)
                # Commands stay visible above their output; chat text is shown when it is sent.
                shown = self.editor.prompt + line + "\r\n" if line.startswith("/") else ""
                out += (ERASE_LINE + shown).encode("utf-8")
            if result.lines or result.redraw:
                out += self.editor.render()
            if out:
                self._write(out)
            if result.eof:
                self._eof = True
        return self._lines.popleft()


@contextlib.contextmanager
def open_console(prompt: str = "> ") -> Iterator[Console]:
    """A raw-mode console when stdin and stdout are a terminal, else a plain one."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        console = RawConsole(sys.stdin.fileno(), sys.stdout.buffer, prompt)
        with console.raw_mode():
            yield console
    else:
        yield PlainConsole(sys.stdin.buffer, sys.stdout)
