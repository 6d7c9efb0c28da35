"""bench.profile's attribution of py-spy samples to the steps of a request (no py-spy needed)."""

from __future__ import annotations

import pytest

from bench.profile import budget, classify

RUN = "run (trio/_core/_run.py:2535)"
SERVE = "HTTPConnection._serve_one (trio_chat/http/connection.py:177)"


@pytest.mark.parametrize(
    ("leaf", "step"),
    [
        ("Logger.info (logging/__init__.py:1489)", "log"),
        ("HTTPConnection._log (trio_chat/http/connection.py:520)", "log"),
        ("ShelfStore._transaction (trio_chat/storage/shelf.py:200)", "store"),
        ("orjson_loads (trio_chat/api/schemas.py:40)", "decode"),
        ("AccountService.authenticate (trio_chat/service/accounts.py:90)", "auth"),
        ("Core.post (trio_chat/service/core.py:160)", "domain"),
        ("dump_json (trio_chat/http/messages.py:103)", "encode"),
        ("HTTPConnection._read_head (trio_chat/http/connection.py:250)", "parse"),
        ("HTTPConnection._send_bytes (trio_chat/http/connection.py:470)", "write"),
    ],
)
def test_the_innermost_frame_that_names_a_step_decides(leaf: str, step: str) -> None:
    assert classify([RUN, SERVE, leaf]) == step
    # Library frames below ours belong to the step that called them.
    assert classify([RUN, SERVE, leaf, "Counter.update (collections/__init__.py:10)"]) == step


def test_a_stack_without_frames_of_ours_is_the_event_loop() -> None:
    assert classify([RUN, "unrolled_run (trio/_core/_run.py:2700)"]) == "event loop"
    # The reference's module frame is under all of its samples: it names no step.
    module = "<module> (bench/reference_server.py:209)"
    assert classify([module, RUN, "unrolled_run (trio/_core/_run.py:2700)"]) == "event loop"
    handler = "_handler.<locals>.handle (bench/reference_server.py:140)"
    assert classify([module, RUN, handler]) == "connection"


def test_cpu_comes_from_the_threads_and_waits_are_left_out() -> None:
    collapsed = "\n".join(
        [
            # Main thread: 3 samples parsing, 1 encoding, 4 waiting in epoll.
            f"thread (1): MainThread;{RUN};{SERVE};_read_head (trio_chat/http/connection.py:1) 3",
            f"thread (1): MainThread;{RUN};{SERVE};dump_json (trio_chat/http/messages.py:1) 1",
            f"thread (1): MainThread;{RUN};EpollIOManager.get_events (trio/_core/_io_epoll.py:1) 4",
            # The log thread: mostly waiting, which py-spy counts as active.
            "thread (2): log;LogWriter._run (trio_chat/logs.py:1) 9",
            "thread (2): log;StreamHandler.emit (logging/__init__.py:1) 1",
        ]
    )

    result = budget(collapsed, {1: 0.75, 2: 0.25}, cpu_us_per_request=100.0)

    steps = {name: round(v["us"], 6) for name, v in result["steps"].items()}
    assert steps == {"parse": 56.25, "encode": 18.75, "log": 25.0}
    assert result["waiting_samples"] == 13
