"""Accounts and sessions: registering, logging in and out, and who a token belongs to."""

from __future__ import annotations

import logging
import os

import trio

from trio_chat import errors
from trio_chat.domain import accounts
from trio_chat.domain.models import DEVICE_DEFAULT, Session, User
from trio_chat.service.core import Core, writes
from trio_chat.storage import Batch, Note
from trio_chat.storage.base import LOGIN_FAILED, LOGIN_OK

log = logging.getLogger("trio_chat.service")


class Accounts:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.state = core.state
        config = core.config
        self.throttle = accounts.LoginThrottle(
            per_user=config.login_failure_limit,
            per_address=config.login_address_failure_limit,
            window_ms=int(config.login_failure_window * 1000),
            memory_bytes=config.login_throttle_memory,
        )
        self._dummy_hash = accounts.dummy_hash(config.scrypt_n)
        # scrypt costs tens of milliseconds of CPU and 16 MiB of memory per hash: at most one
        # per core at a time, so a flood of logins queues up instead of swamping the machine.
        self._hashing = trio.CapacityLimiter(os.cpu_count() or 1)
        core.note_hooks.append(self._take_note)

    async def register(
        self, name: str, password: str, device: str = DEVICE_DEFAULT
    ) -> tuple[User, str]:
        fields = []
        if problem := accounts.username_problem(name):
            fields.append({"path": "$.username", "message": problem})
        if problem := accounts.password_problem(password):
            fields.append({"path": "$.password", "message": problem})
        if fields:
            raise errors.InvalidRequest(
                "; ".join(f"{f['message']} @ {f['path']}" for f in fields), fields=fields
            )
        if self.state.find_user(name) is not None:
            raise errors.UsernameTaken(f"the username {name!r} is taken")
        password_hash = await trio.to_thread.run_sync(
            lambda: accounts.hash_password(password, n=self.core.config.scrypt_n),
            limiter=self._hashing,
        )
        return await self._create(name, password_hash, device)

    @writes
    async def _create(self, name: str, password_hash: str, device: str) -> tuple[User, str]:
        now = self.core.now()
        user = self.state.register(name, password_hash, now)
        token = accounts.new_token()
        token_hash = accounts.token_hash(token)
        session = self.state.add_session(token_hash, user, now, device)

        def undo() -> None:
            self.state.remove_session(token_hash)
            self.state.unregister(user)

        batch = Batch(
            users={user.key: user},
            sessions={token_hash: session},
            user_states={user.key: self.state.state_of(user.key)},
        )
        await self.core.commit(batch, undo=undo)
        log.info("registered user=%s", user.name)
        return user, token

    async def login(
        self, name: str, password: str, address: str | None, device: str = DEVICE_DEFAULT
    ) -> tuple[User, str]:
        # A name that cannot exist is refused before it reaches any table (or the throttle's
        # memory: 60 KB usernames once grew it by hundreds of megabytes).
        if problem := accounts.username_problem(name):
            raise errors.InvalidRequest.field("$.username", problem)
        key = name.lower()
        now = self.core.now()
        refused = self.throttle.check(key, address, now)
        if refused is not None:
            raise errors.TooManyAttempts(
                "too many failed logins from this address; try again later"
                if refused.by_address
                else "too many failed logins for this username; try again later",
                refused.retry_after_ms / 1000,
            )
        user = self.state.find_user(name)
        if user is None and await self.core.store.refresh():
            user = self.state.find_user(name)  # registered through another process just now
        ok = False
        if accounts.password_problem(password) is None:  # else no account can have it
            stored = user.password_hash if user is not None else self._dummy_hash
            ok = await trio.to_thread.run_sync(
                accounts.verify_password, password, stored, limiter=self._hashing
            )
        if user is None or not ok:
            failed_at = self.core.now()
            self.throttle.record_failure(key, address, failed_at)
            await self.core.share(Note(LOGIN_FAILED, key, address, failed_at))
            raise errors.BadCredentials()
        self.throttle.record_success(key, address)
        await self.core.share(Note(LOGIN_OK, key, address))
        return user, await self._open_session(user, device)

    def _take_note(self, note: Note) -> None:
        """Another process's login: its throttle counts go into this one's."""
        if note.kind == LOGIN_FAILED:
            self.throttle.record_failure(note.user, note.address, note.at)
        elif note.kind == LOGIN_OK:
            self.throttle.record_success(note.user, note.address)

    @writes
    async def _open_session(self, user: User, device: str) -> str:
        token = accounts.new_token()
        token_hash = accounts.token_hash(token)
        session = self.state.add_session(token_hash, user, self.core.now(), device)

        def undo() -> None:
            self.state.remove_session(token_hash)

        await self.core.commit(Batch(sessions={token_hash: session}), undo=undo)
        return token

    def authenticate(self, token: str | None) -> tuple[User, str]:
        """The user a bearer token belongs to, and the token's hash; or 401."""
        if token:
            token_hash = accounts.token_hash(token)
            session = self.state.sessions.get(token_hash)
            user = None if session is None else self.state.users.get(session.user)
            if session is not None and user is not None:
                self.core.touch_session(token_hash, session)
                return user, token_hash
        raise errors.Unauthorized()

    async def authenticate_fresh(self, token: str | None) -> tuple[User, str]:
        """``authenticate`` once this process has caught up with the others sharing the
        store (a token another process issued a moment ago); 401 as before otherwise."""
        if token and await self.core.store.refresh():
            return self.authenticate(token)
        raise errors.Unauthorized()

    def sessions(self, user: User) -> list[tuple[str, Session]]:
        """The user's sessions, newest first, as (token hash, session)."""
        return self.state.sessions_of(user.key)

    async def logout(self, token_hash: str) -> None:
        """End the caller's own session."""
        if not await self._end(token_hash):
            raise errors.Unauthorized()

    async def revoke(self, user: User, public_id: str) -> None:
        """End one of the user's sessions (any device's, this one's too)."""
        token_hash = self.state.find_session(user.key, public_id)
        if token_hash is None or not await self._end(token_hash):
            raise errors.SessionNotFound(f"you have no session {public_id!r}")

    @writes
    async def _end(self, token_hash: str) -> bool:
        session = self.state.remove_session(token_hash)
        if session is None:
            return False
        # At once, before the write: delivery checks the session too, so nothing more
        # reaches this token's streams even while the write is under way.
        self.core.hub.end_session(session.user, token_hash)

        def undo() -> None:
            self.state.put_session(token_hash, session)

        await self.core.commit(Batch(sessions={token_hash: None}), undo=undo)
        log.info("session ended user=%s device=%r", session.user, session.device)
        return True
