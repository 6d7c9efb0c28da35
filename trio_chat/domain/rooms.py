"""Rooms: private chats of many members, joined by invitation or by link and approval.

Theory of operation
-------------------
A room is a chat (its id is ``room:<random>``) with an owner and an explicit member list.
Membership is the only way in: the owner adds a user at once; anyone else needs a link *and*
the owner's approval. A link is a random 192-bit token; the room keeps only its SHA-256 (so a
copied data directory admits nobody), an expiry and an optional use count. Using a link does
not admit: it files a pending request, which the owner approves or refuses.

``Rooms`` holds every room and who is in which; it validates and changes them synchronously,
replacing a ``Room`` record whole on every change (so undo is putting the old one back). Who
may see a room is decided by ``is_member`` alone, which ``ChatState.can_see`` asks.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator, Mapping

import attrs

from trio_chat import errors

ROOM_PREFIX = "room:"
NAME_MAX = 100
LINK_MAX_LIFETIME_MS = 30 * 24 * 3600 * 1000
LINK_DEFAULT_LIFETIME_MS = 7 * 24 * 3600 * 1000
LINK_MAX_USES = 1000
LINKS_PER_ROOM = 100  # live links a room may have at once


@attrs.frozen
class Link:
    id: str  # public: names the link in lists and to revoke it (derived from the hash)
    token_hash: str
    created_at: int
    expires_at: int
    uses_left: int | None  # None: unlimited

    def live(self, now: int) -> bool:
        return now < self.expires_at and (self.uses_left is None or self.uses_left > 0)


@attrs.frozen
class Room:
    id: str
    name: str
    owner: str  # user key
    members: frozenset[str]  # user keys, the owner included
    created_at: int
    links: tuple[Link, ...] = ()
    requests: Mapping[str, int] = attrs.field(factory=dict)  # user key -> requested at


@attrs.frozen
class NewLink:
    """A link as its owner gets it once: with the token, which is not kept."""

    link: Link
    token: str


def is_room(chat: str) -> bool:
    return chat.startswith(ROOM_PREFIX)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def link_id(hashed: str) -> str:
    return "l" + hashlib.sha256(b"link-id:" + hashed.encode("ascii")).hexdigest()[:16]


def name_problem(name: str) -> str | None:
    if not 1 <= len(name.strip()) <= NAME_MAX or len(name) > NAME_MAX or not name.isprintable():
        return f"name must be 1 to {NAME_MAX} printable characters"
    return None


@attrs.define
class Rooms:
    rooms: dict[str, Room] = attrs.field(factory=dict)
    _of: dict[str, set[str]] = attrs.field(init=False, factory=dict)  # user key -> room ids
    _links: dict[str, str] = attrs.field(init=False, factory=dict)  # token hash -> room id

    def __attrs_post_init__(self) -> None:
        for room in self.rooms.values():
            self._index(None, room)

    # -- reading ------------------------------------------------------------------------

    def is_member(self, room_id: str, key: str) -> bool:
        room = self.rooms.get(room_id)
        return room is not None and key in room.members

    def of(self, key: str) -> list[str]:
        """The ids of the rooms ``key`` is a member of, sorted."""
        return sorted(self._of.get(key, ()))

    def members_of(self, room_id: str) -> frozenset[str]:
        room = self.rooms.get(room_id)
        return frozenset() if room is None else room.members

    def visible(self, room_id: str, key: str) -> Room:
        """The room, for a member; 404 as if it did not exist for anyone else."""
        room = self.rooms.get(room_id)
        if room is None or key not in room.members:
            raise errors.ChatNotFound(f"there is no room {room_id!r} you belong to")
        return room

    def owned(self, room_id: str, key: str) -> Room:
        room = self.visible(room_id, key)
        if room.owner != key:
            raise errors.NotOwner("only the room's owner may do that")
        return room

    def live_links(self, room: Room, now: int) -> list[Link]:
        return [link for link in room.links if link.live(now)]

    def __iter__(self) -> Iterator[Room]:
        return iter(self.rooms.values())

    # -- changing: each returns the room as it was (None if new), for undo ---------------

    def put(self, room: Room) -> Room | None:
        """Store ``room`` (replacing the one of its id); returns the previous one."""
        previous = self.rooms.get(room.id)
        self.rooms[room.id] = room
        self._index(previous, room)
        return previous

    def remove(self, room_id: str) -> Room | None:
        previous = self.rooms.pop(room_id, None)
        if previous is not None:
            self._index(previous, None)
        return previous

    def restore(self, room_id: str, previous: Room | None) -> None:
        if previous is None:
            self.remove(room_id)
        else:
            self.put(previous)

    def create(self, owner: str, name: str, now: int) -> Room:
        if problem := name_problem(name):
            raise errors.InvalidRequest.field("$.name", problem)
        room = Room(
            id=ROOM_PREFIX + secrets.token_hex(8),
            name=name,
            owner=owner,
            members=frozenset({owner}),
            created_at=now,
        )
        self.put(room)
        return room

    def add_member(self, room: Room, key: str) -> Room:
        if key in room.members:
            raise errors.AlreadyMember("that user is already a member of this room")
        requests = {u: t for u, t in room.requests.items() if u != key}
        updated = attrs.evolve(room, members=room.members | {key}, requests=requests)
        self.put(updated)
        return updated

    def remove_by(self, room_id: str, actor: str, key: str | None) -> tuple[Room, Room]:
        """``actor`` removes ``key`` (the owner anyone, a member itself: leaving). Returns the
        room before and after. ``key`` None: no such user."""
        room = self.visible(room_id, actor)
        if key != actor and room.owner != actor:
            raise errors.NotOwner("only the room's owner may remove others")
        if key is None:
            raise errors.UserNotFound("there is no such member of this room")
        return room, self.remove_member(room, key)

    def remove_member(self, room: Room, key: str) -> Room:
        if key == room.owner:
            raise errors.OwnerCannotLeave("the owner cannot leave the room; delete it instead")
        if key not in room.members:
            raise errors.UserNotFound("that user is not a member of this room")
        updated = attrs.evolve(room, members=room.members - {key})
        self.put(updated)
        return updated

    def create_link(
        self, room: Room, now: int, lifetime_ms: int, max_uses: int | None
    ) -> tuple[Room, NewLink]:
        if not 0 < lifetime_ms <= LINK_MAX_LIFETIME_MS:
            raise errors.InvalidRequest.field(
                "$.expires_in", "must be more than 0 and at most 30 days"
            )
        if max_uses is not None and not 1 <= max_uses <= LINK_MAX_USES:
            raise errors.InvalidRequest.field(
                "$.max_uses", f"must be from 1 to {LINK_MAX_USES}, or absent for no limit"
            )
        live = self.live_links(room, now)
        if len(live) >= LINKS_PER_ROOM:
            raise errors.InvalidRequest(
                f"a room has at most {LINKS_PER_ROOM} live links; revoke some first"
            )
        token = secrets.token_urlsafe(24)
        hashed = token_hash(token)
        link = Link(link_id(hashed), hashed, now, now + lifetime_ms, max_uses)
        updated = attrs.evolve(room, links=(*live, link))  # expired ones are dropped here
        self.put(updated)
        return updated, NewLink(link, token)

    def revoke_link(self, room: Room, token_or_id: str) -> Room:
        hashed = token_hash(token_or_id)
        kept = tuple(
            link
            for link in room.links
            if link.id != token_or_id and not hmac.compare_digest(link.token_hash, hashed)
        )
        if len(kept) == len(room.links):
            raise errors.LinkNotFound("there is no such link in this room")
        updated = attrs.evolve(room, links=kept)
        self.put(updated)
        return updated

    def find_link(self, token: str, now: int) -> tuple[Room, Link]:
        """The room and live link a token opens; 404 alike for unknown, revoked, expired or
        used-up tokens."""
        hashed = token_hash(token)
        # Looked up by the token's hash: what the lookup's timing could tell is about a hash
        # the guesser cannot steer, so it tells nothing about any real token.
        room = self.rooms.get(self._links.get(hashed, ""))
        if room is not None:
            for link in room.links:
                if hmac.compare_digest(link.token_hash, hashed) and link.live(now):
                    return room, link
        raise errors.LinkNotFound("this link is not valid (unknown, revoked, expired or used up)")

    def request(self, room: Room, link: Link, key: str, now: int) -> tuple[Room, bool]:
        """File ``key``'s request to join through ``link``. Returns the room and whether the
        request is new (a repeat changes nothing and uses nothing)."""
        if key in room.members:
            raise errors.AlreadyMember("you are already a member of this room")
        if key in room.requests:
            return room, False
        links = tuple(
            attrs.evolve(each, uses_left=each.uses_left - 1)
            if each is link and each.uses_left is not None
            else each
            for each in room.links
        )
        updated = attrs.evolve(room, links=links, requests={**room.requests, key: now})
        self.put(updated)
        return updated, True

    def decide(self, room: Room, key: str, approve: bool) -> Room:
        if key not in room.requests:
            raise errors.RequestNotFound("there is no pending request from that user")
        if approve:
            return self.add_member(room, key)
        requests = {u: t for u, t in room.requests.items() if u != key}
        updated = attrs.evolve(room, requests=requests)
        self.put(updated)
        return updated

    def _index(self, before: Room | None, after: Room | None) -> None:
        for link in before.links if before is not None else ():
            self._links.pop(link.token_hash, None)
        if after is not None:
            for link in after.links:
                self._links[link.token_hash] = after.id
        old = before.members if before is not None else frozenset()
        new = after.members if after is not None else frozenset()
        room_id = after.id if after is not None else before.id if before is not None else ""
        for key in old - new:
            mine = self._of.get(key)
            if mine is not None:
                mine.discard(room_id)
                if not mine:
                    del self._of[key]
        for key in new - old:
            self._of.setdefault(key, set()).add(room_id)
