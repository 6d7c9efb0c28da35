"""Times and durations as people type them: ``/in 2h``, ``/at 18:30``, ``/link 2d``. Pure.

Times are the client's local time (``tz``; ``None`` is the process's zone, ``TZ``), and come
back as aware datetimes, so they are sent to the server as RFC 3339 with their offset.
"Now" is always passed in, never read here.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final

__all__ = ["TimeError", "parse_duration", "parse_time", "split_time"]

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)\s*([smhdw])")
_CLOCK = re.compile(r"(\d{1,2})(?::(\d\d))?\s*(am|pm)?")
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")
# How much may be scheduled ahead is the server's to say (30 days); this only stops nonsense.
MAX_DURATION: Final = timedelta(days=366)


class TimeError(ValueError):
    """What was typed is not a time or duration; the message says what would be."""


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1h30m``, ``2d``, ``1w`` → a duration (more than zero).

    Every number needs its unit: a bare ``30`` could mean seconds or minutes, so it is refused
    with a hint rather than guessed.
    """
    raw = text.strip().lower().replace(" ", "")
    usage = f"{text.strip()!r} is not a duration: write it like 45s, 10m, 2h, 1h30m or 2d"
    if not raw:
        raise TimeError(usage)
    position, total = 0, 0
    for found in _PART.finditer(raw):
        if found.start() != position:
            raise TimeError(usage)
        total += int(found[1]) * _UNITS[found[2]]
        position = found.end()
    if position != len(raw):
        raise TimeError(usage)
    if total <= 0:
        raise TimeError(f"{text.strip()!r} is no time at all: give a duration of at least 1s")
    duration = timedelta(seconds=total)
    if duration > MAX_DURATION:
        raise TimeError(f"{text.strip()!r} is too far ahead")
    return duration


def split_time(words: str) -> tuple[str, str]:
    """The time at the start of ``/at``'s argument and the rest (the text).

    A time is one word (``18:30``, ``2026-12-01T09:00``, ``9am``), or two: a day then a clock
    (``tomorrow 9:00``, ``2026-12-01 09:00``).
    """
    parts = words.strip().split(maxsplit=2)
    if not parts:
        return "", ""
    first = parts[0].lower()
    is_day = first in ("today", "tomorrow") or _ISO_DATE.fullmatch(first)
    if is_day and len(parts) >= 2 and _CLOCK.fullmatch(parts[1].lower()):
        return f"{parts[0]} {parts[1]}", parts[2] if len(parts) > 2 else ""
    rest = words.strip()[len(parts[0]) :].strip()
    return parts[0], rest


def _clock(text: str) -> time:
    found = _CLOCK.fullmatch(text.strip().lower())
    if found is None or (found[2] is None and found[3] is None):
        raise TimeError(f"{text!r} is not a time of day: write it like 18:30 or 9am")
    hour, minute = int(found[1]), int(found[2] or 0)
    if found[3] is not None:
        if not 1 <= hour <= 12:
            raise TimeError(f"{text!r} is not a time of day")
        hour = hour % 12 + (12 if found[3] == "pm" else 0)
    if hour > 23 or minute > 59:
        raise TimeError(f"{text!r} is not a time of day")
    return time(hour, minute)


def _local(day: date, clock: time, tz: tzinfo | None) -> datetime:
    """That wall-clock time on that day in ``tz`` (``None``: the process's zone, with DST)."""
    naive = datetime.combine(day, clock)
    if tz is None:
        return naive.astimezone()  # the C library's local time, DST included
    return naive.replace(tzinfo=tz)


def parse_time(text: str, now: datetime, tz: tzinfo | None = None) -> datetime:
    """A moment from what was typed, as an aware datetime in the local zone.

    - ``18:30``, ``9am``: the next such time — today, or tomorrow if it has passed;
    - ``tomorrow 9:00``, ``today 18:30``;
    - ``2026-12-01T09:00``, ``2026-12-01 09:00``: that local time; with an offset or ``Z``
      (``2026-12-01T09:00+01:00``) that moment.

    It must be in the future.
    """
    raw = text.strip()
    if not raw:
        raise TimeError("a time is needed, like 18:30, tomorrow 9:00 or 2026-12-01T09:00")
    today = now.astimezone(tz).date()
    words = raw.split()
    when: datetime
    if len(words) == 2 and words[0].lower() in ("today", "tomorrow"):
        day = today + timedelta(days=1 if words[0].lower() == "tomorrow" else 0)
        when = _local(day, _clock(words[1]), tz)
    elif len(words) == 2 and _ISO_DATE.fullmatch(words[0]):
        when = _iso(f"{words[0]}T{words[1]}", tz)
    elif len(words) == 1 and _ISO_DATE.fullmatch(raw):
        raise TimeError(f"{raw} needs a time of day too, like {raw}T09:00")
    elif len(words) == 1 and _ISO_DATE.match(raw):
        when = _iso(raw, tz)
    elif len(words) == 1:
        clock = _clock(raw)
        when = _local(today, clock, tz)
        if when <= now:
            when = _local(today + timedelta(days=1), clock, tz)
    else:
        raise TimeError(f"{raw!r} is not a time: write it like 18:30, tomorrow 9:00 or "
                        "2026-12-01T09:00")  # fmt: skip
    if when <= now:
        raise TimeError(f"{raw} has passed: give a time in the future")
    return when


def _iso(raw: str, tz: tzinfo | None) -> datetime:
    text = raw.strip().upper()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or "T" not in text:
        raise TimeError(f"{raw!r} is not a date and time: write it like 2026-12-01T09:00")
    if parsed.tzinfo is not None:
        return parsed
    return _local(parsed.date(), parsed.time(), tz)
