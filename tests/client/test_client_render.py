from datetime import UTC, datetime, timedelta

import pytest

from tests.client.zones import BAKER_ISLAND, LINE_ISLANDS, ST_JOHNS, local_zone
from trio_chat_client.errors import (
    ConnectionLostError,
    ProtocolViolationError,
    ServerUnreachableError,
    error_for_status,
)
from trio_chat_client.models import Comment, FileInfo, Message
from trio_chat_client.render import (
    MessageRefs,
    clean,
    describe_error,
    format_clock,
    format_duration,
    format_message,
    format_message_plain,
    message_line,
    name_style,
)

NOW = datetime(2026, 11, 26, 13, 53, 0, tzinfo=UTC)


def describe(exc):
    return describe_error(exc, NOW, UTC)


def test_rate_limit_says_when_it_resets():
    exc = error_for_status(
        429,
        "rate_limited",
        "at most 20 messages per period",
        {"retry_after": 720},
        {"Retry-After": "720", "X-RateLimit-Limit": "20"},
    )
    assert describe(exc) == (
        "rate limit reached: 20 messages to the common chat per period; "
        "you can send again in 12 min (at 14:05); private messages are not limited"
    )


def test_rate_limit_falls_back_to_the_retry_after_header():
    exc = error_for_status(429, "rate_limited", "slow down", {}, {"Retry-After": "30"})
    assert "you can send again in 30 s (at 13:53)" in describe(exc)


def test_ban_says_until_when():
    until = NOW + timedelta(hours=3, minutes=59)
    exc = error_for_status(
        403, "banned", "banned", {"banned_until": until.isoformat().replace("+00:00", "Z")}
    )
    assert describe(exc) == (
        "you are banned from sending until 17:52 (3 h 59 min from now) because other users "
        "reported you; you can still read"
    )


def test_ban_on_another_day_shows_the_date():
    until = NOW + timedelta(days=1)
    exc = error_for_status(403, "banned", "banned", {"banned_until": until.isoformat()})
    assert "until Nov 27 13:53 (1 d from now)" in describe(exc)


def test_unauthorized_variants():
    assert describe(error_for_status(401, "bad_credentials", "x")) == "wrong username or password"
    assert "does not accept this session" in describe(error_for_status(401, "unauthorized", "x"))


def test_validation_lists_fields():
    exc = error_for_status(
        400,
        "invalid_request",
        "text must be 1 to 4096 characters @ $.text",
        {"fields": [{"path": "$.text", "message": "must be 1 to 4096 characters"}]},
    )
    assert describe(exc) == "the server rejected the request: text: must be 1 to 4096 characters"


def test_not_found_uses_the_servers_sentence():
    exc = error_for_status(404, "user_not_found", "there is no user 'zed'")
    assert describe(exc) == "there is no user 'zed'"


def test_transport_and_protocol_errors():
    refused = ServerUnreachableError("http://h:1", "connection refused (is the server running?)")
    assert describe(refused) == (
        "cannot reach the server at http://h:1: connection refused (is the server running?)"
    )
    assert isinstance(ConnectionLostError("s", "r"), ServerUnreachableError)
    assert describe(ProtocolViolationError("bad")).startswith("the server answered something")
    assert "try again later" in describe(error_for_status(503, "overloaded", "busy"))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.2, "1 min"), (59, "59 s"), (61, "2 min"), (720, "12 min"), (3600, "1 h"),
     (14340, "3 h 59 min"), (86400 + 7200, "1 d 2 h")],
)  # fmt: skip
def test_durations(seconds, text):
    assert format_duration(seconds) == text


def test_control_characters_from_other_users_are_made_visible():
    assert clean("hi\x1b[2J\x07there\n\tok") == "hi^[[2J^Gthere\n\tok"


def _message(mid, text="hi", to=None, comments=(), sent_at=NOW):
    return Message(id=mid, author="alice", text=text, sent_at=sent_at, to=to, comments=comments)


