"""Driving the console client in a pseudo-terminal and reading its screen.

pexpect runs the client on a pseudo-terminal of a given size; everything it writes goes through
pyte, a terminal emulator, so tests assert on the rendered rows (``rows()``) and the cursor, as
a person would see them. Waiting is always for something to appear on the screen (with a
deadline), never for a fixed time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

import pexpect
import pyte
import trio

WAIT: float = 15.0


class Screen(pyte.Screen):
    """A pyte screen that also counts bells (pyte's own ``bell`` does nothing)."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__(columns, lines)
        self.bells = 0

    def bell(self, *args: object) -> None:
        self.bells += 1


class Terminal:
    def __init__(
        self,
        argv: list[str],
        env: Mapping[str, str],
        rows: int = 16,
        cols: int = 60,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.screen = Screen(cols, rows)
        self.stream = pyte.Stream(self.screen)
        self.output = ""  # everything written, escape sequences included
        self.child = pexpect.spawn(
            argv[0],
            argv[1:],
            env=dict(env),
            dimensions=(rows, cols),
            encoding="utf-8",
            cwd=cwd,
        )

    # -- reading ----------------------------------------------------------------------------

    def _read(self, timeout: float) -> str:
        try:
            return str(self.child.read_nonblocking(65536, timeout=timeout))
        except pexpect.TIMEOUT:
            return ""
        except pexpect.EOF:
            return ""

    async def pump(self, timeout: float = 0.05) -> bool:
        """Feed what the client wrote meanwhile to the emulator; False once it has exited."""
        data = await trio.to_thread.run_sync(self._read, timeout)
        if data:
            self.output += data
            self.stream.feed(data)
        return bool(data) or self.child.isalive()

    def rows(self) -> list[str]:
        return [row.rstrip() for row in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.rows())

    def dump(self) -> str:
        cursor = self.screen.cursor
        return f"--- screen (cursor at row {cursor.y}, column {cursor.x}) ---\n{self.text()}"

    async def wait(self, check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        with trio.move_on_after(timeout):
            while True:
                if check():
                    return
                if not await self.pump():
                    if check():
                        return
                    break
        raise AssertionError(f"waited for {what}\n{self.dump()}")

    async def expect(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        """Wait until some row matches the regex ``pattern``; returns the match."""
        found: list[re.Match[str]] = []

        def check() -> bool:
            for row in self.rows():
                if match := re.search(pattern, row):
                    found.append(match)
                    return True
            return False

        await self.wait(check, f"a row matching {pattern!r}", timeout)
        return found[0]

    # -- writing ----------------------------------------------------------------------------

    def send(self, text: str) -> None:
        self.child.send(text)

    def resize(self, rows: int, cols: int) -> None:
        self.screen.resize(rows, cols)
        self.child.setwinsize(rows, cols)

    async def exit_status(self, timeout: float = WAIT) -> int:
        with trio.fail_after(timeout):
            while await self.pump():
                pass
        self.child.close()
        if self.child.signalstatus is not None:
            return -int(self.child.signalstatus)
        return int(self.child.exitstatus)

    def kill(self) -> None:
        if self.child.isalive():
            self.child.kill(9)
        self.child.close(force=True)


def terminal_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_CHAT_")}
    env.pop("NO_COLOR", None)
    env.update(TERM="xterm-256color", LANG="C.UTF-8", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env
