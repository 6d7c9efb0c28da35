"""Getting a valid token: the saved one if the server still accepts it, else log in or register."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .api import ApiClient
from .config import TokenStore
from .errors import ConflictError, UnauthorizedError

__all__ = ["MissingPasswordError", "authenticate"]


class MissingPasswordError(UnauthorizedError):
    """There is no saved session and no way to ask for a password."""

    def __init__(self, username: str) -> None:
        super().__init__(
            401,
            "no_password",
            f"no saved session for {username!r} and no password: run in a terminal, or set "
            "TRIO_CHAT_PASSWORD, or pass --password-file",
        )


async def authenticate(
    api: ApiClient,
    store: TokenStore,
    username: str,
    get_password: Callable[[], Awaitable[str | None]],
    notice: Callable[[str], None],
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
            if status.username == username:
                return
            api.token = None
    password = await get_password()
    if password is None:
        raise MissingPasswordError(username)
    try:
        session = await api.login(username, password)
    except UnauthorizedError as login_error:
        try:
            session = await api.register(username, password)
        except ConflictError:
            raise login_error from None  # the name exists: the password was wrong
        notice(f"registered a new account {username!r} on {api.server}")
    store.put(api.server, username, session.token)