def test_messages_are_referred_to_by_the_servers_id_and_comments_follow():
    refs = MessageRefs()
    comment = Comment(id="c1", message_id="m9", author="bob", text="+1", sent_at=NOW)
    assert format_message(_message("m7"), refs, NOW, UTC) == ["[13:53] #m7 alice: hi"]
    assert format_message(_message("m9", "yo", to="bob", comments=(comment,)), refs, NOW, UTC) == [
        "[13:53] #m9 alice → bob (private): yo",
        "[13:53]   ↳ bob on #m9: +1",
    ]
    assert format_message(_message("m8", "two\nlines"), refs, NOW, UTC) == [
        "[13:53] #m8 alice: two\n    lines"
    ]
    # A long opaque id is shown by its end: the same short form in every client.
    assert format_message(_message("0123456789abcdef"), refs, NOW, UTC) == [
        "[13:53] #89abcdef alice: hi"
    ]


def test_references_resolve():
    refs = MessageRefs()
    refs.short("0123456789abcdef")
    refs.short("m2")
    assert refs.resolve("#89abcdef") == "0123456789abcdef"
    assert refs.resolve("#m2") == "m2"
    assert refs.resolve("m2") == "m2"
    assert refs.resolve("cdef") == "0123456789abcdef"  # a unique ending
    assert refs.resolve("#m77") == "m77"  # unknown: passed on, the server answers 404


def test_plain_format_for_scripts_is_one_line_per_message_with_real_ids_and_utc_stamps():
    comment = Comment(id="c1", message_id="m5", author="bob", text="a\\b\nc", sent_at=NOW)
    message = _message("m5", text="two\nlines\tand a tab", to="bob", comments=(comment,))
    assert format_message_plain(message) == [
        "2026-11-26T13:53:00.000Z m5 alice -> bob: two\\nlines\\tand a tab",
        "2026-11-26T13:53:00.000Z c1 bob on m5: a\\\\b\\nc",
    ]


def test_mentions_and_private_messages_alert_the_user_but_their_own_do_not():
    refs = MessageRefs()
    me = "Alice"

    def alert(text, author="bob", to=None):
        message = Message(id="m1", author=author, text=text, sent_at=NOW, to=to)
        return message_line(message, refs, NOW, UTC, me=me).alert

    assert alert("hey alice!") and alert("@ALICE look") and alert("alice: hi")
    assert not alert("alicette is here") and not alert("malice") and not alert("alice-bot")
    assert alert("psst", to="alice") and not alert("hi bob", author="alice", to="bob")
    assert not alert("I am alice", author="alice")


def test_names_keep_their_colour_and_the_user_has_its_own():
    assert name_style("bob", "alice") == name_style("BOB", "alice") == name_style("bob", None)
    assert name_style("Alice", "alice") == "me"
    assert len({name_style(n, None) for n in ("a", "b", "c", "d", "e", "f", "g", "h")}) > 2


# Far from UTC both ways, and a half-hour zone with DST rules (on standard time, UTC-03:30, in
# November): at 23:30 local the UTC date differs from the local one in some, not in others.
zones = pytest.mark.parametrize(
    "zone", [LINE_ISLANDS, BAKER_ISLAND, ST_JOHNS], ids=["UTC+14", "UTC-12", "St_Johns"]
)


@zones
def test_late_in_the_evening_an_hour_ahead_is_tomorrow_in_the_local_zone(zone):
    # No tz, as the CLI calls it: the process's zone (TZ), where "today" is decided as well.
    now = zone.at(2026, 11, 26, 23, 30).astimezone(UTC)  # as the client's clock gives it
    limit = {"X-RateLimit-Limit": "1"}
    with local_zone(zone):
        in_an_hour = error_for_status(429, "rate_limited", "no", {"retry_after": 3600}, limit)
        assert "you can send again in 1 h (at Nov 27 00:30)" in describe_error(in_an_hour, now)
        soon = error_for_status(429, "rate_limited", "no", {"retry_after": 1200}, limit)
        assert "you can send again in 20 min (at 23:50)" in describe_error(soon, now)
        until = (now + timedelta(hours=4)).isoformat().replace("+00:00", "Z")
        banned = error_for_status(403, "banned", "banned", {"banned_until": until})
        assert describe_error(banned, now) == (
            "you are banned from sending until Nov 27 03:30 (4 h from now) because other users "
            "reported you; you can still read"
        )
        # This morning (another UTC date than now's in some of the zones) and last night.
        morning = zone.at(2026, 11, 26, 8, 0).astimezone(UTC)
        last_night = zone.at(2026, 11, 25, 23, 59).astimezone(UTC)
        refs = MessageRefs()
        assert format_message(_message("m1", sent_at=morning), refs, now) == [
            "[08:00] #m1 alice: hi"
        ]
        assert format_message(_message("m2", sent_at=last_night), refs, now) == [
            "[Nov 25 23:59] #m2 alice: hi"
        ]


