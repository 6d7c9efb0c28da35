"""Following the live event stream across network trouble and server restarts.

The follower keeps one ``GET /events`` stream open. When it breaks (connection refused, reset,
the server closing it on shutdown, 5xx) it waits and reopens it, resuming with
``Last-Event-ID: <last cursor received>``, which API.md promises loses nothing and repeats
nothing. Waits grow exponentially (0.5 s, 1 s, 2 s ... capped at 10 s) so a long outage costs
little, and reset once a stream is open again. All waiting is ``trio.sleep``, so tests can run
the whole schedule instantly under ``MockClock``.

A 401 (the session was revoked or logged out elsewhere) is not an outage: with a
``reauthenticate`` hook (the interactive client asks for the password again) the stream is
reopened at once from the same cursor; without one, the :class:`UnauthorizedError` is raised
(scripts exit with the authentication status).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import attrs
import trio

from .api import ApiClient
from .errors import ApiError, ClientError, ServerUnreachableError, UnauthorizedError
from .models import Event

__all__ = ["FIRST_RETRY_DELAY", "MAX_RETRY_DELAY", "Backoff", "LiveFollower"]


FIRST_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 10.0


@attrs.define
class Backoff:
    initial: float = FIRST_RETRY_DELAY
    maximum: float = MAX_RETRY_DELAY
    factor: float = 2.0
    _current: float | None = None

    def next_delay(self) -> float:
        delay = self.initial if self._current is None else self._current * self.factor
        self._current = min(delay, self.maximum)
        return self._current

    def reset(self) -> None:
        self._current = None


class LiveFollower:
    def __init__(
        self,
        api: ApiClient,
        cursor: str | None,
        on_event: Callable[[Event], None],
        on_notice: Callable[[str], None],
        backoff: Backoff | None = None,
        reauthenticate: Callable[[str | None], Awaitable[None]] | None = None,
    ) -> None:
        self.api = api
        self._reauthenticate = reauthenticate
        self.cursor = cursor
        self._on_event = on_event
        self._notice = on_notice
        self.backoff = backoff or Backoff()
        self.opened = 0  # how many times a stream was opened (tests watch this)
        self.outage = False

    async def run(self) -> None:
        """Follow forever (until cancelled); raises if the session is refused for good."""
        while True:
            token = self.api.token
            try:
                async with self.api.events(since=self.cursor) as stream:
                    self.opened += 1
                    self.backoff.reset()
                    if self.outage:
                        self.outage = False
                        self._notice("reconnected to the server; live updates resumed")
                    async for event in stream:
                        self.cursor = event.cursor or stream.last_event_id or self.cursor
                        self._on_event(event)
                reason = "the server closed the live stream"
            except UnauthorizedError:
                if self._reauthenticate is None:
                    raise
                await self._reauthenticate(token)
                continue
            except ServerUnreachableError as exc:
                reason = exc.reason
            except ApiError as exc:
                if exc.code == "invalid_cursor":
                    # Only if the server lost its log (new data dir): nothing to resume from.
                    self._notice(
                        "the server does not know our position in the event log any more; "
                        "following from now on (use /history to see what was missed)"
                    )
                    self.cursor = None
                reason = f"{exc.status} {exc.code}"
            except ClientError as exc:
                reason = str(exc)
            delay = self.backoff.next_delay()
            if not self.outage:
                self.outage = True
                self._notice(
                    f"lost the live connection to the server ({reason}); reconnecting in the "
                    f"background (sending fails until it is back)"
                )
            await trio.sleep(delay)
