"""Server-Sent Events framing, without I/O.

Feed text chunks as they arrive from the socket; get back complete events. This follows the
WHATWG "event stream interpretation" rules that matter to us: lines end with CRLF, LF or CR
(a CR at the end of a chunk may be the first half of a CRLF, so it waits for the next chunk);
a blank line dispatches; ``:`` starts a comment (the server's keep-alives); ``data`` lines are
joined with ``\\n``; an ``id`` persists across events (it is the resume cursor); unknown fields are
ignored; a frame with no ``data`` dispatches nothing.
"""

from __future__ import annotations

import attrs

__all__ = ["SseDecoder", "SseEvent"]


@attrs.frozen
class SseEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SseDecoder:
    def __init__(self) -> None:
        self._pending = ""
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self.comments = 0  # keep-alives seen; lets tests and callers observe liveness

    @property
    def last_event_id(self) -> str | None:
        return self._last_id

    def feed(self, chunk: str) -> list[SseEvent]:
        """Consume a chunk of the stream; return the events it completed."""
        text = self._pending + chunk
        events: list[SseEvent] = []
        start = 0
        i = 0
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == "\n" or ch == "\r":
                if ch == "\r" and i + 1 == n:
                    break  # maybe half of a CRLF: decide when more text arrives
                line = text[start:i]
                i += 2 if ch == "\r" and text[i + 1] == "\n" else 1
                start = i
                event = self._line(line)
                if event is not None:
                    events.append(event)
            else:
                i += 1
        self._pending = text[start:]
        return events

    def close(self) -> list[SseEvent]:
        """End of stream: a lone CR still ends a line, but an unterminated frame is dropped."""
        if self._pending.endswith("\r"):
            return self.feed("\n")
        return []

    def _line(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # "retry" and unknown fields: ignored; our reconnect policy is the client's own.
        return None

    def _dispatch(self) -> SseEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SseEvent(data="\n".join(data), event=event or "message", id=self._last_id)
