"""A private ``redis-server`` for tests: a free port, a temporary directory, fsync always.

Never the machine's own Redis (``apt-get install redis-server`` may start one on 6379).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def command(port: int, *args: str) -> bytes:
    """Send one command (RESP) and return the raw first line of the answer."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"".join(parts))
        answer = b""
        while not answer.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


class RedisServer:
    def __init__(self, directory: Path, *, durable: bool = True, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory)]
        args += ["--save", "", "--daemonize", "no", "--logfile", str(directory / "redis.log")]
        if durable:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if command(self.port, "PING").startswith(b"+PONG"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start (log in {directory})")
            time.sleep(0.02)

    def flush(self) -> None:
        assert command(self.port, "FLUSHALL").startswith(b"+OK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
