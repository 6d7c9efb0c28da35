import pytest

from trio_chat_client.commands import (
    HELP,
    CommentOn,
    Help,
    History,
    Invalid,
    ListUsers,
    Logout,
    Private,
    Query,
    Quit,
    Report,
    Revoke,
    Say,
    Sessions,
    ShowStatus,
    parse_command,
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
