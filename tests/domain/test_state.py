"""ChatState without sockets, storage or clocks: time is a number passed in."""

from __future__ import annotations

import pytest

from trio_chat import errors
from trio_chat.domain import chats, moderation, ratelimit
from trio_chat.domain.models import EventType
from trio_chat.domain.state import ChatState

HOUR = 3_600_000


def make_state(limit: int = 20) -> ChatState:
    return ChatState(
        rate_policy=ratelimit.RatePolicy(limit, HOUR),
        ban_policy=moderation.BanPolicy(3, 4 * HOUR),
    )


def test_register_is_case_insensitive_and_keeps_spelling() -> None:
    state = make_state()
    alice = state.register("Alice", "hash", now=0)
    assert alice.name == "Alice" and alice.key == "alice"
    with pytest.raises(errors.UsernameTaken):
        state.register("ALICE", "hash", now=1)
    assert state.find_user("aLiCe") is alice


def test_messages_are_numbered_per_chat_and_in_one_log() -> None:
    state = make_state()
    alice = state.register("alice", "h", 0)
    state.register("bob", "h", 0)
    m1, _ = state.post_message(alice, "one", None, 1)
    m2, _ = state.post_message(alice, "psst", "BOB", 2)
    m3, _ = state.post_message(alice, "two", None, 3)
    assert (m1.chat, m1.seq, m1.cursor) == ("general", 1, 1)
    assert (m2.chat, m2.seq, m2.cursor, m2.to) == ("dm:alice:bob", 1, 2, "bob")
    assert (m3.seq, m3.cursor) == (2, 3)
    assert len({m1.id, m2.id, m3.id}) == 3


def test_private_message_makes_the_chat_visible_to_both_and_no_one_else() -> None:
    state = make_state()
    alice = state.register("alice", "h", 0)
    state.register("bob", "h", 0)
    state.register("carol", "h", 0)
    message, _ = state.post_message(alice, "psst", "bob", 1)
    assert state.chats_of("bob") == ["general", message.chat]
    assert state.chats_of("carol") == ["general"]
    assert state.can_see("alice", message.chat) and state.can_see("bob", message.chat)
    assert not state.can_see("carol", message.chat)


def test_message_to_unknown_user_or_self_is_refused_and_changes_nothing() -> None:
    state = make_state()
    alice = state.register("alice", "h", 0)
    with pytest.raises(errors.UserNotFound):
        state.post_message(alice, "x", "nobody", 1)
    with pytest.raises(errors.InvalidRequest):
        state.post_message(alice, "x", "Alice", 1)
    assert state.cursor == 0 and state.heads == {}


@pytest.mark.parametrize("text", ["", "x" * 4097])
def test_text_length_is_checked(text: str) -> None:
    state = make_state()
    alice = state.register("alice", "h", 0)
    with pytest.raises(errors.InvalidRequest) as info:
        state.post_message(alice, text, None, 1)
    assert info.value.extra["fields"][0]["path"] == "$.text"


def test_text_limits_are_inclusive() -> None:
    state = make_state()
    alice = state.register("alice", "h", 0)
    state.post_message(alice, "x", None, 1)
    state.post_message(alice, "é" * 4096, None, 2)


def test_rate_limit_refuses_the_21st_and_resets_when_the_period_ends() -> None:
    state = make_state()
    alice = state.register("alice", "h", 0)
    for i in range(20):
        state.post_message(alice, f"m{i}", None, 1000 + i)
    assert state.rate_status("alice", 2000) == ratelimit.RateStatus(20, 0, 1000 + HOUR)
    with pytest.raises(errors.RateLimited) as info:
        state.post_message(alice, "one too many", None, 1000 + HOUR - 1500)
    assert info.value.extra["retry_after"] == 2  # 1.5 s, rounded up
    assert ("Retry-After", "2") in info.value.headers
    assert state.heads["general"] == 20  # the refused message took no number
    # Private messages do not count.
    state.register("bob", "h", 0)
    state.post_message(alice, "psst", "bob", 1000 + HOUR - 1)
    # Exactly at the period end the count starts again.
    state.post_message(alice, "again", None, 1000 + HOUR)
    assert state.rate_status("alice", 1000 + HOUR).remaining == 19


def test_rate_limit_off() -> None:
    state = make_state(limit=0)
    alice = state.register("alice", "h", 0)
    for i in range(100):
        state.post_message(alice, f"m{i}", None, i)
    assert state.state_of("alice").window is None


