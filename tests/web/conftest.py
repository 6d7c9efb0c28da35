"""Fixtures for the browser tests: a real server process, Debian's Chromium driven by
Playwright, console-client runs, and a TCP relay whose connections a test can cut.

The browser tests are synchronous (Playwright's sync API runs its own loop), so the server
runs as a process of its own, as `trio-chat serve` would. Screenshots go to
``build/screenshots`` (or ``$TRIO_CHAT_SCREENSHOTS``).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("TRIO_CHAT_SCREENSHOTS", ROOT / "build" / "screenshots"))
PASSWORD = "correct horse"
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
# The server these tests run: a small rate limit and ban threshold, so that reaching them
# takes a few requests.
RATE_LIMIT = 10
BAN_THRESHOLD = 2


def _need_browser() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install chromium); CI runs these")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    _need_browser()
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield chromium
        chromium.close()


class ServerProcess:
    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, port: int = 0) -> None:
        args = [
            sys.executable, "-m", "trio_chat", "serve",
            "--port", str(port),
            "--data-dir", str(self.data_dir),
            "--rate-limit-count", str(RATE_LIMIT),
            "--ban-threshold", str(BAN_THRESHOLD),
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = LISTENING.findall(self.log.read_text(errors="replace"))
            if found:
                self.url = found[-1]
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"the server did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    _need_browser()
    folder = tmp_path_factory.mktemp("web-server")
    running = ServerProcess(folder / "data", folder / "server.log")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def register(api: httpx.Client, name: str) -> dict[str, str]:
    """A user made through the API: its Authorization header."""
    response = api.post("/register", json={"username": name, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


_taken: set[str] = set()


@pytest.fixture
def unique() -> Any:
    """A fresh username on the shared server: ``alice``, then ``alice2``, ``alice3``..."""

    def fresh(name: str) -> str:
        n = 1
        while (name if n == 1 else f"{name}{n}") in _taken:
            n += 1
        chosen = name if n == 1 else f"{name}{n}"
        _taken.add(chosen)
        return chosen

    return fresh


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


# -- the console client ------------------------------------------------------------------


class ConsoleUser:
    """A user of the console client in script mode (``trio-chat-client send`` / ``read``)."""

    def __init__(self, server: ServerProcess, name: str, config_dir: Path) -> None:
        self.server = server
        self.name = name
        self.config_dir = config_dir
        self.registered = False

    def run(self, *args: str) -> str:
        # The client logs in only; its first run makes the account (--register).
        if not self.registered:
            self.registered = True
            args = ("--register", *args)
        env = {**os.environ, "TRIO_CHAT_PASSWORD": PASSWORD}
        command = [
            sys.executable, "-m", "trio_chat_client",
            "--server", self.server.url, "--user", self.name,
            "--config-dir", str(self.config_dir),
            *args,
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout


@pytest.fixture
def console(server: ServerProcess, tmp_path: Path) -> Any:
    return lambda name: ConsoleUser(server, name, tmp_path / f"console-{name}")


# -- a relay whose connections can be cut: a network drop, as the browser sees one ---------


class Relay:
    """Forwards TCP connections to ``target``; ``cut()`` drops every open one at once and,
    while ``down``, new ones are closed as soon as they arrive."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.down = False
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.open |= {client, upstream}
            pumps = [threading.Thread(target=self._pump, args=pair, daemon=True)
                     for pair in ((client, upstream), (upstream, client))]  # fmt: skip
            for pump in pumps:
                pump.start()
            threading.Thread(target=self._close, args=(pumps, client, upstream)).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _close(self, pumps: list[threading.Thread], *sockets: socket.socket) -> None:
        for pump in pumps:
            pump.join()
        with self.lock:
            self.open -= set(sockets)
        for s in sockets:
            s.close()

    def cut(self) -> None:
        with self.lock:
            for s in self.open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.open.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def relay(server: ServerProcess) -> Iterator[Relay]:
    running = Relay(server.url)
    yield running
    running.close()


# -- a user in a browser tab ----------------------------------------------------------------


class WebUser:
    """One browser tab (in a context of its own) on the web client."""

    def __init__(self, browser: Any, url: str, *, phone: bool = False) -> None:
        viewport = {"width": 390, "height": 760} if phone else {"width": 1180, "height": 760}
        self.context = browser.new_context(viewport=viewport, device_scale_factor=1)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", self._console)
        self.page.on("dialog", self._dialog)
        self.page.goto(url)
        self.name = ""

    def _console(self, message: Any) -> None:
        # Refused requests (404, 401) and cut connections are logged by the browser itself.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def sign_in(self, name: str, *, new: bool = True) -> WebUser:
        self.name = name
        self.page.fill("#username", name)
        self.page.fill("#password", PASSWORD)
        self.page.click("text=Create account" if new else "text=Sign in")
        expect(self.page.locator("#conn")).to_have_attribute("data-state", "live")
        return self

    def chat(self, title: str) -> Any:
        """The chat list's entry for a chat."""
        return self.page.locator(".chat-item", has=self.page.locator(".chat-name", has_text=title))

    def open(self, title: str) -> None:
        self.chat(title).click()
        expect(self.page.locator("#chat-title")).to_have_text(title)

    def send(self, text: str) -> None:
        self.page.fill("#text", text)
        self.page.press("#text", "Enter")
        expect(self.page.locator("#text")).to_have_value("")

    def message(self, text: str) -> Any:
        """The open chat's messages whose text is exactly ``text``."""
        return self.page.locator(".message", has=self.page.get_by_text(text, exact=True))

    def close(self) -> None:
        assert not self.errors, self.errors
        self.context.close()


@pytest.fixture
def tabs(browser: Any, server: ServerProcess) -> Iterator[Any]:
    """``tabs()`` opens a tab on the server (``tabs(url=...)`` elsewhere)."""
    opened: list[WebUser] = []

    def open_tab(url: str | None = None, *, phone: bool = False) -> WebUser:
        tab = WebUser(browser, url or server.url, phone=phone)
        opened.append(tab)
        return tab

    yield open_tab
    for tab in opened:
        tab.close()
