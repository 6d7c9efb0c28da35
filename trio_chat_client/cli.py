"""``trio-chat-client``: the interactive chat, and ``send`` / ``read`` / ``tail`` for scripts."""

from __future__ import annotations

import argparse
import getpass
import io
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, NoReturn

import trio

from .api import DEFAULT_SERVER, ApiClient, normalize_server
from .auth import Relogin, authenticate, clean_device_name, default_device_name
from .config import TokenStore, default_config_dir
from .errors import (
    ApiError,
    ClientError,
    ProtocolViolationError,
    ServerFailureError,
    ServerUnreachableError,
    UnauthorizedError,
)
from .live import FIRST_RETRY_DELAY, MAX_RETRY_DELAY, Backoff, LiveFollower
from .models import Event, MessageEvent
from .render import describe_error, format_message_plain
from .session import ChatSession, utc_now
from .ui.terminal import open_console

__all__ = ["EXIT_AUTH", "EXIT_OK", "EXIT_REJECTED", "EXIT_UNREACHABLE", "EXIT_USAGE", "main"]

EXIT_OK: Final = 0
EXIT_USAGE: Final = 1
EXIT_AUTH: Final = 2
EXIT_UNREACHABLE: Final = 3
EXIT_REJECTED: Final = 4
EXIT_SERVER: Final = 5
EXIT_INTERRUPTED: Final = 130

EPILOG = """\
interactive commands: type /help once connected.

environment:
  TRIO_CHAT_SERVER    default for --server
  TRIO_CHAT_USER      default for --user
  TRIO_CHAT_PASSWORD  password, when there is no saved session (instead of a prompt)

exit status:
  0  success
  1  usage error (bad arguments)
  2  authentication failed (wrong password, no password available, session refused)
  3  server unreachable (connection refused, timeout, connection lost)
  4  request rejected (rate limited, banned, unknown user or message, invalid input)
  5  server failure (5xx) or an answer this client does not understand
  130 interrupted (Ctrl-C)
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
        description="Send TEXT (words joined by spaces; '-' reads stdin). Prints the id.",
    )
    p_send.add_argument("--to", metavar="USER", help="send privately to USER")
    p_send.add_argument("text", nargs="+", metavar="TEXT")
    p_read = sub.add_parser(
        "read", parents=inherit, help="print recent messages (common chat, or --with USER)"
    )
    p_read.add_argument("--limit", type=_positive, default=20, help="1..100 (default 20)")
    p_read.add_argument("--with", dest="with_user", metavar="USER", help="private conversation")
    p_read.add_argument("--before", metavar="ID", help="only messages before this message id")
    p_tail = sub.add_parser("tail", parents=inherit, help="print new messages as they arrive")
    p_tail.add_argument("--since", metavar="CURSOR", help="resume after this event cursor")
    return parser


def exit_code_for(exc: ClientError) -> int:
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


def _password_source(args: argparse.Namespace) -> Callable[[], Awaitable[str | None]]:
    async def get_password() -> str | None:
        if args.password_file is not None:
            try:
                text = args.password_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise UnauthorizedError(
                    401, "no_password", f"cannot read the password file: {exc.strerror}"
                ) from exc
            return text.splitlines()[0] if text else ""
        env = os.environ.get("TRIO_CHAT_PASSWORD")
        if env:
            return env
        if sys.stdin.isatty():
            prompt = f"password for {args.user} at {normalize_server(args.server)}: "
            # getpass reads from /dev/tty without echo; it blocks, so keep it off the event loop.
            return await trio.to_thread.run_sync(getpass.getpass, prompt)
        return None

    return get_password


async def _run(args: argparse.Namespace) -> int:
    store = TokenStore(args.config_dir or default_config_dir())
    async with ApiClient(args.server) as api:
        notice = _stderr if args.command in ("send", "read", "tail") else _notice_stdout
        await authenticate(api, store, args.user, _password_source(args), notice, args.device)
        if args.command == "send":
            text = sys.stdin.read().rstrip("\n") if args.text == ["-"] else " ".join(args.text)
            message = await api.send(text, to=args.to)
            print(message.id, flush=True)
        elif args.command == "read":
            for message in await api.messages(
                with_user=args.with_user, before=args.before, limit=args.limit
            ):
                for line in format_message_plain(message):
                    print(line)
        elif args.command == "tail":
            await _tail(api, args.since, _backoff(args))
        else:
            async with open_console(prompt=f"{args.user}> ") as console:
                session = ChatSession(
                    api,
                    args.user,
                    console,
                    on_logout=lambda: store.forget(api.server, args.user),
                    backoff=_backoff(args),
                )
                session.relogin = Relogin(
                    api,
                    store,
                    args.user,
                    args.device,
                    console.read_password,
                    session.notice,
                    session.error,
                    lambda exc: describe_error(exc, utc_now()),
                )
                await session.run()
    return EXIT_OK


def _notice_stdout(text: str) -> None:
    print(f"* {text}", flush=True)


async def _tail(api: ApiClient, since: str | None, backoff: Backoff) -> None:
    def on_event(event: Event) -> None:
        if isinstance(event, MessageEvent):
            for line in format_message_plain(event.message):
                print(line, flush=True)

    if since is None:
        # Start at the present, explicitly, so the first reconnect has a cursor to resume from.
        since = (await api.updates(timeout=0)).cursor
    _stderr(f"* following new messages on {api.server} from cursor {since} (Ctrl-C to stop)")
    await LiveFollower(api, since, on_event, lambda t: _stderr(f"* {t}"), backoff).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.server = normalize_server(
        args.server or os.environ.get("TRIO_CHAT_SERVER") or DEFAULT_SERVER
    )
    args.user = args.user or os.environ.get("TRIO_CHAT_USER")
    if args.device is None:
        args.device = default_device_name()
    elif not clean_device_name(args.device):
        parser.error("--device must have at least one printable character")
    else:
        args.device = clean_device_name(args.device)
    if not args.user:
        if sys.stdin.isatty() and args.command in (None, "chat"):
            args.user = input("username: ").strip()
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
        return EXIT_INTERRUPTED


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception inside nested single-member groups, else the group itself."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup) and len(found.exceptions) == 1:
        found = found.exceptions[0]
    return found
