from datetime import timedelta

import pytest

from trio_chat_client.commands import (
    HELP,
    CommentOn,
    CreateRoom,
    Decide,
    DeleteRoom,
    Download,
    Help,
    History,
    Invalid,
    Invite,
    Join,
    Kick,
    Leave,
    ListLinks,
    ListRooms,
    ListScheduled,
    ListUsers,
    Logout,
    MakeLink,
    Private,
    Query,
    Quit,
    Report,
    Requests,
    Revoke,
    RevokeLink,
    RoomInfo,
    Say,
    ScheduleAt,
    ScheduleIn,
    Sessions,
    ShowStatus,
    Switch,
    Unschedule,
    Upload,
    parse_command,
    path_word,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hello world", Say("hello world")),
        ("  spaced  ", Say("  spaced  ")),
        ("//not a command", Say("/not a command")),
        ("/msg bob hi there", Private("bob", "hi there")),
        ("/MSG @bob  hi", Private("bob", "hi")),
        ("/w bob hi", Private("bob", "hi")),
        ("/comment #12 +1 indeed", CommentOn("#12", "+1 indeed")),
        ("/comment m42 ok", CommentOn("m42", "ok")),
        ("/report mallory", Report("mallory")),
        ("/report mallory spam and abuse", Report("mallory", "spam and abuse")),
        ("/status", ShowStatus()),
        ("/history", History(20)),
        ("/history 5", History(5)),
        ("/users", ListUsers()),
        ("/help", Help()),
        ("/?", Help()),
        ("/logout", Logout()),
        ("/quit", Quit()),
        ("/exit", Quit()),
        ("hello\r\n", Say("hello")),
        ("/query bob", Query("bob")),
        ("/query", Query(None)),
        ("/q @bob", Query("bob")),
        # A paste: the command comes from the first word, the text keeps its line breaks.
        ("/msg alice first line\nsecond line", Private("alice", "first line\nsecond line")),
        ("/msg alice\nfirst line\nsecond", Private("alice", "first line\nsecond")),
        ("/comment #m4 +1\nand more", CommentOn("#m4", "+1\nand more")),
        ("two\nlines", Say("two\nlines")),
        ("/sessions", Sessions()),
        ("/revoke s12ab", Revoke("s12ab")),
    ],
)
def test_parses(line, expected):
    assert parse_command(line) == expected


@pytest.mark.parametrize("line", ["", "   ", "\n"])
def test_blank_lines_do_nothing(line):
    assert parse_command(line) is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("/msg", "usage: /msg USER TEXT"),
        ("/msg bob", "usage: /msg USER TEXT"),
        ("/msg bob    ", "usage: /msg USER TEXT"),
        ("/comment #3", "usage: /comment #ID TEXT"),
        ("/query bob carol", "usage: /query [USER]"),
        ("/report", "usage: /report USER [REASON]"),
        ("/history 0", "usage: /history [N], with N from 1 to 100"),
        ("/history 101", "usage: /history [N], with N from 1 to 100"),
        ("/history lots", "usage: /history [N], with N from 1 to 100"),
        ("/status now", "/status takes no arguments"),
        ("/frobnicate", "unknown command /frobnicate; type /help for the list"),
    ],
)
def test_invalid_lines_explain_themselves(line, reason):
    assert parse_command(line) == Invalid(reason)


