"""Rooms: creating them, members, links, join requests and the owner's decisions.

Every change is one commit of the room record (and of new members' read positions) with the
events that tell the people concerned: a room's events go to its members through the chat
(so a member removed a moment ago receives nothing more), and personal events to the one
person concerned (the owner for a request; the requester for a refusal; whoever left).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import attrs

from trio_chat import errors
from trio_chat.domain import accounts, rooms
from trio_chat.domain.models import Event, EventType, RoomInfo, User
from trio_chat.domain.rooms import Link, Room
from trio_chat.service.core import Core, writes
from trio_chat.storage import Batch, Note
from trio_chat.storage.base import JOIN_FAILED

log = logging.getLogger("trio_chat.service")

JOIN_FAILURE_LIMIT = 10  # failed joins per user per minute, so links cannot be guessed
JOIN_FAILURE_WINDOW_MS = 60_000


@attrs.frozen
class RoomView:
    room: RoomInfo
    requests: list[tuple[str, int]] | None  # (username, requested at), for the owner only


class RoomManagement:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.state = core.state
        self.rooms = core.state.rooms
        self.join_failures = accounts.FailureWindow(
            JOIN_FAILURE_LIMIT, JOIN_FAILURE_WINDOW_MS, max_keys=100_000
        )
        core.note_hooks.append(self._take_note)

    def _take_note(self, note: Note) -> None:
        """Another process's failed join: it counts here too."""
        if note.kind == JOIN_FAILED:
            self.join_failures.record_failure(note.user, note.at)

    # -- reading ------------------------------------------------------------------------

    def info(self, room: Room) -> RoomInfo:
        names = self.state.users
        return RoomInfo(
            id=room.id,
            name=room.name,
            owner=names[room.owner].name,
            members=tuple(sorted(names[m].name for m in room.members if m in names)),
            created_at=room.created_at,
        )

    def mine(self, user: User) -> list[RoomInfo]:
        return [self.info(self.rooms.rooms[r]) for r in self.rooms.of(user.key)]

    def show(self, user: User, room_id: str) -> RoomView:
        room = self.rooms.visible(room_id, user.key)
        requests = None
        if room.owner == user.key:
            requests = [
                (self.state.users[u].name, at)
                for u, at in sorted(room.requests.items(), key=lambda r: r[1])
            ]
        return RoomView(self.info(room), requests)

    def links(self, user: User, room_id: str) -> list[Link]:
        room = self.rooms.owned(room_id, user.key)
        return self.rooms.live_links(room, self.core.now())

    def link_url(self, token: str) -> str:
        return f"{self.core.public_url}/join/{token}"

    # -- changing -----------------------------------------------------------------------

    @writes
    async def create(self, user: User, name: str) -> RoomInfo:
        room = self.rooms.create(user.key, name, self.core.now())
        await self._commit(room, None, [self._joined(room, user.key)])
        log.info("room created room=%s owner=%s", room.id, user.name)
        return self.info(room)

    @writes
    async def add_member(self, owner: User, room_id: str, name: str) -> RoomInfo:
        room = self.rooms.owned(room_id, owner.key)
        target = self.state.require_user(name)
        updated = self.rooms.add_member(room, target.key)
        await self._commit(updated, room, [self._joined(updated, target.key)], joined=target.key)
        return self.info(updated)

    @writes
    async def remove_member(self, actor: User, room_id: str, name: str) -> None:
        target = self.state.find_user(name)
        room, updated = self.rooms.remove_by(
            room_id, actor.key, None if target is None else target.key
        )
        assert target is not None
        await self._commit(updated, room, self._left(room, [target.key]))

    @writes
    async def delete(self, owner: User, room_id: str) -> None:
        room = self.rooms.owned(room_id, owner.key)
        self.rooms.remove(room.id)
        events = self._left(room, sorted(room.members), tell_room=False)
        await self.core.commit(
            Batch(rooms={room.id: None}),
            events=events,
            undo=lambda: self.rooms.restore(room.id, room),
        )
        log.info("room deleted room=%s", room.id)

    @writes
    async def create_link(
        self, owner: User, room_id: str, lifetime_ms: int, max_uses: int | None
    ) -> rooms.NewLink:
        room = self.rooms.owned(room_id, owner.key)
        updated, new = self.rooms.create_link(room, self.core.now(), lifetime_ms, max_uses)
        await self._commit(updated, room, [])
        return new

    @writes
    async def revoke_link(self, owner: User, room_id: str, token_or_id: str) -> None:
        room = self.rooms.owned(room_id, owner.key)
        updated = self.rooms.revoke_link(room, token_or_id)
        await self._commit(updated, room, [])

    @writes
    async def join(self, user: User, token_or_url: str) -> RoomInfo:
        """File a request to join through a link: pending until the owner decides."""
        now = self.core.now()
        wait = self.join_failures.retry_after_ms(user.key, now)
        if wait > 0:
            raise errors.TooManyAttempts(
                "too many joins with links that were not valid; try again later", wait / 1000
            )
        token = token_or_url.strip().rsplit("/join/", 1)[-1].split("?")[0].split("#")[0]
        try:
            room, link = self.rooms.find_link(token, now)
        except errors.LinkNotFound:
            self.join_failures.record_failure(user.key, now)
            await self.core.share(Note(JOIN_FAILED, user.key, at=now))
            raise
        updated, new = self.rooms.request(room, link, user.key, now)
        if new:
            event = Event(
                cursor=self.state.next_cursor(),
                type=EventType.JOIN_REQUEST,
                user=room.owner,
                room=room.id,
                username=user.name,
            )
            await self._commit(updated, room, [event])
        return self.info(updated)

    @writes
    async def decide(self, owner: User, room_id: str, name: str, approve: bool) -> RoomInfo:
        room = self.rooms.owned(room_id, owner.key)
        requester = self.state.find_user(name)
        if requester is None:
            raise errors.RequestNotFound("there is no pending request from that user")
        updated = self.rooms.decide(room, requester.key, approve)
        if approve:
            events = [self._joined(updated, requester.key)]
            await self._commit(updated, room, events, joined=requester.key)
        else:
            refused = Event(
                cursor=self.state.next_cursor(),
                type=EventType.JOIN_REFUSED,
                user=requester.key,
                room=room.id,
            )
            await self._commit(updated, room, [refused])
        return self.info(updated)

    # -- helpers --------------------------------------------------------------------------

    def _joined(self, room: Room, key: str) -> Event:
        """To the room (the new member included): who joined, and the room as it is now."""
        return Event(
            cursor=self.state.next_cursor(),
            type=EventType.ROOM_JOINED,
            chat=room.id,
            room=room.id,
            room_info=self.info(room),
            username=self.state.users[key].name,
        )

    def _left(self, room: Room, keys: Sequence[str], *, tell_room: bool = True) -> list[Event]:
        """To each one who left (personally: they can no longer see the room's events), and
        to the members who stay."""
        events = []
        for key in keys:
            name = self.state.users[key].name
            events.append(
                Event(
                    cursor=self.state.next_cursor(),
                    type=EventType.ROOM_LEFT,
                    user=key,
                    room=room.id,
                    username=name,
                )
            )
            if tell_room:
                events.append(
                    Event(
                        cursor=self.state.next_cursor(),
                        type=EventType.ROOM_LEFT,
                        chat=room.id,
                        room=room.id,
                        username=name,
                    )
                )
        return events

    async def _commit(
        self, room: Room, previous: Room | None, events: list[Event], *, joined: str | None = None
    ) -> None:
        """Commit the room as it is now; a new member has read the room up to now (the whole
        history is theirs to page through, not a flood of unread)."""
        batch = Batch(rooms={room.id: room})
        before = None
        if joined is not None:
            before = self.state.state_of(joined)
            head = self.core.committed_heads.get(room.id, 0)
            moved = self.state.mark_read(joined, {room.id: head}, self.core.now())
            if moved is not None:
                batch.user_states[joined] = moved

        def undo() -> None:
            self.rooms.restore(room.id, previous)
            if joined is not None and before is not None:
                self.state.user_states[joined] = before

        await self.core.commit(batch, events=events, undo=undo)
