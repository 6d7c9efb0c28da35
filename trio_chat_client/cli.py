"""``trio-chat-client``: the interactive chat, and ``send`` / ``read`` / ``tail`` for scripts."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import io
import json
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import trio

from .api import DEFAULT_SERVER, ApiClient, normalize_server
from .auth import Relogin, authenticate, clean_device_name, default_device_name
from .config import TokenStore, default_config_dir
from .errors import (
    ApiError,
    BadRequestError,
    ClientError,
    CommandError,
    ProtocolViolationError,
    ServerFailureError,
    ServerUnreachableError,
    UnauthorizedError,
)
from .files import content_type_for
from .live import FIRST_RETRY_DELAY, MAX_RETRY_DELAY, Backoff, LiveFollower
from .models import (
    BannedEvent,
    CommentEvent,
    Event,
    JoinRefusedEvent,
    JoinRequestEvent,
    Message,
    MessageEvent,
    RoomJoinedEvent,
    RoomLeftEvent,
    ScheduledFailedEvent,
    UnbannedEvent,
    UnknownEvent,
    converter,
    event_type,
)
from .render import (
    clean,
    describe_error,
    format_clock,
    format_comment_plain,
    format_message_plain,
    stamp,
)
from .scheduling import describe_refusal
from .session import ChatSession, Console, utc_now
from .ui.terminal import PlainConsole

__all__ = ["EXIT_AUTH", "EXIT_OK", "EXIT_REJECTED", "EXIT_UNREACHABLE", "EXIT_USAGE", "main"]

EXIT_OK: Final = 0
EXIT_USAGE: Final = 1
EXIT_AUTH: Final = 2
EXIT_UNREACHABLE: Final = 3
EXIT_REJECTED: Final = 4
EXIT_SERVER: Final = 5
EXIT_INTERRUPTED: Final = 130
EXIT_SIGNAL_BASE: Final = 128  # the interactive client ended by SIGTERM or SIGHUP: 128 + its number
# While the server cannot be reached at start-up, the interactive client tries again after
# these many seconds, growing, with a countdown.
STARTUP_FIRST_WAIT: Final = 2.0
STARTUP_MAX_WAIT: Final = 30.0

EPILOG = """\
interactive commands: type /help once connected.

environment:
  TRIO_CHAT_SERVER    default for --server
  TRIO_CHAT_USER      default for --user
  TRIO_CHAT_PASSWORD  password, when there is no saved session (instead of a prompt)
  NO_COLOR            when set and not empty: no colours in the full-screen chat

exit status:
  0  success
  1  usage error (bad arguments)
  2  authentication failed (wrong password, no password available, session refused)
  3  server unreachable (connection refused, timeout, connection lost)
  4  request rejected (rate limited, banned, unknown user or message, invalid input)
  5  server failure (5xx) or an answer this client does not understand
  130 interrupted (Ctrl-C)
  143, 129 the interactive client was ended by SIGTERM, SIGHUP (the terminal is restored)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse exits 2 on usage errors, but 2 means "authentication failed" here.
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 100")
    return int(value)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError("must be a number of seconds from 0 to 3600")
    return seconds


def _backoff(args: argparse.Namespace) -> Backoff:
    initial = args.reconnect_delay or FIRST_RETRY_DELAY
    return Backoff(initial=initial, maximum=max(initial, MAX_RETRY_DELAY))