@zones
def test_a_4_h_ban_ends_the_same_day_until_20_00_local(zone):
    with local_zone(zone):
        for hour, minute, shown in [(19, 59, "23:59"), (20, 0, "Nov 27 00:00")]:
            now = zone.at(2026, 11, 26, hour, minute).astimezone(UTC)
            assert format_clock(now + timedelta(hours=4), now) == shown


@zones
def test_a_given_zone_is_used_for_today_too_whatever_the_process_zone(zone):
    other = LINE_ISLANDS if zone is not LINE_ISLANDS else BAKER_ISLAND
    now = other.at(2026, 11, 26, 23, 30)
    with local_zone(zone):
        assert format_clock(now + timedelta(minutes=20), now, other.tzinfo) == "23:50"
        assert format_clock(now + timedelta(hours=1), now, other.tzinfo) == "Nov 27 00:30"


def test_files_follow_the_text_with_the_reference_download_takes():
    refs, files = MessageRefs(), MessageRefs(mark="")
    notes = FileInfo("f9dc552fee673f25afa7a", "notes.txt", 33, "text/plain")
    photo = FileInfo("f0000000000000000beef", "../\x1b[2Jphoto.jpg", 2 * 1024 * 1024)
    message = Message(id="m7", author="bob", text="see", sent_at=NOW, files=(notes, photo))
    line = message_line(message, refs, NOW, UTC, file_refs=files)
    assert line.text == (
        "[13:53] #m7 bob: see\n    [file f25afa7a: notes.txt, 33 B]\n"
        "    [file 0000beef: ../^[[2Jphoto.jpg, 2.0 MiB]"
    )
    assert ("file", "\n    [file f25afa7a: notes.txt, 33 B]") in line.parts
    assert files.resolve("25afa7a") == notes.id and files.resolve("0000beef") == photo.id
    alone = Message(id="m8", author="bob", text="", sent_at=NOW, files=(notes,))
    assert message_line(alone, refs, NOW, UTC, file_refs=files).text == (
        "[13:53] #m8 bob: [file f25afa7a: notes.txt, 33 B]"
    )
    assert format_message_plain(alone) == [
        "2026-11-26T13:53:00.000Z m8 bob:  [file f9dc552fee673f25afa7a 33 notes.txt]"
    ]


def test_a_scheduled_message_says_for_when_and_a_room_message_where():
    refs = MessageRefs()
    scheduled = Message(
        id="m9", author="alice", text="call mum", sent_at=NOW, scheduled_at=NOW,
        chat="room:r1",
    )  # fmt: skip
    assert message_line(scheduled, refs, NOW, UTC).text == (
        "[13:53] #m9 alice (scheduled 13:53): call mum"
    )
    # The line console names the room; in the room's own view that goes without saying.
    assert message_line(scheduled, refs, NOW, UTC, room="book club").text == (
        "[13:53] #m9 alice → book club (room) (scheduled 13:53): call mum"
    )
    in_view = message_line(scheduled, refs, NOW, UTC, room="book club", in_view=True)
    assert in_view.text == "[13:53] #m9 alice (scheduled 13:53): call mum"


def test_room_and_file_errors_read_as_sentences():
    assert describe(error_for_status(403, "not_owner", "only the room's owner may do that")) == (
        "only the room's owner can do that"
    )
    assert describe(error_for_status(409, "owner_cannot_leave", "…")) == (
        "you own this room, and its owner cannot leave it; /room delete NAME deletes it for "
        "everyone"
    )
    big = error_for_status(413, "payload_too_large", "the body is 5242881 bytes; the limit is 5")
    assert describe(big) == (
        "the server refuses a file this large (the body is 5242881 bytes; the limit is 5)"
    )
    assert describe(error_for_status(409, "already_member", "that user is already a member")) == (
        "that user is already a member"
    )
