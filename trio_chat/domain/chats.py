"""Chat identities and who may see what.

A chat is named by an id. The common chat is ``general``; every registered user is a
member. A private (1-to-1) conversation is the chat ``dm:<a>:<b>`` with the two user keys
in sorted order, so both parties name it the same way. Custom rooms will be a third kind
with an explicit member list; ``is_member`` is the one place that decides visibility.
"""

from __future__ import annotations

GENERAL = "general"
_DM_PREFIX = "dm:"


def private_chat(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"{_DM_PREFIX}{first}:{second}"


def private_parties(chat: str) -> tuple[str, str] | None:
    if not chat.startswith(_DM_PREFIX):
        return None
    parts = chat[len(_DM_PREFIX) :].split(":")
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def is_member(chat: str, user: str) -> bool:
    """Whether the user (by key) belongs to the chat and so sees its messages and events."""
    if chat == GENERAL:
        return True
    parties = private_parties(chat)
    return parties is not None and user in parties


def other_party(chat: str, user: str) -> str | None:
    parties = private_parties(chat)
    if parties is None or user not in parties:
        return None
    return parties[1] if parties[0] == user else parties[0]
