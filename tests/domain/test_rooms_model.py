"""Rooms against a tiny reference model of who may see what (hypothesis, stateful).

Random sequences of room operations by several users, each applied to the domain exactly as
the service applies it and to a model a few lines long; after every step, who may see each
room, the pending requests and each user's chats must agree.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from trio_chat import errors
from trio_chat.domain import moderation, ratelimit
from trio_chat.domain.rooms import LINK_MAX_LIFETIME_MS
from trio_chat.domain.state import ChatState

USERS = ["u0", "u1", "u2", "u3"]
HOUR = 3600_000


@attrs.define
class ModelLink:
    token: str
    room: str
    expires_at: int
    uses_left: int | None
    revoked: bool = False
    kept: bool = True  # still in the room's record (creating a link drops dead ones)

    def live(self, now: int) -> bool:
        return (
            not self.revoked
            and now < self.expires_at
            and (self.uses_left is None or self.uses_left > 0)
        )


@attrs.define
class ModelRoom:
    owner: str
    members: set[str]
    pending: set[str] = attrs.field(factory=set)


class RoomsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = ChatState(ratelimit.RatePolicy(0, 1), moderation.BanPolicy(3, 1))
        for name in USERS:
            self.state.register(name, "x", 0)
        self.rooms = self.state.rooms
        self.now = 0
        self.model: dict[str, ModelRoom] = {}
        self.links: list[ModelLink] = []
        self.order: list[str] = []  # every room ever made, deleted ones too, in creation order

    def expect(self, error: type[errors.ChatError] | None, action: Any) -> Any:
        """Run ``action``; it must raise exactly ``error`` (or nothing, for None)."""
        if error is None:
            return action()
        with pytest.raises(error):
            action()
        return None

    def room_ids(self) -> list[str]:
        # By position, not by id: ids are random, and the draws must not depend on them.
        return self.order

    # -- what the model says each call must do ---------------------------------------------

    def access(self, room: str, actor: str, *, owner: bool) -> type[errors.ChatError] | None:
        m = self.model.get(room)
        if m is None or actor not in m.members:
            return errors.ChatNotFound
        if owner and m.owner != actor:
            return errors.NotOwner
        return None

    @rule(owner=st.sampled_from(USERS))
    def create(self, owner: str) -> None:
        room = self.rooms.create(owner, "r", self.now)
        self.model[room.id] = ModelRoom(owner, {owner})
        self.order.append(room.id)

    @rule(data=st.data(), actor=st.sampled_from(USERS), whom=st.sampled_from(USERS))
    def invite(self, data: st.DataObject, actor: str, whom: str) -> None:
        if not self.room_ids():
            return
        rid = data.draw(st.sampled_from(self.room_ids()))
        error = self.access(rid, actor, owner=True)
        if error is None and whom in self.model[rid].members:
            error = errors.AlreadyMember
        self.expect(error, lambda: self.rooms.add_member(self.rooms.owned(rid, actor), whom))
        if error is None:
            self.model[rid].members.add(whom)
            self.model[rid].pending.discard(whom)

    @rule(data=st.data(), actor=st.sampled_from(USERS), whom=st.sampled_from(USERS))
    def remove(self, data: st.DataObject, actor: str, whom: str) -> None:
        if not self.room_ids():
            return
        rid = data.draw(st.sampled_from(self.room_ids()))
        m = self.model.get(rid)
        error = self.access(rid, actor, owner=False)
        if error is None and whom != actor and m is not None and m.owner != actor:
            error = errors.NotOwner
        elif error is None and m is not None and whom == m.owner:
            error = errors.OwnerCannotLeave
        elif error is None and m is not None and whom not in m.members:
            error = errors.UserNotFound
        self.expect(error, lambda: self.rooms.remove_by(rid, actor, whom))
        if error is None and m is not None:
            m.members.discard(whom)

    @rule(
        data=st.data(),
        actor=st.sampled_from(USERS),
        lifetime=st.integers(1, LINK_MAX_LIFETIME_MS),
        max_uses=st.none() | st.integers(1, 3),
    )
    def link(self, data: st.DataObject, actor: str, lifetime: int, max_uses: int | None) -> None:
        if not self.room_ids():
            return
        rid = data.draw(st.sampled_from(self.room_ids()))
        error = self.access(rid, actor, owner=True)
        result = self.expect(
            error,
            lambda: self.rooms.create_link(
                self.rooms.owned(rid, actor), self.now, lifetime, max_uses
            ),
        )
        if error is None:
            _, new = result
            for other in self.links:
                if other.room == rid and not other.live(self.now):
                    other.kept = False
            self.links.append(ModelLink(new.token, rid, self.now + lifetime, max_uses))

    @rule(data=st.data(), actor=st.sampled_from(USERS))
    def revoke(self, data: st.DataObject, actor: str) -> None:
        if not self.links:
            return
        link = data.draw(st.sampled_from(self.links))
        error = self.access(link.room, actor, owner=True)
        if error is None and (link.revoked or not link.kept):
            error = errors.LinkNotFound
        self.expect(
            error,
            lambda: self.rooms.revoke_link(self.rooms.owned(link.room, actor), link.token),
        )
        if error is None:
            link.revoked = True

    @rule(data=st.data(), user=st.sampled_from(USERS), garbage=st.booleans())
    def join(self, data: st.DataObject, user: str, garbage: bool) -> None:
        if garbage or not self.links:
            self.expect(errors.LinkNotFound, lambda: self.rooms.find_link("nonsense", self.now))
            return
        link = data.draw(st.sampled_from(self.links))
        m = self.model.get(link.room)
        error: type[errors.ChatError] | None = None
        if m is None or not link.live(self.now):
            error = errors.LinkNotFound
        elif user in m.members:
            error = errors.AlreadyMember

        def act() -> Any:
            room, found = self.rooms.find_link(link.token, self.now)
            return self.rooms.request(room, found, user, self.now)

        self.expect(error, act)
        if error is None and m is not None and user not in m.pending:
            m.pending.add(user)
            if link.uses_left is not None:
                link.uses_left -= 1

    @rule(
        data=st.data(),
        actor=st.sampled_from(USERS),
        whom=st.sampled_from(USERS),
        approve=st.booleans(),
    )
    def decide(self, data: st.DataObject, actor: str, whom: str, approve: bool) -> None:
        if not self.room_ids():
            return
        rid = data.draw(st.sampled_from(self.room_ids()))
        error = self.access(rid, actor, owner=True)
        if error is None and whom not in self.model[rid].pending:
            error = errors.RequestNotFound
        self.expect(error, lambda: self.rooms.decide(self.rooms.owned(rid, actor), whom, approve))
        if error is None:
            self.model[rid].pending.discard(whom)
            if approve:
                self.model[rid].members.add(whom)

    @rule(data=st.data(), actor=st.sampled_from(USERS))
    def delete(self, data: st.DataObject, actor: str) -> None:
        if not self.room_ids():
            return
        rid = data.draw(st.sampled_from(self.room_ids()))
        error = self.access(rid, actor, owner=True)
        self.expect(error, lambda: self.rooms.remove(self.rooms.owned(rid, actor).id))
        if error is None:
            del self.model[rid]

    @rule(ms=st.sampled_from([1, HOUR, 24 * HOUR, LINK_MAX_LIFETIME_MS]))
    def tick(self, ms: int) -> None:
        self.now += ms

    # -- what must always hold ------------------------------------------------------------

    @invariant()
    def who_sees_what_agrees(self) -> None:
        for rid in self.room_ids():
            m = self.model.get(rid)
            for user in USERS:
                expected = m is not None and user in m.members
                assert self.state.can_see(user, rid) is expected, (rid, user)
                delivered = self.state.members_of(rid)
                assert delivered is not None and (user in delivered) is expected
            if m is not None:
                assert set(self.rooms.rooms[rid].requests) == m.pending
        for user in USERS:
            mine = sorted(r for r, m in self.model.items() if user in m.members)
            assert [c for c in self.state.chats_of(user) if c.startswith("room:")] == mine

    @invariant()
    def links_admit_as_the_model_says(self) -> None:
        for link in self.links:
            ok = link.room in self.model and link.live(self.now)
            try:
                self.rooms.find_link(link.token, self.now)
            except errors.LinkNotFound:
                assert not ok, link
            else:
                assert ok, link


RoomsMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_rooms_agree_with_the_model = RoomsMachine.TestCase
