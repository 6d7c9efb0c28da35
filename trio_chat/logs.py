"""Logging: a writer thread of its own, and an access-log line that costs little per request.

Writing to stderr can block (a full pipe, a slow terminal) and the event loop must not: the
root logger's one handler queues each record, and a thread formats and writes them. It takes
whatever has queued up since its last write and writes it at once, one ``write`` and one
``flush`` for many lines, so under load the writing is shared out over many requests.

The access log is one line per request. Through ``Logger.info`` it cost ~14 µs in the
request (``LogRecord.__init__``: the caller's frame, the file name, the thread and process,
then the handler's copy of the record) and ~14 µs in the thread (the time formatted per line,
one write and flush per line). ``AccessLog.line`` formats the message at once (nothing of the
request is kept alive by the record), fills a record from a template made once, and hands it
to the logger's handlers like any other record: a test's ``caplog`` still sees it.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
import time
from typing import Final, TextIO

# How long the writer lets lines gather after a write: under load a write then carries many
# lines; the delay is invisible in a log (each line has the time it was logged).
GATHER_SECONDS: Final = 0.005

_STOP: Final = None
_START: Final[float] = logging._startTime  # type: ignore[attr-defined]


class QueueingHandler(logging.Handler):
    """Hands records to the writer thread; formats nothing in the caller but the message."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord | None]) -> None:
        super().__init__()
        self._records = records

    def handle(self, record: logging.LogRecord) -> bool:
        # No lock: the queue is thread-safe, and nothing else of the handler is touched.
        if self.filters and not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        if record.args:
            # Render now: the arguments may change (or hold a request) after the call.
            record.msg = record.getMessage()
            record.args = None
        self._records.put(record)


class _Formatter(logging.Formatter):
    """``logging.Formatter``, with the time of day formatted once per second, not per line."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"


class LogWriter:
    """The thread that writes queued records; ``stop`` writes out what is queued."""

    def __init__(self, stream: TextIO, formatter: logging.Formatter) -> None:
        self.records: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self._stream = stream
        self._formatter = formatter
        self._thread = threading.Thread(target=self._run, name="log writer", daemon=True)
        self._stopped = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.records.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        records = self.records
        while True:
            batch = [records.get()]
            while True:
                try:
                    batch.append(records.get_nowait())
                except queue.Empty:
                    break
            lines: list[str] = []
            for record in batch:
                if record is _STOP:
                    self._write(lines)
                    return
                try:
                    lines.append(self._formatter.format(record))
                except Exception:  # a bad format string must not stop the logging
                    lines.append(f"(unformattable log record from {record.name})")
            self._write(lines)
            time.sleep(GATHER_SECONDS)

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        try:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            pass  # stderr is gone (closed pipe): nowhere left to say so


def setup_logging(level: str, stream: TextIO | None = None) -> LogWriter:
    """Log to ``stream`` (stderr) from a thread of its own; the caller stops the writer
    (it is also stopped at exit, so what is queued is written)."""
    writer = LogWriter(
        sys.stderr if stream is None else stream,
        _Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"),
    )
    root = logging.getLogger()
    root.handlers[:] = [QueueingHandler(writer.records)]
    root.setLevel(level.upper())
    # Lifecycle lines (listening, ready, stopping) are always shown.
    logging.getLogger("trio_chat.lifecycle").setLevel(logging.INFO)
    writer.start()
    atexit.register(writer.stop)
    return writer


class AccessLog:
    """One line per request: ``METHOD PATH STATUS 1.2ms USER`` (never a token: the user's
    name, or ``-``), at INFO on the ``trio_chat.access`` logger."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._template: dict[str, object] | None = None
        self._thread: int | None = None

    def line(self, method: str, path: str, status: int, ms: float, user: str | None) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        message = f"{method} {path} {status} {ms:.1f}ms {user or '-'}"
        if self._template is None or threading.get_ident() != self._thread:
            # The first line (or one from another thread): a record made the ordinary way,
            # kept as the template for the next ones.
            record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, message, (), None)
            self._template = dict(record.__dict__)
            self._thread = record.thread
        else:
            record = logging.LogRecord.__new__(logging.LogRecord)
            fields = record.__dict__
            fields.update(self._template)
            now = time.time()
            fields["msg"] = message
            fields["created"] = now
            fields["msecs"] = int((now - int(now)) * 1000) + 0.0  # as LogRecord does
            fields["relativeCreated"] = (now - _START) * 1000
        logger.handle(record)
