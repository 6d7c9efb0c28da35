"""Getting a valid token: the saved one if the server still accepts it, else log in or register;
and logging in again, in place, when the server ends this session later (:class:`Relogin`)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

import trio

from .api import ApiClient
from .config import TokenStore
from .errors import ClientError, UnauthorizedError
from .models import Session

__all__ = [
    "DEVICE_MAX",
    "MissingPasswordError",
    "PasswordSource",
    "Relogin",
    "authenticate",
    "default_device_name",
    "is_session_refused",
]

DEVICE_MAX: Final = 64  # API.md: a device name is 1-64 printable characters
FALLBACK_DEVICE: Final = "trio-chat-client"
RELOGIN_TRIES: Final = 3
LOGIN_TRIES: Final = 2  # a person who mistypes the password at start-up gets a second try


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


class PasswordSource(Protocol):
    """Where passwords come from: ``ask()`` one (None: none available); ``interactive``: a
    person types them, so a typo may be tried again and a new one is asked for twice."""

    interactive: bool

    async def ask(self, prompt: str) -> str | None: ...


async def authenticate(
    api: ApiClient,
    store: TokenStore,
    username: str,
    passwords: PasswordSource,
    notice: Callable[[str], None],
    device: str | None = None,
    *,
    register: bool = False,
) -> str:
    """Leave ``api`` holding a working token for ``username``, saved in ``store``; return the
    name as the server spells it.

    Logging in never creates an account: a mistyped name must not become a new one. With
    ``register`` the account is created (a person types the new password twice). A person
    who mistypes the password gets a second try.
    """
    if not register:
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
                    return status.username
                api.token = None
    prompt = f"password for {username} at {api.server}: "
    if register:
        session = await _register(api, username, passwords, device)
        notice(f"registered a new account {session.username!r} on {api.server}")
    else:
        tries = LOGIN_TRIES if passwords.interactive else 1
        for attempt in range(1, tries + 1):
            password = await passwords.ask(prompt)
            if password is None:
                raise MissingPasswordError(username)
            try:
                session = await api.login(username, password, device)
                break
            except UnauthorizedError as exc:
                if exc.code != "bad_credentials":
                    raise
                if attempt == tries:
                    raise BadCredentialsError() from None
                notice("wrong username or password; try again")
    store.put(api.server, username, session.token)
    return session.username


async def _register(
    api: ApiClient, username: str, passwords: PasswordSource, device: str | None
) -> Session:
    password = await passwords.ask(f"new password for {username} at {api.server}: ")
    if password is None:
        raise MissingPasswordError(username)
    if passwords.interactive:
        again = await passwords.ask("the same password again: ")
        if again != password:
            raise PasswordMismatchError()
    return await api.register(username, password, device)


class BadCredentialsError(UnauthorizedError):
    """The last password tried was wrong (the server said ``bad_credentials``)."""

    def __init__(self) -> None:
        super().__init__(
            401,
            "login_failed",
            "wrong username or password (a new account is made with --register)",
        )


class PasswordMismatchError(UnauthorizedError):
    def __init__(self) -> None:
        super().__init__(401, "password_mismatch", "the two passwords differ; no account was made")


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
