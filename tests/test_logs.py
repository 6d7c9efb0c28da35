"""The log writer thread and the access-log line."""

from __future__ import annotations

import io
import logging
import re
import threading

from trio_chat.logs import AccessLog, setup_logging


def test_writer_writes_every_line_in_order_and_stop_writes_what_is_queued() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    writer = setup_logging("info", stream=out)
    try:
        log = logging.getLogger("trio_chat.test")
        for i in range(500):
            log.info("line %d of %s", i, "many")
        log.debug("not at info")
    finally:
        writer.stop()
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = out.getvalue().splitlines()
    assert len(lines) == 500
    for i, line in enumerate(lines):
        assert re.fullmatch(
            rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} INFO trio_chat.test: line {i} of many", line
        ), line


def test_access_lines_are_ordinary_records(caplog) -> None:
    access = AccessLog(logging.getLogger("trio_chat.access"))
    with caplog.at_level(logging.INFO, logger="trio_chat.access"):
        access.line("POST", "/send", 201, 1.234, "alice")  # the first: made the ordinary way
        access.line("GET", "/status", 401, 0.05, None)  # the next: from the template
        done = threading.Thread(target=access.line, args=("GET", "/x", 200, 2.0, "bob"))
        done.start()
        done.join()
    first, second, third = caplog.records
    assert first.getMessage() == "POST /send 201 1.2ms alice"
    assert second.getMessage() == "GET /status 401 0.1ms -"
    assert third.getMessage() == "GET /x 200 2.0ms bob"
    assert third.thread != second.thread
    for record in (first, second, third):
        assert record.name == "trio_chat.access" and record.levelno == logging.INFO
        assert record.created >= first.created and 0 <= record.msecs < 1000
    # Formatted like any other record, with the time of the call.
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(filename)s: %(message)s")
    expected = " INFO trio_chat.access logs.py: GET /status 401 0.1ms -"
    assert formatter.format(second).endswith(expected)


def test_nothing_is_built_when_the_access_log_is_off(caplog) -> None:
    access = AccessLog(logging.getLogger("trio_chat.access"))
    with caplog.at_level(logging.WARNING, logger="trio_chat.access"):
        access.line("GET", "/status", 200, 1.0, "alice")
    assert caplog.records == []
