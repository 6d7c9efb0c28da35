"""ChatState: the in-memory, synchronous heart of the server.

Theory of operation
-------------------
Everything small lives here and is loaded whole at start-up: users, sessions, each user's
read positions, rate-limit window and moderation standing, and the head (last sequence
number) of every chat and of the event log. Messages themselves do not: they live in the
store and are looked up by number, so start-up time does not grow with history.

Every method validates, then mutates, synchronously. The service calls a method, then hands
the changed records to the store and answers only once they are durable. Because methods
never await, two requests can never interleave inside one: the 21st message cannot slip
past the rate limit, two registrations of one name cannot both succeed, and sequence
numbers are handed out in the order commits will happen.

Numbering: ``cursor`` numbers every event server-wide (1, 2, 3, ...); ``heads[chat]``
numbers the messages of one chat. Both are allocated here; what is *committed* is tracked
by the service, which only ever shows committed numbers to readers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import attrs

from trio_chat import errors
from trio_chat.clock import format_ms
from trio_chat.domain import chats, moderation, ratelimit
from trio_chat.domain.filerefs import FileRef
from trio_chat.domain.lifetime import Delivered
from trio_chat.domain.models import (
    DEVICE_DEFAULT,
    Comment,
    Event,
    EventType,
    Message,
    Session,
    User,
    comment_id,
    message_id,
    session_id,
    user_key,
)
from trio_chat.domain.rooms import Rooms, is_room

TEXT_MAX = 4096


@attrs.frozen
class UserState:
    """Per-user mutable state, replaced whole on every change (so undo is a put-back)."""

    read: Mapping[str, int] = attrs.field(factory=dict)  # chat -> last seq delivered
    # chat -> the user's own messages past its read position (never unread, so not counted)
    own: Mapping[str, tuple[int, ...]] = attrs.field(factory=dict)
    # chat -> how the read position moved, as far as message lifetimes still care
    delivered: Mapping[str, Delivered] = attrs.field(factory=dict)
    joined_general_at: int = 0  # the common chat's head when the user registered
    private_chats: frozenset[str] = frozenset()
    window: ratelimit.RateWindow | None = None
    standing: moderation.Standing = attrs.field(factory=moderation.Standing)


@attrs.frozen
class ConnectPlan:
    history: range  # seqs of the common chat already seen
    unread: Mapping[str, range]  # chat -> seqs not yet delivered
    read_after: Mapping[str, int]


@attrs.frozen
class ReportResult:
    target: User
    reports: int
    banned_until: int | None
    event: Event | None  # the "banned" event when this report started a ban


OWN_KEPT = 256  # own messages remembered past a read position, per chat


def _read_to(state: UserState, moved: Mapping[str, int], now: int, ttl: int) -> UserState:
    """The state once the read positions of ``moved`` reached theirs (all forward)."""
    delivered = state.delivered
    if ttl > 0:
        delivered = dict(delivered)
        for chat, position in moved.items():
            delivered[chat] = delivered.get(chat, Delivered()).moved(position, now, ttl)
    return attrs.evolve(state, read={**state.read, **moved}, delivered=delivered)


def _with_own(state: UserState, chat: str, seq: int, now: int, ttl: int) -> UserState:
    """The author's state once it sent message ``seq`` to ``chat``: one's own message is read;
    if everything before it was read too, the read position simply moves on.

    Otherwise it is remembered (so unread counts leave it out) until the position passes it.
    A user who never polled has seen the common chat up to now: nothing to remember. Past
    ``OWN_KEPT`` the oldest are forgotten (and would count as unread), so the state stays
    small for a script that sends without ever reading."""
    read = state.read.get(chat)
    if read is None and chat == chats.GENERAL:
        # Never polled: the common chat counts as seen up to now (its first /connect shows
        # history, no unread), which for lifetimes is a delivery now; the read position
        # itself stays unset, as the contract's first connect needs.
        if ttl <= 0:
            return state
        delivered = state.delivered.get(chat, Delivered()).moved(seq, now, ttl)
        return attrs.evolve(state, delivered={**state.delivered, chat: delivered})
    if (read or 0) == seq - 1 and chat not in state.own:
        return _read_to(state, {chat: seq}, now, ttl)
    mine = (*state.own.get(chat, ()), seq)[-OWN_KEPT:]
    return attrs.evolve(state, own={**state.own, chat: mine})


def text_problem(text: str) -> str | None:
    if not 1 <= len(text) <= TEXT_MAX:
        return f"text must be 1 to {TEXT_MAX} characters"
    return None


@attrs.define
class ChatState:
    rate_policy: ratelimit.RatePolicy
    ban_policy: moderation.BanPolicy
    users: dict[str, User] = attrs.field(factory=dict)
    sessions: dict[str, Session] = attrs.field(factory=dict)  # token hash -> session
    user_states: dict[str, UserState] = attrs.field(factory=dict)
    heads: dict[str, int] = attrs.field(factory=dict)  # chat -> last allocated seq
    cursor: int = 0  # last allocated event-log cursor
    ttl_ms: int = 0  # the lifetime of delivered messages; 0 keeps them forever
    rooms: Rooms = attrs.field(factory=Rooms)
    _sessions_of: dict[str, set[str]] = attrs.field(init=False, factory=dict)  # user -> hashes

    def __attrs_post_init__(self) -> None:
        for token_hash, session in self.sessions.items():
            self._sessions_of.setdefault(session.user, set()).add(token_hash)

    # -- accounts ---------------------------------------------------------------------

    def register(self, name: str, password_hash: str, now: int) -> User:
        key = user_key(name)
        if key in self.users:
            raise errors.UsernameTaken(f"the username {name!r} is taken")
        user = User(name=name, password_hash=password_hash, created_at=now)
        self.users[key] = user
        self.user_states[key] = UserState(joined_general_at=self.heads.get(chats.GENERAL, 0))
        return user

    def unregister(self, user: User) -> None:
        """Undo a registration whose write failed."""
        if self.users.get(user.key) is user:
            del self.users[user.key]
            self.user_states.pop(user.key, None)

    def find_user(self, name: str) -> User | None:
        return self.users.get(user_key(name))

    def require_user(self, name: str) -> User:
        user = self.find_user(name)
        if user is None:
            raise errors.UserNotFound(f"there is no user {name!r}")
        return user

    def add_session(
        self, token_hash: str, user: User, now: int, device: str = DEVICE_DEFAULT
    ) -> Session:
        session = Session(user=user.key, created_at=now, device=device)
        self.put_session(token_hash, session)
        return session

    def put_session(self, token_hash: str, session: Session) -> None:
        self.sessions[token_hash] = session
        self._sessions_of.setdefault(session.user, set()).add(token_hash)

    def remove_session(self, token_hash: str) -> Session | None:
        session = self.sessions.pop(token_hash, None)
        if session is not None:
            mine = self._sessions_of.get(session.user)
            if mine is not None:
                mine.discard(token_hash)
                if not mine:
                    del self._sessions_of[session.user]
        return session

    def sessions_of(self, key: str) -> list[tuple[str, Session]]:
        """A user's sessions as (token hash, session), newest first."""
        found = [
            (h, self.sessions[h]) for h in self._sessions_of.get(key, ()) if h in self.sessions
        ]
        return sorted(found, key=lambda pair: (pair[1].created_at, pair[0]), reverse=True)

    def find_session(self, key: str, public_id: str) -> str | None:
        """The token hash of ``key``'s session with this public id (None for anyone else's)."""
        for token_hash in self._sessions_of.get(key, ()):
            if session_id(token_hash) == public_id:
                return token_hash
        return None

    def session_user(self, token_hash: str) -> User | None:
        session = self.sessions.get(token_hash)
        return None if session is None else self.users.get(session.user)

    # -- per-user state -----------------------------------------------------------------

    def state_of(self, key: str) -> UserState:
        return self.user_states.get(key) or UserState()

    def chats_of(self, key: str) -> list[str]:
        return [chats.GENERAL, *sorted(self.state_of(key).private_chats), *self.rooms.of(key)]

    def can_see(self, key: str, chat: str) -> bool:
        """Whether ``key`` may read ``chat``: it exists, in its one spelling, and has them.

        The one rule of who sees what: every endpoint, paging, ``/connect``, replay and live
        delivery (at the moment of delivery) ask it, directly or through ``visible``."""
        if key not in self.users:
            return False
        if is_room(chat):
            return self.rooms.is_member(chat, key)
        if not chats.is_member(chat, key):
            return False
        parties = chats.private_parties(chat)
        return parties is None or (
            chat == chats.private_chat(*parties)
            and parties[0] != parties[1]
            and all(p in self.users for p in parties)
        )

    def members_of(self, chat: str) -> Collection[str] | None:
        """The user keys a chat's events may concern; None for everyone (the common chat)."""
        if chat == chats.GENERAL:
            return None
        if is_room(chat):
            return self.rooms.members_of(chat)
        parties = chats.private_parties(chat)
        return () if parties is None else set(parties)

    def rate_status(self, key: str, now: int) -> ratelimit.RateStatus:
        return ratelimit.status(self.state_of(key).window, self.rate_policy, now)

    def banned_until(self, key: str, now: int) -> int | None:
        return self.state_of(key).standing.ban_at(now)

    def _check_not_banned(self, key: str, now: int) -> None:
        until = self.banned_until(key, now)
        if until is not None:
            raise errors.Banned(format_ms(until))

    # -- messages -----------------------------------------------------------------------

    def next_cursor(self) -> int:
        self.cursor += 1
        return self.cursor

    def resolve_target(
        self, author: User, to: str | None, chat: str | None
    ) -> tuple[str, User | None]:
        """The chat a send names (``to`` a private recipient, or ``chat`` any chat of the
        author's: exclusive), and the private recipient if it is a private chat."""
        if chat is None:
            if to is None:
                return chats.GENERAL, None
            target = self.require_user(to)
            if target.key == author.key:
                raise errors.InvalidRequest.field("$.to", "you cannot message yourself")
            return chats.private_chat(author.key, target.key), target
        if to is not None:
            raise errors.InvalidRequest.field("$.to", "give either chat or to, not both")
        if not self.can_see(author.key, chat):
            raise errors.ChatNotFound(f"there is no chat {chat!r} you belong to")
        other = chats.other_party(chat, author.key)
        return chat, None if other is None else self.users[other]

    def post_message(
        self,
        author: User,
        text: str,
        to: str | None,
        now: int,
        client_id: str | None = None,
        chat: str | None = None,
        scheduled_at: int | None = None,
        files: tuple[FileRef, ...] = (),
    ) -> tuple[Message, dict[str, UserState]]:
        """Accept a message, or raise. Returns it and the user states it replaced.

        ``to`` names a private recipient; ``chat`` any chat of the author's instead (the two
        are exclusive). The returned states are the *previous* ones, for undo should the
        write fail.
        """
        problem = text_problem(text)
        if problem and not (files and text == ""):  # with files, the text may be empty
            raise errors.InvalidRequest.field("$.text", problem)
        self._check_not_banned(author.key, now)
        chat, target = self.resolve_target(author, to, chat)
        previous: dict[str, UserState] = {}
        if chat == chats.GENERAL and self.rate_policy.enabled:
            state = self.state_of(author.key)
            window = ratelimit.consume(state.window, self.rate_policy, now)
            if window is None:
                current = ratelimit.active_window(state.window, self.rate_policy, now)
                assert current is not None
                reset = current.ends_at(self.rate_policy)
                raise errors.RateLimited(
                    f"at most {self.rate_policy.limit} messages per period in the common "
                    f"chat; the limit resets at {format_ms(reset)}",
                    (reset - now) / 1000,
                )
            previous[author.key] = state
            self.user_states[author.key] = attrs.evolve(state, window=window)
        elif target is not None:
            for key in (author.key, target.key):
                state = self.state_of(key)
                if chat not in state.private_chats:
                    previous.setdefault(key, state)
                    self.user_states[key] = attrs.evolve(
                        state, private_chats=state.private_chats | {chat}
                    )
        recipient = None if target is None else target.name
        return self._post(
            author, text, chat, recipient, now, client_id, previous, scheduled_at, files
        )

    def _post(
        self,
        author: User,
        text: str,
        chat: str,
        recipient: str | None,
        now: int,
        client_id: str | None,
        previous: dict[str, UserState],
        scheduled_at: int | None = None,
        files: tuple[FileRef, ...] = (),
    ) -> tuple[Message, dict[str, UserState]]:
        seq = self.heads.get(chat, 0) + 1
        self.heads[chat] = seq
        cursor = self.next_cursor()
        message = Message(
            id=message_id(cursor),
            chat=chat,
            seq=seq,
            cursor=cursor,
            author=author.name,
            author_key=author.key,
            to=recipient,
            text=text,
            sent_at=now,
            client_id=client_id,
            scheduled_at=scheduled_at,
            files=files,
        )
        previous.setdefault(author.key, self.state_of(author.key))
        self.user_states[author.key] = _with_own(
            self.state_of(author.key), chat, seq, now, self.ttl_ms
        )
        return message, previous

    def restore(self, previous: Mapping[str, UserState]) -> None:
        """Put back user states replaced by an operation whose write failed.

        Read positions are kept as they are now: live delivery may have moved them since.
        """
        for key, old in previous.items():
            self.user_states[key] = attrs.evolve(old, read=self.state_of(key).read)

    def post_comment(
        self, author: User, message: Message, text: str, now: int, client_id: str | None = None
    ) -> tuple[Comment, Event]:
        """Accept a comment on a message the author can see (the caller checked that)."""
        problem = text_problem(text)
        if problem:
            raise errors.InvalidRequest.field("$.text", problem)
        self._check_not_banned(author.key, now)
        cursor = self.next_cursor()
        comment = Comment(
            id=comment_id(cursor),
            message_id=message.id,
            author=author.name,
            text=text,
            sent_at=now,
            client_id=client_id,
        )
        event = Event(cursor=cursor, type=EventType.COMMENT, chat=message.chat, comment=comment)
        return comment, event

    # -- reading ------------------------------------------------------------------------

    def plan_connect(
        self, key: str, committed_heads: Mapping[str, int], history_size: int
    ) -> ConnectPlan:
        """What ``POST /connect`` returns: the seen tail of the common chat and all unread.

        A user who has never polled has seen the common chat up to now (it gets the last N
        messages as history and no common unread) but nothing of its private chats.
        """
        state = self.state_of(key)
        seen = state.read.get(chats.GENERAL)
        general_head = committed_heads.get(chats.GENERAL, 0)
        if seen is None:
            seen = general_head
        history = range(max(1, seen - history_size + 1), seen + 1)
        unread: dict[str, range] = {}
        read_after: dict[str, int] = {}
        for chat in self.chats_of(key):
            head = committed_heads.get(chat, 0)
            start = seen if chat == chats.GENERAL else state.read.get(chat, 0)
            if head > start:
                unread[chat] = range(start + 1, head + 1)
            read_after[chat] = max(head, start)
        return ConnectPlan(history=history, unread=unread, read_after=read_after)

    def mark_read(self, key: str, positions: Mapping[str, int], now: int) -> UserState | None:
        """Raise the user's read positions at ``now``; returns the new state if anything
        moved. Positions never move back."""
        state = self.state_of(key)
        changed = {c: p for c, p in positions.items() if c not in state.read or p > state.read[c]}
        if not changed:
            return None
        own = dict(state.own)
        for chat, position in changed.items():
            if chat in own:
                left = tuple(s for s in own[chat] if s > position)
                if left:
                    own[chat] = left
                else:
                    del own[chat]
        new = attrs.evolve(_read_to(state, changed, now, self.ttl_ms), own=own)
        self.user_states[key] = new
        return new

    # -- lifetimes ----------------------------------------------------------------------

    def expires_at(self, key: str, message: Message) -> int | None:
        """When ``message`` expires for ``key``: None if never, or not yet delivered."""
        if not self.ttl_ms:
            return None
        if message.author_key == key:
            return message.sent_at + self.ttl_ms
        delivered = self.state_of(key).delivered.get(message.chat)
        if delivered is None:
            return None
        if message.seq <= delivered.gone:
            return 0  # long gone
        at = delivered.delivered_at(message.seq)
        return None if at is None else at + self.ttl_ms

    def alive(self, key: str, message: Message, now: int) -> bool:
        """Whether ``message`` has not yet expired for ``key`` (who may see its chat)."""
        expires = self.expires_at(key, message)
        return expires is None or now < expires

    def gone_below(self, key: str, chat: str, now: int) -> int:
        """Every message of ``chat`` at or below this has expired for ``key``."""
        if not self.ttl_ms:
            return 0
        delivered = self.state_of(key).delivered.get(chat)
        return 0 if delivered is None else delivered.pruned(now, self.ttl_ms).gone

    def floor(self, chat: str, now: int) -> int:
        """Messages of ``chat`` at or below this have expired for everyone they concern."""
        members = self.members_of(chat)
        users = self.users if members is None else members
        lowest: int | None = None
        for key in users:
            gone = self.gone_below(key, chat, now)
            if members is None and chat not in self.state_of(key).delivered:
                # Never read the common chat: holds back only what came after it joined.
                gone = self.state_of(key).joined_general_at
            lowest = gone if lowest is None else min(lowest, gone)
        return lowest or 0

    def unread_counts(self, key: str, committed_heads: Mapping[str, int]) -> dict[str, int]:
        """Per chat of the user: messages past its read position, its own not counted.

        The common chat of a user who never polled counts as read up to now (its first
        ``/connect`` shows the recent ones as history, none as unread)."""
        state = self.state_of(key)
        counts: dict[str, int] = {}
        for chat in self.chats_of(key):
            head = committed_heads.get(chat, 0)
            read = state.read.get(chat, head if chat == chats.GENERAL else 0)
            mine = sum(1 for seq in state.own.get(chat, ()) if read < seq <= head)
            counts[chat] = max(0, head - read - mine)
        return counts

    def read_event(self, key: str, chat: str, up_to: int, origin: str | None) -> Event:
        """The ``read`` event that tells the user's other sessions where it read to."""
        return Event(
            cursor=self.next_cursor(),
            type=EventType.READ,
            chat=chat,
            user=key,
            up_to=up_to,
            origin=origin,
        )

    def visible(self, key: str, event: Event, session: str | None = None) -> bool:
        """Whether user ``key`` (reading through ``session``, a public session id) may be
        sent ``event``: the one rule live delivery and replay ask. (A ``comment`` event also
        needs its message ``alive`` for ``key``: delivery asks that too, once it has read the
        message, which the event does not carry.)"""
        if event.user is not None:
            return event.user == key and (event.origin is None or event.origin != session)
        return event.chat is not None and self.can_see(key, event.chat)

    # -- moderation -----------------------------------------------------------------------

    def report(self, reporter: User, target_name: str, now: int) -> ReportResult:
        target = self.require_user(target_name)
        if target.key == reporter.key:
            raise errors.InvalidRequest.field("$.username", "you cannot report yourself")
        state = self.state_of(target.key)
        try:
            outcome = moderation.report(state.standing, reporter.key, self.ban_policy, now)
        except moderation.AlreadyReportedError:
            raise errors.AlreadyReported(
                f"you have already reported {target.name}; you can report again after their "
                "next ban"
            ) from None
        self.user_states[target.key] = attrs.evolve(state, standing=outcome.standing)
        event = None
        if outcome.banned_now:
            event = Event(
                cursor=self.next_cursor(),
                type=EventType.BANNED,
                user=target.key,
                until=outcome.standing.banned_until,
            )
        return ReportResult(
            target=target,
            reports=outcome.reports,
            banned_until=outcome.standing.ban_at(now),
            event=event,
        )

    def lift_ban(self, key: str, now: int) -> Event | None:
        """End a ban whose time has come; returns the "unbanned" event, if one was due."""
        state = self.state_of(key)
        until = state.standing.banned_until
        if until is None or now < until:
            return None
        self.user_states[key] = attrs.evolve(state, standing=moderation.lift(state.standing))
        return Event(cursor=self.next_cursor(), type=EventType.UNBANNED, user=key)

    def expire_window(self, key: str, now: int) -> bool:
        """Forget a rate-limit window whose period has ended; True if one was."""
        state = self.state_of(key)
        if state.window is None or ratelimit.active_window(state.window, self.rate_policy, now):
            return False
        self.user_states[key] = attrs.evolve(state, window=None)
        return True

    def bans(self) -> Iterable[tuple[str, int]]:
        for key, state in self.user_states.items():
            if state.standing.banned_until is not None:
                yield key, state.standing.banned_until

    def windows(self) -> Iterable[tuple[str, int]]:
        for key, state in self.user_states.items():
            if state.window is not None:
                yield key, state.window.ends_at(self.rate_policy)
