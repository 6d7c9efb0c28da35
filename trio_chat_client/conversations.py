"""The user's conversations: the common chat, each private chat, each room. Pure: no I/O.

Every message belongs to one conversation, named by its chat id (``general``, ``dm:a:b``, and
later ``room:<id>``): a room is one more conversation, nothing else changes. A conversation keeps
the ids of the messages it has shown in order, so that it can count what the user has not looked
at yet (unread marks), clear those marks when another device reports it read up to a message
(the ``read`` event), and page back to older messages (``before`` the oldest one shown).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import attrs

from .models import GENERAL, Message

__all__ = ["ROOM_PREFIX", "Conversation", "Conversations", "dm_chat_id"]

ROOM_PREFIX = "room:"


def dm_chat_id(a: str, b: str) -> str:
    """The private chat of two users, as the server names it (API.md §3)."""
    x, y = sorted((a.lower(), b.lower()))
    return f"dm:{x}:{y}"


@attrs.define
class Conversation:
    id: str
    title: str
    peer: str | None = None  # the other user of a private chat
    # Message ids shown, oldest first, and whether each came from someone else.
    ids: list[str] = attrs.Factory(list)
    from_others: dict[str, bool] = attrs.Factory(dict)
    unread: int = 0
    alert: bool = False  # an unread private message or mention of the user's name
    history_loaded: bool = False  # its recent messages were fetched (or came with /connect)
    at_start: bool = False  # paging back found nothing older: this is the whole conversation
    gone: bool = False  # a room the user is no longer in: kept on screen, nothing can be sent

    @property
    def is_room(self) -> bool:
        return self.id.startswith(ROOM_PREFIX)

    @property
    def oldest(self) -> str | None:
        return self.ids[0] if self.ids else None

    @property
    def newest(self) -> str | None:
        return self.ids[-1] if self.ids else None


class Conversations:
    """All conversations, in the order they were opened, and the one in view."""

    def __init__(self, me: str) -> None:
        self.me = me
        self._by_id: dict[str, Conversation] = {}
        self._chat_of_message: dict[str, str] = {}
        self.focused: str = GENERAL
        # Set when every message is shown as it comes (a line console): nothing is unread.
        self.all_visible = False
        self.open(GENERAL)

    def __iter__(self) -> Iterator[Conversation]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, chat: str) -> bool:
        return chat in self._by_id

    def get(self, chat: str) -> Conversation:
        return self._by_id[chat]

    @property
    def current(self) -> Conversation:
        return self._by_id[self.focused]

    def index(self, chat: str) -> int:
        return list(self._by_id).index(chat)

    def at(self, position: int) -> Conversation | None:
        ordered = list(self._by_id.values())
        return ordered[position] if 0 <= position < len(ordered) else None

    def open(self, chat: str, peer: str | None = None) -> Conversation:
        """The conversation of ``chat``, created (at the end of the list) if new."""
        found = self._by_id.get(chat)
        if found is None:
            if chat == GENERAL:
                title = "general"
            elif chat.startswith("dm:"):
                if peer is None:
                    names = chat.split(":")[1:]
                    others = [n for n in names if n != self.me.lower()]
                    peer = others[0] if others else names[0]
                title = peer
            else:
                title = chat
            found = Conversation(chat, title, peer)
            self._by_id[chat] = found
        elif peer is not None and found.peer is not None and found.peer.lower() == peer.lower():
            # The server's spelling of a name wins over what was typed in /query.
            found.peer = found.title = peer
        return found

    def open_private(self, user: str) -> Conversation:
        return self.open(dm_chat_id(self.me, user), peer=user)

    def open_room(self, room_id: str, name: str) -> Conversation:
        """A room's conversation, titled by the room's name (which may change)."""
        conversation = self.open(room_id)
        conversation.title = name
        conversation.gone = False
        return conversation

    def leave(self, chat: str) -> Conversation | None:
        """The user is no longer in the room ``chat``: its view stays, marked gone."""
        conversation = self._by_id.get(chat)
        if conversation is not None:
            conversation.gone = True
            conversation.unread = 0
            conversation.alert = False
        return conversation

    def find(self, target: str) -> list[Conversation]:
        """The conversations ``target`` may name: an id, a title (any capitalisation; a room's
        name, the other user of a private chat, ``general``), else a title it begins.

        Several are returned when the name is ambiguous; the caller says so.
        """
        wanted = target.strip().lower()
        if wanted in ("general", "common", "the common chat"):
            wanted = "general"
        every = list(self)
        rules: list[Callable[[Conversation], bool]] = [
            lambda c: c.id.lower() == wanted,
            lambda c: c.title.lower() == wanted,
            lambda c: c.title.lower().startswith(wanted),
            lambda c: wanted.startswith(ROOM_PREFIX) and c.id.lower().startswith(wanted),
        ]
        for rule in rules:
            found = [c for c in every if rule(c)]
            if found:
                return found
        return []

    def chat_of(self, message: Message) -> str:
        if message.chat:
            return message.chat
        return dm_chat_id(message.author, message.to) if message.to else GENERAL

    def chat_of_message_id(self, message_id: str) -> str | None:
        return self._chat_of_message.get(message_id)

    def is_mine(self, author: str) -> bool:
        return author.lower() == self.me.lower()

    def add(self, message: Message, *, alert: bool = False, older: bool = False) -> bool:
        """Record a message in its conversation; ``False`` if it was already there.

        A message from someone else that arrives in a conversation not in view is unread.
        ``older``: a page of history, put before what is shown and never unread.
        """
        chat = self.chat_of(message)
        peer = None
        if chat.startswith("dm:"):
            peer = message.to if self.is_mine(message.author) else message.author
        conversation = self.open(chat, peer)
        if message.id in conversation.from_others:
            return False
        self._chat_of_message[message.id] = chat
        other = not self.is_mine(message.author)
        conversation.from_others[message.id] = other
        if older:
            conversation.ids.insert(0, message.id)
            return True
        conversation.ids.append(message.id)
        if other and chat != self.focused and not self.all_visible:
            conversation.unread += 1
            conversation.alert = conversation.alert or alert
        return True

    def add_page(self, chat: str, messages: list[Message]) -> list[Message]:
        """Put an older page (oldest first) before what ``chat`` shows; returns the new ones."""
        new = [m for m in reversed(messages) if self.add(m, older=True)]
        new.reverse()
        return new

    def focus(self, chat: str) -> Conversation:
        """Bring ``chat`` into view: its unread marks are cleared."""
        conversation = self.open(chat)
        self.focused = chat
        conversation.unread = 0
        conversation.alert = False
        return conversation

    def read_up_to(self, chat: str, up_to: str) -> bool:
        """Another device read ``chat`` up to message ``up_to``: recount its unread marks."""
        conversation = self._by_id.get(chat)
        if conversation is None or up_to not in conversation.from_others:
            return False
        after = conversation.ids[conversation.ids.index(up_to) + 1 :]
        unread = sum(1 for mid in after if conversation.from_others[mid])
        # Marks only ever go down here: the messages after up_to that we counted stay counted.
        unread = min(unread, conversation.unread)
        changed = unread != conversation.unread
        conversation.unread = unread
        if unread == 0:
            conversation.alert = False
        return changed

    def unread_total(self) -> int:
        return sum(c.unread for c in self)