def build_parser() -> argparse.ArgumentParser:
    # Shared options are accepted before or after the subcommand; the subparsers' copies use
    # SUPPRESS so they do not overwrite a value given before it.
    def common(suppress: bool) -> _Parser:
        p = _Parser(add_help=False)
        default = argparse.SUPPRESS if suppress else None
        p.add_argument(
            "--server",
            metavar="URL",
            default=default,
            help=f"server address (default: $TRIO_CHAT_SERVER or {DEFAULT_SERVER})",
        )
        p.add_argument("--user", metavar="NAME", default=default, help="your username")
        p.add_argument(
            "--device",
            metavar="NAME",
            default=default,
            help="name of this device in your list of sessions (default: the host name)",
        )
        p.add_argument(
            "--register",
            action="store_true",
            default=default,
            help="create the account (the password is asked twice on a terminal)",
        )
        p.add_argument(
            "--plain",
            action="store_true",
            default=default,
            help="chat line by line, even on a terminal (as on a dumb terminal or a pipe)",
        )
        p.add_argument(
            "--password-file",
            metavar="PATH",
            type=Path,
            default=default,
            help="read the password from the first line of this file",
        )
        p.add_argument(
            "--config-dir",
            metavar="DIR",
            type=Path,
            default=default,
            help="where saved sessions live (default: $XDG_CONFIG_HOME/trio-chat or "
            "~/.config/trio-chat)",
        )
        p.add_argument(
            "--reconnect-delay",
            metavar="SECONDS",
            type=_seconds,
            default=default,
            help="first wait before reopening a broken live stream; doubles on each failure "
            f"up to {MAX_RETRY_DELAY:g} s (default {FIRST_RETRY_DELAY:g})",
        )
        return p

    parser = _Parser(
        prog="trio-chat-client",
        description="Console client for trio-chat. Without a command: chat interactively.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common(False)],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    inherit = [common(True)]
    sub.add_parser("chat", parents=inherit, help="chat interactively (the default)")
    p_send = sub.add_parser(
        "send",
        parents=inherit,
        help="send one message; prints its id",
        description="Send TEXT (words joined by spaces; '-' reads stdin), with the files given "
        "by --file. Prints the message's id.",
    )
    p_send.add_argument("--to", metavar="USER", help="send privately to USER")
    p_send.add_argument(
        "--file",
        dest="files",
        metavar="PATH",
        type=Path,
        action="append",
        default=[],
        help="attach the file at PATH (repeatable; TEXT is then optional)",
    )
    p_send.add_argument("text", nargs="*", metavar="TEXT")
    p_read = sub.add_parser(
        "read", parents=inherit, help="print recent messages (common chat, or --with USER)"
    )
    p_read.add_argument("--limit", type=_positive, default=20, help="1..100 (default 20)")
    p_read.add_argument("--with", dest="with_user", metavar="USER", help="private conversation")
    p_read.add_argument("--before", metavar="ID", help="only messages before this message id")
    p_read.add_argument("--json", action="store_true", help="one JSON object per line")
    p_tail = sub.add_parser(
        "tail", parents=inherit, help="print new messages, comments and notices as they arrive"
    )
    p_tail.add_argument("--since", metavar="CURSOR", help="resume after this event cursor")
    p_tail.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def exit_code_for(exc: ClientError) -> int:
    if isinstance(exc, CommandError):
        return EXIT_USAGE
    if isinstance(exc, UnauthorizedError):
        return EXIT_AUTH
    if isinstance(exc, ServerUnreachableError):
        return EXIT_UNREACHABLE
    if isinstance(exc, ServerFailureError | ProtocolViolationError):
        return EXIT_SERVER
    if isinstance(exc, ApiError):
        return EXIT_REJECTED
    return EXIT_SERVER


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Passwords:
    """Passwords from ``--password-file``, ``$TRIO_CHAT_PASSWORD``, or typed on the terminal."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._file: Path | None = args.password_file
        self._env = os.environ.get("TRIO_CHAT_PASSWORD") or None
        self.interactive = self._file is None and self._env is None and sys.stdin.isatty()

    async def ask(self, prompt: str) -> str | None:
        if self._file is not None:
            try:
                text = self._file.read_text(encoding="utf-8")
            except OSError as exc:
                raise UnauthorizedError(
                    401, "no_password", f"cannot read the password file: {exc.strerror}"
                ) from exc
            return text.splitlines()[0] if text else ""
        if self._env is not None:
            return self._env
        if not self.interactive:
            return None
        # In this thread, on purpose: nothing else runs before the chat starts, and Ctrl-C
        # then interrupts getpass itself, which puts the terminal's echo back on its way out.
        try:
            return getpass.getpass(prompt)
        except EOFError:  # Ctrl-D
            print(file=sys.stderr)
            return None


async def _run(args: argparse.Namespace) -> int:
    store = TokenStore(args.config_dir or default_config_dir())
    scripted = args.command in ("send", "read", "tail")
    async with ApiClient(args.server) as api:
        if scripted:
            await authenticate(
                api, store, args.user, Passwords(args), _stderr_notice, args.device,
                register=args.register,
            )  # fmt: skip
            if args.command == "send":
                await _send(api, args)
            elif args.command == "read":
                await _read(api, args)
            else:
                await _tail(api, args, _backoff(args))
            return EXIT_OK
        return await _chat(api, store, args)


def _stderr_notice(text: str) -> None:
    _stderr(f"* {text}")


# -- the interactive chat -----------------------------------------------------------------


async def _chat(api: ApiClient, store: TokenStore, args: argparse.Namespace) -> int:
    full_screen = (
        not args.plain
        and sys.stdin.isatty()
        and sys.stdout.isatty()
        and os.environ.get("TERM", "dumb") not in ("dumb", "unknown", "")
    )
    await _wait_for_server(api)
    early: list[str] = []  # start-up notices, shown once the chat is on screen
    me = await authenticate(
        api, store, args.user, Passwords(args), early.append, args.device, register=args.register
    )
    ended_by: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_end_on_signals, nursery.cancel_scope, ended_by)
        async with _console(full_screen, f"{me}@{api.server.split('://', 1)[-1]}") as console:
            session = ChatSession(
                api,
                me,
                console,
                on_logout=lambda: store.forget(api.server, me),
                backoff=_backoff(args),
            )
            session.relogin = Relogin(
                api,
                store,
                me,
                args.device,
                console.read_password,
                session.notice,
                session.error,
                lambda exc: describe_error(exc, utc_now()),
            )
            if full_screen:
                console.bind(session)  # type: ignore[attr-defined]
            for text in early:
                session.notice(text)
            await session.run()
        nursery.cancel_scope.cancel()
    return EXIT_SIGNAL_BASE + ended_by[0] if ended_by else EXIT_OK


@contextlib.asynccontextmanager
async def _console(full_screen: bool, who: str) -> AsyncIterator[Console]:
    if full_screen:
        from .ui.tui import open_tui  # urwid is loaded only for the full screen

        async with open_tui(who) as tui:
            yield tui
        return
    plain = PlainConsole(sys.stdin.buffer, sys.stdout)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(plain.pump)
        yield plain
        nursery.cancel_scope.cancel()


async def _end_on_signals(scope: trio.CancelScope, ended_by: list[int]) -> None:
    """SIGTERM and SIGHUP end the chat like /quit would: the terminal is restored on the
    way out (the full screen's context managers run), not left in the screen's modes."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async for signum in signals:
            ended_by.append(signum)
            scope.cancel()
            return


async def _wait_for_server(api: ApiClient) -> None:
    """Until the server answers, try again with a visible countdown (interactive start-up)."""
    backoff = Backoff(initial=STARTUP_FIRST_WAIT, maximum=STARTUP_MAX_WAIT)
    counting = sys.stderr.isatty()
    waited = False
    while True:
        try:
            await api.healthz()
        except ServerUnreachableError as exc:
            waited = True
            delay = backoff.next_delay()
            if not counting:
                _stderr(f"* {exc}; trying again in {delay:g} s (Ctrl-C quits)")
                await trio.sleep(delay)
                continue
            for left in range(math.ceil(delay), 0, -1):
                sys.stderr.write(f"\r\x1b[K* {exc}; trying again in {left} s (Ctrl-C quits)")
                sys.stderr.flush()
                await trio.sleep(1)
            continue
        if waited:
            if counting:
                sys.stderr.write("\r\x1b[K")
            _stderr(f"* the server at {api.server} answers")
        return


# -- scripts --------------------------------------------------------------------------------


async def _send(api: ApiClient, args: argparse.Namespace) -> None:
    text = sys.stdin.read().rstrip("\n") if args.text == ["-"] else " ".join(args.text)
    paths: list[Path] = [path.expanduser() for path in args.files]
    for path in paths:  # every file is checked before any is sent
        if not path.is_file() or not os.access(path, os.R_OK):
            raise CommandError(f"cannot read the file {path}; nothing was sent")
        if path.stat().st_size == 0:
            raise CommandError(f"{path} is empty, and the server takes no empty files")
    ids = []
    for path in paths:
        uploaded = await api.upload(path, content_type=content_type_for(path))
        ids.append(uploaded.id)
    message = await api.send(text, to=args.to, files=ids)
    print(message.id, flush=True)


def _json_line(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False), flush=True)


def _as_json(event: Event | Message) -> dict[str, Any]:
    """The API's own JSON for a message or an event (timestamps as the API writes them)."""
    if isinstance(event, Message):
        return {"type": "message", "message": converter.unstructure(event)}
    if isinstance(event, UnknownEvent):  # passed on as the server sent it
        return dict(event.data)
    return {"type": event_type(event), **converter.unstructure(event)}


async def _read(api: ApiClient, args: argparse.Namespace) -> None:
    messages = await api.messages(with_user=args.with_user, before=args.before, limit=args.limit)
    for message in messages:
        if args.json:
            _json_line(_as_json(message))
        else:
            for line in format_message_plain(message):
                print(line)
    sys.stdout.flush()


async def _tail(api: ApiClient, args: argparse.Namespace, backoff: Backoff) -> None:
    def notice(text: str) -> None:
        if args.json:
            _json_line({"type": "notice", "text": text})
        else:
            _stderr(f"* {text}")

    def on_event(event: Event) -> None:
        if args.json:
            _json_line(_as_json(event))
        elif isinstance(event, MessageEvent):
            print(format_message_plain(event.message)[0], flush=True)
        elif isinstance(event, CommentEvent):
            print(format_comment_plain(event.comment), flush=True)
        elif isinstance(event, BannedEvent):
            until = format_clock(event.until, utc_now())
            notice(f"you are banned from sending until {until} ({stamp(event.until)})")
        elif isinstance(event, UnbannedEvent):
            notice("your ban has ended")
        elif isinstance(event, JoinRequestEvent):
            notice(f"{clean(event.username)} asks to join the room {event.room}")
        elif isinstance(event, RoomJoinedEvent):
            notice(f"{clean(event.username)} joined the room {clean(event.room.name)}")
        elif isinstance(event, JoinRefusedEvent):
            notice(f"your request to join the room {event.room} was turned down")
        elif isinstance(event, RoomLeftEvent):
            notice(f"{clean(event.username)} is no longer in the room {event.room}")
        elif isinstance(event, ScheduledFailedEvent):
            why = describe_refusal(event.error.code, event.error.message)
            notice(
                f"your message scheduled for {stamp(event.scheduled.send_at)} was not sent: {why}"
            )

    since = args.since
    try:
        # The present, or a check of the cursor given: resuming from a cursor the server does
        # not know would silently start from now.
        present = (await api.updates(since=since, timeout=0)).cursor
    except BadRequestError as exc:
        if exc.code != "invalid_cursor":
            raise
        raise BadRequestError(
            400,
            "invalid_cursor",
            f"--since {since} is not a cursor of this server's event log (give one that tail "
            "printed before, or none to start now)",
        ) from None
    since = since or present
    notice(f"following new messages on {api.server} from cursor {since} (Ctrl-C to stop)")
    await LiveFollower(api, since, on_event, notice, backoff).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.server = normalize_server(
        args.server or os.environ.get("TRIO_CHAT_SERVER") or DEFAULT_SERVER
    )
    args.user = args.user or os.environ.get("TRIO_CHAT_USER")
    args.register = bool(args.register)
    args.plain = bool(args.plain)
    if args.command == "send" and not args.text and not args.files:
        parser.error("send needs TEXT, or a file with --file PATH")
    if args.device is None:
        args.device = default_device_name()
    elif not clean_device_name(args.device):
        parser.error("--device must have at least one printable character")
    else:
        args.device = clean_device_name(args.device)
    if not args.user:
        if sys.stdin.isatty() and args.command in (None, "chat"):
            try:
                args.user = input("username: ").strip()
            except (EOFError, KeyboardInterrupt):
                print(file=sys.stderr)
                return EXIT_INTERRUPTED
        if not args.user:
            parser.error("--user is required (or set TRIO_CHAT_USER)")
    # Never die on a character the terminal's encoding cannot show.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    try:
        try:
            return trio.run(_run, args)
        except BaseExceptionGroup as group:
            # A task nursery (the console's reader) wraps what ended the run; one error is
            # still one error.
            raise _sole(group) from None
    except ClientError as exc:
        _stderr(f"trio-chat-client: {describe_error(exc, utc_now())}")
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`read | head`): nothing more to say, and nobody to say it to.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception inside nested single-member groups, else the group itself."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup) and len(found.exceptions) == 1:
        found = found.exceptions[0]
    return found