def test_help_mentions_every_command_and_the_user_list_caveat():
    for name in ("/msg", "/comment", "/report", "/status", "/history", "/users", "/quit"):
        assert name in HELP
    assert "no user list" in HELP


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # Rooms: a name may have spaces; a user may be written @user.
        ("/rooms", ListRooms()),
        ("/room", RoomInfo()),
        ("/room new book club", CreateRoom("book club")),
        ("/ROOM NEW  Book Club ", CreateRoom("Book Club")),
        ("/room delete book club", DeleteRoom("book club")),
        ("/invite @bob", Invite("bob")),
        ("/kick bob", Kick("bob")),
        ("/approve carol", Decide("carol", approve=True)),
        ("/refuse carol", Decide("carol", approve=False)),
        ("/requests", Requests()),
        ("/leave", Leave()),
        ("/link", MakeLink()),
        ("/link 2d", MakeLink(timedelta(days=2))),
        ("/link 12h", MakeLink(timedelta(hours=12))),
        ("/links", ListLinks()),
        ("/unlink lk3f0a", RevokeLink("lk3f0a")),
        (
            "/join http://chat.example/join/I3Zws2RSyTo",
            Join("http://chat.example/join/I3Zws2RSyTo"),
        ),
        ("/join I3Zws2RSyTo", Join("I3Zws2RSyTo")),
        ("/switch book club", Switch("book club")),
        ("/sw general", Switch("general")),
        # Scheduled messages: the time is resolved when the command runs (it needs "now").
        ("/at 18:30 call mum", ScheduleAt("18:30", "call mum")),
        (
            "/at tomorrow 9:00 stand-up\nin room 2",
            ScheduleAt("tomorrow 9:00", "stand-up\nin room 2"),
        ),
        ("/at 2026-12-01T09:00 hi", ScheduleAt("2026-12-01T09:00", "hi")),
        ("/in 2h call mum", ScheduleIn(timedelta(hours=2), "call mum")),
        ("/in 1h30m tea", ScheduleIn(timedelta(minutes=90), "tea")),
        ("/scheduled", ListScheduled()),
        ("/unschedule q0281ae", Unschedule("q0281ae")),
        # Files: a path may be quoted, or its spaces escaped; the rest is the text.
        ("/upload notes.txt", Upload("notes.txt")),
        ("/upload ~/notes.txt here you are", Upload("~/notes.txt", "here you are")),
        ('/upload "my notes.txt" here', Upload("my notes.txt", "here")),
        ("/upload 'it''s.txt'", Upload("it", "'s.txt'")),
        ("/upload my\\ notes.txt", Upload("my notes.txt")),
        ("/download 25afa7a1", Download("25afa7a1")),
        ("/download #25afa7a1 ~/Downloads", Download("25afa7a1", "~/Downloads")),
        ('/download 25afa7a1 "/tmp/a b.txt"', Download("25afa7a1", "/tmp/a b.txt")),
    ],
)
def test_parses_rooms_schedules_and_files(line, expected):
    assert parse_command(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("/room new", "usage: /room new NAME"),
        ("/room rename x", "usage: /room, /room new NAME or /room delete NAME"),
        ("/room delete", "usage: /room delete NAME (the room in view's name, to be sure)"),
        ("/invite", "usage: /invite USER"),
        ("/invite bob carol", "usage: /invite USER"),
        ("/kick", "usage: /kick USER"),
        ("/approve", "usage: /approve USER"),
        (
            "/link soon",
            "'soon' is not a duration: write it like 45s, 10m, 2h, 1h30m or 2d "
            "(usage: /link [EXPIRY])",
        ),
        ("/join", "usage: /join LINK (the invite link's URL, or its token)"),
        ("/links all", "usage: /links (the room in view's invite links)"),
        ("/unlink", "usage: /unlink ID (a link's id, as /links shows it)"),
        ("/unlink a b", "usage: /unlink ID (a link's id, as /links shows it)"),
        ("/switch", "usage: /switch CHAT (a room's name or id, general, or a user)"),
        ("/leave now", "/leave takes no arguments"),
        ("/at 18:30", "usage: /at TIME TEXT (TIME like 18:30, tomorrow 9:00, 2026-12-01T09:00)"),
        ("/at", "usage: /at TIME TEXT (TIME like 18:30, tomorrow 9:00, 2026-12-01T09:00)"),
        ("/in 2h", "usage: /in DURATION TEXT (DURATION like 45s, 10m, 2h, 1h30m, 2d)"),
        ("/in 30 call", "'30' is not a duration: write it like 45s, 10m, 2h, 1h30m or 2d"),
        ("/unschedule", "usage: /unschedule ID (as /scheduled shows it)"),
        ("/upload", "usage: /upload PATH [TEXT]"),
        ('/upload "unclosed', 'the path has no closing " (usage: /upload PATH [TEXT])'),
        ("/download", "usage: /download ID [PATH]"),
        ("/download f1 a b", 'usage: /download ID [PATH] ("quote" a PATH with spaces)'),
    ],
)
def test_invalid_room_schedule_and_file_commands_explain_themselves(line, reason):
    assert parse_command(line) == Invalid(reason)


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("a.txt rest", ("a.txt", "rest")),
        ('"a b.txt" rest', ("a b.txt", "rest")),
        ("'a b.txt'", ("a b.txt", "")),
        ("a\\ b.txt rest of it", ("a b.txt", "rest of it")),
        ("  spaced.txt  ", ("spaced.txt", "")),
        ("", ("", "")),
    ],
)
def test_a_path_word(text, split):
    assert path_word(text) == split


def test_help_lists_the_new_commands():
    for name in ("/rooms", "/room new", "/invite", "/link", "/links", "/unlink", "/join",
                 "/requests", "/approve",
                 "/refuse", "/leave", "/kick", "/switch", "/at", "/in", "/scheduled",
                 "/unschedule", "/upload", "/download"):  # fmt: skip
        assert name in HELP
