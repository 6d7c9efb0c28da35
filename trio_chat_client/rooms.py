"""Rooms in the interactive chat (API.md §13): the commands, and the room events shown live.

A room is one more conversation: its view is titled by the room's name, plain lines typed there
go to it, ``/switch`` brings it into view. What the room commands do to the room in view is
confirmed by a notice; the live events that report the same change (``room_joined`` after
``/invite`` …) are then not shown a second time. Events about other people's doings are
notices in the room's view; what concerns the user (a request to decide on, being let in or
turned away, being removed) is a notice in the view they are looking at.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import TYPE_CHECKING

from .commands import (
    Command,
    CreateRoom,
    Decide,
    DeleteRoom,
    Invite,
    Join,
    Kick,
    Leave,
    ListLinks,
    ListRooms,
    MakeLink,
    Requests,
    RevokeLink,
    RoomInfo,
    Switch,
)
from .conversations import Conversation
from .errors import CommandError
from .models import (
    GENERAL,
    Event,
    JoinRefusedEvent,
    JoinRequestEvent,
    Room,
    RoomJoinedEvent,
    RoomLeftEvent,
    by_id,
)
from .render import Line, clean, format_clock, format_duration

if TYPE_CHECKING:
    from .session import ChatSession

__all__ = ["ROOM_COMMANDS", "NotInRoomError", "RoomCommands"]

ROOM_COMMANDS = (
    ListRooms,
    CreateRoom,
    RoomInfo,
    DeleteRoom,
    Invite,
    MakeLink,
    ListLinks,
    RevokeLink,
    Join,
    Requests,
    Decide,
    Leave,
    Kick,
    Switch,
)


class NotInRoomError(CommandError):
    """A room command typed where no room is in view."""


class RoomCommands:
    def __init__(self, session: ChatSession) -> None:
        self.session = session
        self.rooms: dict[str, Room] = {}  # the user's rooms, by id, as last heard of
        self._asked: dict[str, str] = {}  # rooms we asked to join: id → name
        self._requests: dict[str, str] = {}  # who asked to join one of our rooms: name → room id
        # Changes we made ourselves, whose events are then not shown again: (kind, room, user).
        self._expected: set[tuple[str, str, str]] = set()
        # Names of rooms being made here: their first event may come before the answer does.
        self._creating: set[str] = set()

    # -- what the rest of the session asks ---------------------------------------------------

    async def load(self) -> None:
        """Learn the user's rooms (their names) and open a conversation for each."""
        for room in await self.session.api.rooms():
            self._known(room)

    def name_of(self, chat: str) -> str | None:
        room = self.rooms.get(chat)
        return room.name if room is not None else None

    def completions(self, word: str, command: str) -> list[str] | None:
        """What the argument of ``command`` may be completed to; ``None``: a user's name."""
        bare = word.lower()
        if command == "/switch":
            titles = [c.title for c in self.session.views]
            return [t for t in titles if t.lower().startswith(bare)]
        if command in ("/approve", "/refuse"):
            names = [n for n in self._requests if n.startswith(bare)]
            return sorted(names) or None
        return None

    # -- commands ---------------------------------------------------------------------------

    async def execute(self, command: Command) -> None:
        s = self.session
        if isinstance(command, ListRooms):
            await self._list()
        elif isinstance(command, CreateRoom):
            self._creating.add(command.name.lower())
            try:
                room = await s.api.create_room(command.name)
            finally:
                self._creating.discard(command.name.lower())
            self._known(room)
            s.focus(room.id)
            s.notice(
                f"made the room {clean(room.name)}; you own it and talk there now. /invite USER "
                "adds someone, /link makes an invite link"
            )
        elif isinstance(command, Switch):
            self._switch(command.target)
        elif isinstance(command, Join):
            asked = await s.api.join(command.token)
            self._asked[asked.room] = asked.name
            s.notice(
                f"asked to join {clean(asked.name)}; its owner decides, and you will be told here"
            )
        else:
            await self._in_room(command, self._current_room(command))

    async def _in_room(self, command: Command, room: Conversation) -> None:
        s = self.session
        name = clean(room.title)
        if isinstance(command, RoomInfo):
            details = await s.api.room(room.id)
            self._known(details.room)
            members = ", ".join(clean(m) for m in details.room.members)
            s.notice(
                f"{clean(details.room.name)} ({details.room.id}): owner "
                f"{clean(details.room.owner)}; {len(details.room.members)} member(s): {members}"
            )
        elif isinstance(command, Invite):
            await self._expecting(
                ("joined", room.id, command.user.lower()),
                s.api.add_member(room.id, command.user),
            )
            s.notice(f"added {clean(command.user)} to {name}")
        elif isinstance(command, Kick):
            await self._expecting(
                ("left", room.id, command.user.lower()),
                s.api.remove_member(room.id, command.user),
            )
            s.notice(f"removed {clean(command.user)} from {name}")
        elif isinstance(command, Leave):
            await self._expecting(
                ("left", room.id, s.me.lower()), s.api.remove_member(room.id, s.me)
            )
            self._gone(room.id)
            s.notice(f"you left {name}; what was said there stays in view, read-only")
        elif isinstance(command, DeleteRoom):
            if command.name.lower() != room.title.lower():
                s.error(
                    f"the room in view is {name}: type /room delete {name} to delete it; "
                    "nothing was deleted"
                )
                return
            await self._expecting(("left", room.id, s.me.lower()), s.api.delete_room(room.id))
            self._gone(room.id)
            s.notice(f"deleted the room {name}; its members were told")
        elif isinstance(command, MakeLink):
            await self._link(room, command.expires_in)
        elif isinstance(command, ListLinks):
            await self._links(room)
        elif isinstance(command, RevokeLink):
            await self._unlink(room, command.ref)
        elif isinstance(command, Requests):
            details = await s.api.room(room.id)
            if details.requests is None:
                s.error("only the room's owner sees who asks to join")
                return
            if not details.requests:
                s.notice(f"nobody is waiting to join {name}")
                return
            now = s.now()
            s.notice(f"waiting to join {name} (oldest first):")
            for request in details.requests:
                self._requests[request.username.lower()] = room.id
                since = format_clock(request.requested_at, now, s.tz)
                s.notice(f"  {clean(request.username)}  asked at {since}")
            s.notice("/approve USER lets one in, /refuse USER turns one away")
        elif isinstance(command, Decide):
            user = command.user
            if command.approve:
                await self._expecting(
                    ("joined", room.id, user.lower()), s.api.decide(room.id, user, True)
                )
                s.notice(f"let {clean(user)} into {name}")
            else:
                await s.api.decide(room.id, user, False)
                s.notice(f"turned {clean(user)} away from {name}; they are told")
            self._requests.pop(user.lower(), None)

    async def _expecting(self, key: tuple[str, str, str], call: Awaitable[object]) -> None:
        """Await ``call``: a change of ours, whose event is then not shown again."""
        self._expected.add(key)
        try:
            await call
        except BaseException:
            self._expected.discard(key)
            raise

    def _current_room(self, command: Command) -> Conversation:
        s = self.session
        current = s.views.current
        if isinstance(command, Decide) and not current.is_room:
            # Deciding on a request just announced, from wherever the user is looking.
            room_id = self._requests.get(command.user.lower())
            if room_id is not None and room_id in s.views:
                return s.views.get(room_id)
        if not current.is_room:
            raise NotInRoomError(
                "the conversation in view is not a room: /switch to one first (/rooms lists them)"
            )
        if current.gone:
            raise NotInRoomError(f"you are no longer in {clean(current.title)}")
        return current

    async def _list(self) -> None:
        s = self.session
        found = await s.api.rooms()
        for room in found:
            self._known(room)
        if not found:
            s.notice("you are in no room; /room new NAME makes one, /join LINK asks into one")
            return
        s.notice(f"your rooms ({len(found)}):")
        for room in found:
            position = s.views.index(room.id) + 1
            owner = "you own it" if s.is_mine(room.owner) else f"owner {clean(room.owner)}"
            mark = "  ← in view" if room.id == s.views.focused else ""
            s.notice(
                f"  {position}:{clean(room.name)}  {owner}, {len(room.members)} member(s)  "
                f"{room.id}{mark}"
            )
        s.notice("/switch NAME talks in one")

    def _switch(self, target: str) -> None:
        s = self.session
        found = s.views.find(target)
        if not found:
            s.error(
                f"there is no conversation called {clean(target)!r} (/rooms lists your rooms; "
                "/query USER talks with someone)"
            )
            return
        if len(found) > 1:
            names = ", ".join(f"{clean(c.title)} ({c.id})" for c in found)
            s.error(f"{clean(target)!r} could be any of {names}: give more of the name, or the id")
            return
        (conversation,) = found
        s.focus(conversation.id)
        if conversation.id == GENERAL:
            where = "the common chat"
        elif conversation.is_room:
            where = f"the room {clean(conversation.title)}"
        else:
            where = f"your private chat with {clean(conversation.title)}"
        gone = " (you are no longer in it: read-only)" if conversation.gone else ""
        s.notice(f"talking in {where}{gone}")

    async def _link(self, room: Conversation, expires_in: timedelta | None) -> None:
        s = self.session
        seconds = None if expires_in is None else str(int(expires_in.total_seconds()))
        link = await s.api.create_link(room.id, seconds)
        now = s.now()
        until = format_clock(link.expires_at, now, s.tz)
        left = format_duration((link.expires_at - now).total_seconds())
        uses = "" if link.uses_left is None else f", for {link.uses_left} use(s)"
        s.notice(
            f"invite link to {clean(room.title)}, valid until {until} (in {left}){uses}; whoever "
            "uses it (/join LINK) asks to join, and you decide:"
        )
        s.notice(f"  {clean(link.url or link.token or '')}")

    async def _links(self, room: Conversation) -> None:
        s = self.session
        found = await s.api.links(room.id)
        name = clean(room.title)
        if not found:
            s.notice(f"{name} has no invite link still valid; /link makes one")
            return
        now = s.now()
        s.notice(f"invite links to {name} still valid ({len(found)}), soonest to end first:")
        for link in sorted(found, key=lambda lk: lk.expires_at):
            until = format_clock(link.expires_at, now, s.tz)
            left = format_duration((link.expires_at - now).total_seconds())
            uses = "" if link.uses_left is None else f", {link.uses_left} use(s) left"
            s.notice(f"  {clean(link.id)}  valid until {until} (in {left}){uses}")
        s.notice("/unlink ID stops one (the link itself is shown only once, when made)")

    async def _unlink(self, room: Conversation, ref: str) -> None:
        s = self.session
        found = await s.api.links(room.id)
        matches = by_id(found, ref)
        if len(matches) != 1:
            problem = "no invite link" if not matches else "more than one invite link"
            s.error(f"{clean(room.title)} has {problem} matching {clean(ref)!r}; /links lists them")
            return
        (link,) = matches
        await s.api.revoke_link(room.id, link.id)
        s.notice(
            f"stopped the invite link {clean(link.id)} to {clean(room.title)}: it lets nobody "
            "ask to join any more"
        )

    # -- events -----------------------------------------------------------------------------

    def on_event(self, event: Event) -> bool:
        """Show a room event; ``False`` if it is not one."""
        s = self.session
        if isinstance(event, JoinRequestEvent):
            name = self._label(event.room)
            self._requests[event.username.lower()] = event.room
            who = clean(event.username)
            s.console.show(
                Line(
                    f"* {who} asks to join {name}: /approve {who} or /refuse {who}",
                    "notice",
                    alert=True,
                )
            )
        elif isinstance(event, RoomJoinedEvent):
            self._joined(event)
        elif isinstance(event, JoinRefusedEvent):
            asked = self._asked.pop(event.room, None)
            room = clean(asked) if asked is not None else self._label(event.room)
            s.notice(f"the owner of {room} turned down your request to join")
        elif isinstance(event, RoomLeftEvent):
            self._left(event)
        else:
            return False
        s.console.changed()
        return True

    def _joined(self, event: RoomJoinedEvent) -> None:
        s = self.session
        room, who = event.room, event.username
        known = room.id in self.rooms and not s.views.get(room.id).gone
        conversation = self._known(room)
        if ("joined", room.id, who.lower()) in self._expected:
            self._expected.discard(("joined", room.id, who.lower()))
            return
        if not s.is_mine(who):
            s.info(f"* {clean(who)} joined {clean(room.name)}", room.id)
            return
        if known or (s.is_mine(room.owner) and room.name.lower() in self._creating):
            return
        position = s.views.index(room.id) + 1
        if room.id in self._asked:
            self._asked.pop(room.id)
            how = f"your request to join {clean(room.name)} was approved"
        elif s.is_mine(room.owner):
            how = f"you made the room {clean(room.name)} (on another device)"
        else:
            how = f"{clean(room.owner)} added you to the room {clean(room.name)}"
        where = "" if s.console.shows_everything else f"; it is view {position}"
        s.notice(f"{how}{where} (/switch {clean(conversation.title)} talks there)")

    def _left(self, event: RoomLeftEvent) -> None:
        s = self.session
        who = event.username
        key = ("left", event.room, who.lower())
        name = self._label(event.room)
        if key in self._expected:
            self._expected.discard(key)
            if s.is_mine(who):
                self._gone(event.room)
            return
        if not s.is_mine(who):
            if event.room in s.views:
                s.info(f"* {clean(who)} is no longer in {name}", event.room)
            return
        self._gone(event.room)
        s.notice(
            f"you are no longer in {name}: its owner removed you or deleted it (what was "
            "said there stays in view, read-only)"
        )

    # -- state ------------------------------------------------------------------------------

    def _known(self, room: Room) -> Conversation:
        self.rooms[room.id] = room
        return self.session.views.open_room(room.id, room.name)

    def _gone(self, room_id: str) -> None:
        self.rooms.pop(room_id, None)
        self.session.views.leave(room_id)
        self.session.console.changed()

    def _label(self, room_id: str) -> str:
        name = self.name_of(room_id) or self._asked.get(room_id)
        if name is None and room_id in self.session.views:
            name = self.session.views.get(room_id).title
        return clean(name) if name is not None else room_id