def test_restore_undoes_a_failed_send_but_keeps_newer_read_positions() -> None:
    state = make_state()
    alice = state.register("alice", "h", 0)
    _, previous = state.post_message(alice, "m", None, 1)
    assert state.rate_status("alice", 1).remaining == 19
    state.mark_read("alice", {"general": 1}, 0)  # delivered live meanwhile
    state.restore(previous)
    assert state.rate_status("alice", 1).remaining == 20
    assert state.state_of("alice").read == {"general": 1}


def test_first_connect_sees_last_n_as_history_and_private_as_unread() -> None:
    state = make_state()
    alice = state.register("alice", "h", 0)
    state.register("bob", "h", 0)
    for i in range(5):
        state.post_message(alice, f"m{i}", None, i)
    dm, _ = state.post_message(alice, "psst", "bob", 9)
    heads = dict(state.heads)
    plan = state.plan_connect("bob", heads, history_size=3)
    assert plan.history == range(3, 6)
    assert plan.unread == {dm.chat: range(1, 2)}
    state.mark_read("bob", plan.read_after, 0)
    # Three more common messages: unread next time; history is what was seen.
    for i in range(3):
        state.post_message(alice, f"n{i}", None, 20 + i)
    plan = state.plan_connect("bob", dict(state.heads), history_size=3)
    assert plan.history == range(3, 6)
    assert plan.unread == {"general": range(6, 9)}


def test_first_connect_to_an_empty_chat_still_counts_as_a_poll() -> None:
    state = make_state()
    alice = state.register("alice", "h", 0)
    state.register("bob", "h", 0)
    plan = state.plan_connect("bob", {}, history_size=20)
    assert plan.history == range(1, 1) and plan.unread == {}
    state.mark_read("bob", plan.read_after, 0)
    state.post_message(alice, "after bob's first connect", None, 1)
    plan = state.plan_connect("bob", dict(state.heads), history_size=20)
    assert plan.unread == {"general": range(1, 2)}


def test_three_distinct_reports_ban_for_four_hours() -> None:
    state = make_state()
    for name in ("mallory", "a", "b", "c"):
        state.register(name, "h", 0)
    a, b, c = (state.find_user(n) for n in "abc")
    assert a and b and c
    assert state.report(a, "mallory", 10).reports == 1
    with pytest.raises(errors.AlreadyReported):
        state.report(a, "Mallory", 11)
    with pytest.raises(errors.InvalidRequest):
        state.report(a, "a", 11)
    with pytest.raises(errors.UserNotFound):
        state.report(a, "nobody", 11)
    assert state.report(b, "mallory", 12).banned_until is None
    result = state.report(c, "mallory", 13)
    assert result.reports == 3 and result.banned_until == 13 + 4 * HOUR
    assert result.event is not None and result.event.type is EventType.BANNED
    mallory = state.find_user("mallory")
    assert mallory is not None
    with pytest.raises(errors.Banned):
        state.post_message(mallory, "spam", None, 14)
    # Still banned a millisecond before the end; the ban is lifted exactly at it.
    assert state.lift_ban("mallory", 13 + 4 * HOUR - 1) is None
    event = state.lift_ban("mallory", 13 + 4 * HOUR)
    assert event is not None and event.type is EventType.UNBANNED and event.user == "mallory"
    state.post_message(mallory, "I am back", None, 13 + 4 * HOUR)
    # The count started again: the same reporters may report again.
    assert state.report(a, "mallory", 13 + 4 * HOUR + 1).reports == 1


def test_visibility_of_events() -> None:
    state = make_state()
    alice = state.register("alice", "h", 0)
    state.register("bob", "h", 0)
    state.register("carol", "h", 0)
    dm, _ = state.post_message(alice, "psst", "bob", 1)
    general, _ = state.post_message(alice, "hi", None, 2)
    from trio_chat.domain.models import Event

    private_event = Event(cursor=dm.cursor, type=EventType.MESSAGE, chat=dm.chat, message=dm)
    public_event = Event(cursor=general.cursor, type=EventType.MESSAGE, chat=chats.GENERAL)
    ban = Event(cursor=9, type=EventType.BANNED, user="bob", until=5)
    assert state.visible("bob", private_event) and not state.visible("carol", private_event)
    assert state.visible("carol", public_event)
    assert state.visible("bob", ban) and not state.visible("alice", ban)
