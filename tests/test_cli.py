"""The command line: flags, environment variables, --help, and a real process's lifecycle."""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from trio_chat.cli import build_parser, config_from, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("2.5", 2.5), ("90s", 90), ("15m", 900), ("4h", 14400), ("1d", 86400)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1", "1w", "1.2.3", "1 h"])
def test_bad_durations(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_flags_environment_and_defaults():
    parser = build_parser()
    args = parser.parse_args(["serve", "--port", "9001", "--ban-duration", "30m"])
    config = config_from(args, {"TRIO_CHAT_PORT": "1", "TRIO_CHAT_HISTORY_SIZE": "5"})
    assert config.port == 9001  # a flag wins over the environment
    assert config.history_size == 5
    assert config.ban_duration == 1800
    assert config.host == "127.0.0.1" and config.data_dir == Path("storage")
    defaults = config_from(parser.parse_args(["serve"]), {})
    assert (defaults.rate_limit_count, defaults.rate_limit_period) == (20, 3600)
    assert (defaults.ban_threshold, defaults.ban_duration) == (3, 14400)
    with pytest.raises(SystemExit):
        config_from(parser.parse_args(["serve"]), {"TRIO_CHAT_PORT": "eighty"})


def test_help_documents_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    for flag in (
        "--host",
        "--port",
        "--data-dir",
        "--history-size",
        "--rate-limit-count",
        "--rate-limit-period",
        "--ban-threshold",
        "--ban-duration",
        "--log-level",
    ):
        assert flag in text
    assert "default: 1h" in text and "default: 4h" in text and "TRIO_CHAT_PORT" in text


@pytest.mark.slow
def test_process_serves_and_stops_gracefully_on_sigterm(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trio_chat",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--log-level",
            "info",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        url = None
        for line in proc.stderr:
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                url = match.group(1)
                break
        assert url is not None
        with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
            assert json.load(response) == {"status": "ok"}
        request = urllib.request.Request(
            url + "/register",
            method="POST",
            data=json.dumps({"username": "alice", "password": "secret-password"}).encode(),
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            token = json.load(response)["token"]
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.stderr.close()
    # One access line per request, with method, path, status, time and user...
    assert re.search(r"POST /register 201 [\d.]+ms alice", rest)
    assert "stopped; storage closed" in rest
    # ...and never a password or a token.
    assert "secret-password" not in rest and token not in rest


def test_unusable_data_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = subprocess.run(
        [sys.executable, "-m", "trio_chat", "serve", "--port", "0", "--data-dir", str(blocker)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "Traceback" not in result.stderr


def test_a_port_in_use_is_one_clear_line(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = str(taken.getsockname()[1])
    command = [sys.executable, "-m", "trio_chat", "serve", "--port", port]
    try:
        result = subprocess.run(
            [*command, "--data-dir", str(tmp_path / "data")],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        taken.close()
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if "cannot start" in line]
    assert "address" in line.lower() and "in use" in line.lower(), line
    assert "ExceptionGroup" not in result.stderr and "sub-exception" not in line


def test_the_embedded_server_does_not_load_the_redis_client():
    # coredis costs ~14 MiB and 0.2 s at start (issue 17's cold-start memory target): only a
    # server started with --store redis://... imports it.
    code = "import sys, trio_chat.cli, trio_chat.app; assert 'coredis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_an_unreachable_redis_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = f"redis://127.0.0.1:{port}/0"
    serve = ["serve", "--port", "0", "--data-dir", str(tmp_path), "--store", store]
    result = subprocess.run(
        [sys.executable, "-m", "trio_chat", *serve],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parents[1],
    )
    assert result.returncode == 1
    assert f"cannot use redis://127.0.0.1:{port}/0 as the store" in result.stderr
    assert "Traceback" not in result.stderr
