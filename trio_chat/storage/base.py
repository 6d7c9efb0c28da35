"""The storage interface: what the service needs from a store, and nothing more.

A store is synchronous; ``AsyncStore`` calls it from worker threads. A second backend (for
several server processes sharing one database) implements the same ``Store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from trio_chat.domain.files import FileRecord
from trio_chat.domain.idempotency import ClientRequest
from trio_chat.domain.models import Event, Session, User
from trio_chat.domain.rooms import Room
from trio_chat.domain.schedule import Scheduled
from trio_chat.domain.state import UserState


@attrs.define
class Batch:
    """Records to write together, atomically. ``None`` as a session deletes it."""

    users: dict[str, User] = attrs.field(factory=dict)
    sessions: dict[str, Session | None] = attrs.field(factory=dict)
    user_states: dict[str, UserState] = attrs.field(factory=dict)
    events: dict[int, Event] = attrs.field(factory=dict)  # cursor -> event (new or updated)
    chat_index: dict[tuple[str, int], int] = attrs.field(factory=dict)  # (chat, seq) -> cursor
    heads: dict[str, int] = attrs.field(factory=dict)
    cursor: int = 0  # the log head after this batch (0: unchanged)
    # client key (user/client_id) -> what it made; None deletes it
    client_requests: dict[str, ClientRequest | None] = attrs.field(factory=dict)
    rooms: dict[str, Room | None] = attrs.field(factory=dict)  # None deletes it
    scheduled: dict[str, Scheduled | None] = attrs.field(factory=dict)  # None deletes it
    files: dict[str, FileRecord | None] = attrs.field(factory=dict)  # None deletes it
    # Expired messages leaving the disk: their events (and comments'), their index entries,
    # and the chat's new floor (everything at or below it is gone).
    drop_events: set[int] = attrs.field(factory=set)
    drop_index: set[tuple[str, int]] = attrs.field(factory=set)
    floors: dict[str, int] = attrs.field(factory=dict)

    def add_event(self, event: Event) -> None:
        """A new entry of the log: it moves the log head, and a message its chat's head."""
        self.events[event.cursor] = event
        self.cursor = max(self.cursor, event.cursor)
        message = event.message
        if message is not None and event.type == "message":
            self.chat_index[(message.chat, message.seq)] = message.cursor
            self.heads[message.chat] = max(self.heads.get(message.chat, 0), message.seq)

    def update_event(self, event: Event) -> None:
        """Rewrite an entry already in the log (a message that gained a comment).

        Only the record changes: an older message must never pass for its chat's head.
        """
        self.events[event.cursor] = event

    def merge(self, later: Batch) -> None:
        """Fold a later batch into this one (later writes win, heads only grow)."""
        self.users.update(later.users)
        self.sessions.update(later.sessions)
        self.user_states.update(later.user_states)
        self.events.update(later.events)
        self.chat_index.update(later.chat_index)
        self.client_requests.update(later.client_requests)
        self.rooms.update(later.rooms)
        self.scheduled.update(later.scheduled)
        self.files.update(later.files)
        self.drop_events |= later.drop_events
        self.drop_index |= later.drop_index
        for chat, floor in later.floors.items():
            self.floors[chat] = max(self.floors.get(chat, 0), floor)
        for chat, head in later.heads.items():
            self.heads[chat] = max(self.heads.get(chat, 0), head)
        self.cursor = max(self.cursor, later.cursor)

    def __bool__(self) -> bool:
        return bool(
            self.users
            or self.sessions
            or self.user_states
            or self.events
            or self.chat_index
            or self.heads
            or self.cursor
            or self.client_requests
            or self.rooms
            or self.scheduled
            or self.files
            or self.drop_events
            or self.drop_index
            or self.floors
        )


@attrs.frozen
class Note:
    """What every process sharing a store should know but nobody stores: a failed login or
    join through a link, or a login that succeeded, for the throttles (which count in each
    process's memory). A store of one process has nobody to tell."""

    kind: str  # one of NOTE_KINDS
    user: str  # the user's key (a login's lower-cased username)
    address: str | None = None  # the client's address, for logins
    at: int = 0  # when, ms since the epoch


LOGIN_FAILED, LOGIN_OK, JOIN_FAILED = "login_failed", "login_ok", "join_failed"
NOTE_KINDS = (LOGIN_FAILED, LOGIN_OK, JOIN_FAILED)


@attrs.frozen
class Snapshot:
    """Everything loaded at start-up: small state only, never the message history."""

    users: dict[str, User]
    sessions: dict[str, Session]
    user_states: dict[str, UserState]
    heads: dict[str, int]
    cursor: int
    rooms: dict[str, Room] = attrs.field(factory=dict)
    scheduled: dict[str, Scheduled] = attrs.field(factory=dict)
    floors: dict[str, int] = attrs.field(factory=dict)
    files: dict[str, FileRecord] = attrs.field(factory=dict)


class Store(Protocol):
    def load(self) -> Snapshot: ...

    def write(self, batch: Batch) -> None:
        """Write the batch atomically and durably, or raise and write nothing."""
        ...

    def read_events(self, cursors: Sequence[int]) -> list[Event | None]: ...

    def read_chat_index(self, chat: str, seqs: Sequence[int]) -> list[int | None]: ...

    def read_client_request(self, key: str) -> ClientRequest | None: ...

    def client_requests_before(self, at: int) -> list[str]:
        """The keys of client requests made before ``at`` (to forget them)."""
        ...

    def close(self) -> None: ...
