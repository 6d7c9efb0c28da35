"""Getting a valid token: the saved one if the server still accepts it, else log in or register;
and logging in again, in place, when the server ends this session later (:class:`Relogin`)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from .api import ApiClient
from .config import TokenStore
from .errors import ClientError, ConflictError, UnauthorizedError

__all__ = [
    "DEVICE_MAX",
    "MissingPasswordError",
    "Relogin",
    "authenticate",
    "default_device_name",
    "is_session_refused",
]

DEVICE_MAX: Final = 64  # API.md: a device name is 1-64 printable characters
FALLBACK_DEVICE: Final = "trio-chat-client"
RELOGIN_TRIES: Final = 3


def default_device_name(hostname: str | None = None) -> str:
    """This installation's device name: the host name, made acceptable to the server."""
    name = socket.gethostname() if hostname is None else hostname
    return clean_device_name(name) or FALLBACK_DEVICE


def clean_device_name(name: str) -> str:
    printable = "".join(ch for ch in name.strip() if ch.isprintable())
    return printable[:DEVICE_MAX]


def is_session_refused(exc: BaseException) -> bool:
    """A 401 for our token (revoked, logged out elsewhere), not a wrong password."""
    return isinstance(exc, UnauthorizedError) and exc.code == "unauthorized"


class MissingPasswordError(UnauthorizedError):
    """There is no saved session and no way to ask for a password."""

    def __init__(self, username: str) -> None:
        super().__init__(
            401,
            "no_password",
            f"no saved session for {username!r} and no password: run in a terminal, or set "
            "TRIO_CHAT_PASSWORD, or pass --password-file",
        )


class LoginAbandonedError(UnauthorizedError):
    """The server ended this session and no new password was given."""

    def __init__(self) -> None:
        super().__init__(
            401,
            "session_ended",
            "the server ended this session (revoked or logged out from another device) and "
            "no password was given to log in again",
        )


async def authenticate(
    api: ApiClient,
    store: TokenStore,
    username: str,
    get_password: Callable[[], Awaitable[str | None]],
    notice: Callable[[str], None],
    device: str | None = None,
) -> None:
    """Leave ``api`` holding a working token for ``username``, saved in ``store``.

    A new name is registered on the spot (and said so); a known name with a wrong password is
    ``bad_credentials``.
    """
    token = store.get(api.server, username)
    if token is not None:
        api.token = token
        try:
            status = await api.status()
        except UnauthorizedError:
            store.forget(api.server, username)
            api.token = None
            notice("the saved session is no longer valid; logging in again")
        else:
            if status.username.lower() == username.lower():
                return
            api.token = None
    password = await get_password()
    if password is None:
        raise MissingPasswordError(username)
    try:
        session = await api.login(username, password, device)
    except UnauthorizedError as login_error:
        try:
            session = await api.register(username, password, device)
        except ConflictError:
            raise login_error from None  # the name exists: the password was wrong
        notice(f"registered a new account {username!r} on {api.server}")
    store.put(api.server, username, session.token)


class Relogin:
    """Log in again in place after the server refused our token (interactive mode).

    Any task may call it with the token its failed call used; concurrent callers (a command
    and the live stream both hitting the 401) wait for one prompt, and a caller whose token
    was already replaced returns at once. The password is always asked for: a session ended
    from another device must not come back by itself (that is what ending it is for).
    """

    def __init__(
        self,
        api: ApiClient,
        store: TokenStore,
        username: str,
        device: str | None,
        ask_password: Callable[[str], Awaitable[str | None]],
        notice: Callable[[str], None],
        error: Callable[[str], None],
        describe: Callable[[ClientError], str],
    ) -> None:
        self.api = api
        self.store = store
        self.username = username
        self.device = device
        self._ask = ask_password
        self._notice = notice
        self._error = error
        self._describe = describe
        self._lock = trio.Lock()
        self.count = 0  # successful re-logins (tests watch this)

    async def __call__(self, failed_token: str | None) -> None:
        async with self._lock:
            if self.api.token is not None and self.api.token != failed_token:
                return  # another task already logged in again
            self.store.forget(self.api.server, self.username)
            self.api.token = None
            self._notice(
                "the server ended this session (revoked or logged out from another device); "
                "enter your password to log in again (an empty line quits)"
            )
            prompt = f"password for {self.username} at {self.api.server}: "
            for _ in range(RELOGIN_TRIES):
                password = await self._ask(prompt)
                if not password:
                    break
                try:
                    session = await self.api.login(self.username, password, self.device)
                except ClientError as exc:
                    self._error(self._describe(exc))
                    continue
                self.store.put(self.api.server, self.username, session.token)
                self.count += 1
                self._notice("logged in again; carrying on")
                return
            raise LoginAbandonedError()
