"""A tiny line editor for a terminal in raw mode. Pure: bytes in, bytes out, no I/O.

Theory of operation: the bottom line of the terminal always shows ``prompt + buffer`` with the
terminal cursor at the edit position. Every edit redraws that whole line (``\\r`` to column 0,
``ESC [ K`` to erase it, then prompt and buffer, then ``ESC [ n D`` to step back to the edit
position): redrawing is a few dozen bytes and far simpler than computing minimal updates.
An incoming chat line is printed *over* the input line and the input line is drawn again below
it (:func:`render_incoming`), so typing is never mangled by live messages.

Assumes one column per character (no East Asian wide characters) and lines shorter than the
terminal width; both are fine for a chat prompt.
"""

from __future__ import annotations

import attrs

__all__ = ["EditResult", "LineEditor", "render_incoming", "render_line"]

ERASE_LINE = "\r\x1b[K"


def render_line(prompt: str, buffer: str, cursor: int, secret: bool = False) -> bytes:
    """Bytes that draw ``prompt + buffer`` on the current line with the cursor at ``cursor``."""
    if secret:
        return (ERASE_LINE + prompt).encode("utf-8")  # a password: nothing of it is shown
    back = len(buffer) - cursor
    move = f"\x1b[{back}D" if back > 0 else ""
    return (ERASE_LINE + prompt + buffer + move).encode("utf-8")


def render_incoming(
    prompt: str, buffer: str, cursor: int, line: str, secret: bool = False
) -> bytes:
    """Bytes that print ``line`` above the input line and redraw the input line below it."""
    # "\r\n" explicitly: the terminal may run without output post-processing (no ONLCR).
    text = line.replace("\r\n", "\n").replace("\n", "\r\n")
    redraw = render_line(prompt, buffer, cursor, secret)
    return (ERASE_LINE + text + "\r\n").encode("utf-8") + redraw


@attrs.define
class EditResult:
    lines: list[str] = attrs.Factory(list)  # completed lines, in order
    eof: bool = False  # Ctrl-D on an empty line, or Ctrl-C
    redraw: bool = False  # the input line changed: draw it again


# Final bytes of the escape sequences we act on (CSI "ESC [" or SS3 "ESC O").
_KEYS = {
    "D": "left",
    "C": "right",
    "H": "home",
    "F": "end",
    "A": "up",
    "B": "down",
    "1~": "home",
    "7~": "home",
    "4~": "end",
    "8~": "end",
    "3~": "delete",
}


class LineEditor:
    def __init__(self, prompt: str = "> ") -> None:
        self.prompt = prompt
        self.secret = False  # a password is being typed: show nothing, remember nothing
        self.buffer = ""
        self.cursor = 0
        self.history: list[str] = []
        self._history_pos = 0
        self._escape: str | None = None  # an escape sequence split across reads
        self._after_cr = False

    def render(self) -> bytes:
        return render_line(self.prompt, self.buffer, self.cursor, self.secret)

    def render_incoming(self, line: str) -> bytes:
        return render_incoming(self.prompt, self.buffer, self.cursor, line, self.secret)

    def feed(self, text: str) -> EditResult:
        result = EditResult()
        for ch in text:
            if result.eof:
                break
            self._key(ch, result)
        return result

    def _key(self, ch: str, result: EditResult) -> None:
        if self._escape is not None:
            self._escape_key(ch, result)
            return
        after_cr, self._after_cr = self._after_cr, ch == "\r"
        if ch in "\r\n":
            if ch == "\n" and after_cr:
                return  # the LF of a CRLF (pasted text)
            result.lines.append(self.buffer)
            if self.buffer.strip() and not self.secret:
                self.history.append(self.buffer)
            self._history_pos = len(self.history)
            self.buffer, self.cursor = "", 0
            result.redraw = True
        elif ch == "\x1b":
            self._escape = ""
        elif ch == "\x03":  # Ctrl-C: ISIG is off in raw mode, so we get the byte
            result.eof = True
        elif ch == "\x04":  # Ctrl-D: end on an empty line, else delete forward (like readline)
            if not self.buffer:
                result.eof = True
            else:
                self._delete_forward(result)
        elif ch in "\x7f\x08":
            if self.cursor > 0:
                self.buffer = self.buffer[: self.cursor - 1] + self.buffer[self.cursor :]
                self.cursor -= 1
                result.redraw = True
        elif ch == "\x01":
            self._move(0, result)
        elif ch == "\x05":
            self._move(len(self.buffer), result)
        elif ch == "\x02":
            self._move(self.cursor - 1, result)
        elif ch == "\x06":
            self._move(self.cursor + 1, result)
        elif ch == "\x15":  # Ctrl-U: delete to the start
            self.buffer, self.cursor = self.buffer[self.cursor :], 0
            result.redraw = True
        elif ch == "\x0b":  # Ctrl-K: delete to the end
            self.buffer = self.buffer[: self.cursor]
            result.redraw = True
        elif ch == "\x17":  # Ctrl-W: delete the word before the cursor
            head = self.buffer[: self.cursor].rstrip(" ")
            cut = head.rfind(" ") + 1
            self.buffer = self.buffer[:cut] + self.buffer[self.cursor :]
            self.cursor = cut
            result.redraw = True
        elif ch == "\x0c":  # Ctrl-L
            result.redraw = True
        elif ch == "\t":
            self._insert(" ", result)
        elif ch >= " ":
            self._insert(ch, result)
        # other control characters: ignored

    def _escape_key(self, ch: str, result: EditResult) -> None:
        assert self._escape is not None
        seq = self._escape + ch
        if seq in ("[", "O"):
            self._escape = seq
            return
        if seq[0] in "[O" and (ch.isdigit() or ch == ";"):
            self._escape = seq  # parameters: wait for the final byte
            return
        self._escape = None
        if seq[0] not in "[O":
            return  # a lone ESC (or Alt+key): ignore
        params = seq[1:]
        # "1;5D" (Ctrl+Left) acts like "D"; "3~" and "3;2~" like "3~".
        if params.endswith("~"):
            key = _KEYS.get(params.rstrip("~").split(";")[0] + "~")
        else:
            key = _KEYS.get(params[-1:])
        if key == "left":
            self._move(self.cursor - 1, result)
        elif key == "right":
            self._move(self.cursor + 1, result)
        elif key == "home":
            self._move(0, result)
        elif key == "end":
            self._move(len(self.buffer), result)
        elif key == "delete":
            self._delete_forward(result)
        elif key == "up":
            self._recall(-1, result)
        elif key == "down":
            self._recall(+1, result)

    def _insert(self, ch: str, result: EditResult) -> None:
        self.buffer = self.buffer[: self.cursor] + ch + self.buffer[self.cursor :]
        self.cursor += 1
        result.redraw = True

    def _delete_forward(self, result: EditResult) -> None:
        if self.cursor < len(self.buffer):
            self.buffer = self.buffer[: self.cursor] + self.buffer[self.cursor + 1 :]
            result.redraw = True

    def _move(self, position: int, result: EditResult) -> None:
        position = max(0, min(len(self.buffer), position))
        if position != self.cursor:
            self.cursor = position
            result.redraw = True

    def _recall(self, step: int, result: EditResult) -> None:
        position = self._history_pos + step
        if not 0 <= position <= len(self.history):
            return
        self._history_pos = position
        self.buffer = self.history[position] if position < len(self.history) else ""
        self.cursor = len(self.buffer)
        result.redraw = True
