"""docs/API.md's examples show messages and comments as the server writes them.

Examples are pasted from real sessions, and a view that gains a field leaves them behind
(messages once lacked ``files``; comments were shown with a message's fields). Every JSON
object in the document that is a message or a comment must have exactly the view's fields,
in its order, and an HTTP example's Content-Length must be its body's length.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trio_chat.api import views
from trio_chat.domain.models import Comment, Message

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"

MESSAGE = list(
    views.message(Message("m1", "general", 1, 1, "bob", "bob", None, "hi", 1_700_000_000_000))
)
COMMENT = list(views.comment(Comment("c2", "m1", "ann", "+1", 1_700_000_000_000)))


def _examples() -> Iterator[tuple[int, str, Any]]:
    """(line number, line, parsed JSON) of every line that is a whole JSON object."""
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), start=1):
        body = line.removeprefix("data: ")
        if body.startswith("{") and "…" not in body:
            try:
                yield number, body, json.loads(body)
            except ValueError:
                continue


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for inner in value.values():
            yield from _objects(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _objects(inner)


def test_messages_and_comments_in_the_examples_have_the_views_fields() -> None:
    seen = {"message": 0, "comment": 0}
    wrong: list[str] = []
    for number, _, parsed in _examples():
        for obj in _objects(parsed):
            if {"message_id", "author", "text"} <= obj.keys() and "chat" not in obj:
                kind, fields = "comment", COMMENT
            elif {"chat", "author", "text", "sent_at"} <= obj.keys():
                kind, fields = "message", MESSAGE
            else:
                continue
            seen[kind] += 1
            if list(obj) != fields:
                wrong.append(f"line {number}: a {kind} with {list(obj)}")
    assert not wrong, "\n".join(wrong)
    assert seen["message"] >= 10 and seen["comment"] >= 5  # the check did look at them


def test_an_http_examples_content_length_is_its_bodys() -> None:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    checked = 0
    for number, body, _ in _examples():
        index = number - 1
        if index < 2 or lines[index - 1] != "":
            continue
        head = index - 2
        while head >= 0 and lines[head] and not lines[head].startswith("HTTP/1.1"):
            name, _, value = lines[head].partition(": ")
            if name.lower() == "content-length":
                assert int(value) == len(body.encode()), f"line {head + 1}"
                checked += 1
            head -= 1
    assert checked >= 5
