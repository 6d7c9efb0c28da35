"""Times and durations as typed: ``/at 18:30``, ``/in 1h30m``, ``/link 2d``. "Now" is pinned, and
so is the zone: a fixed offset, and St. John's with its daylight-saving rule."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.client.zones import LINE_ISLANDS, ST_JOHNS, local_zone
from trio_chat_client.when import TimeError, parse_duration, parse_time, split_time

BERLIN_WINTER = timezone(timedelta(hours=1))
# 17:00 UTC is 18:00 in UTC+1.
NOW = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "seconds"),
    [
        ("45s", 45),
        ("10m", 600),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d", 172800),
        ("1d12h", 129600),
        ("1w", 604800),
        ("2H", 7200),
    ],
)
def test_durations(typed, seconds):
    assert parse_duration(typed) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("30", "'30' is not a duration: write it like 45s, 10m, 2h, 1h30m or 2d"),
        ("h", "is not a duration"),
        ("2x", "is not a duration"),
        ("1h-30m", "is not a duration"),
        ("", "is not a duration"),
        ("0m", "'0m' is no time at all"),
        ("400d", "too far ahead"),
    ],
)
def test_what_is_not_a_duration_says_what_would_be(typed, says):
    with pytest.raises(TimeError, match=says):
        parse_duration(typed)


@pytest.mark.parametrize(
    ("typed", "local"),
    [
        ("18:30", "2026-11-30T18:30:00+01:00"),  # later today
        ("17:30", "2026-12-01T17:30:00+01:00"),  # passed at 18:00: tomorrow
        ("9am", "2026-12-01T09:00:00+01:00"),
        ("9:15pm", "2026-11-30T21:15:00+01:00"),
        ("12am", "2026-12-01T00:00:00+01:00"),
        ("tomorrow 9:00", "2026-12-01T09:00:00+01:00"),
        ("Tomorrow 18:00", "2026-12-01T18:00:00+01:00"),
        ("today 23:59", "2026-11-30T23:59:00+01:00"),
        ("2026-12-01T09:00", "2026-12-01T09:00:00+01:00"),
        ("2026-12-01 09:00", "2026-12-01T09:00:00+01:00"),
        ("2026-12-01t09:00", "2026-12-01T09:00:00+01:00"),
        # With an offset it is that moment, whatever the local zone.
        ("2026-12-01T09:00Z", "2026-12-01T09:00:00+00:00"),
        ("2026-12-01T09:00+05:30", "2026-12-01T09:00:00+05:30"),
    ],
)
def test_times_are_local_and_carry_their_offset(typed, local):
    when = parse_time(typed, NOW, BERLIN_WINTER)
    assert when.isoformat() == local


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("today 17:59", "today 17:59 has passed"),
        ("2026-11-30T09:00", "has passed"),
        ("2026-11-30T17:00Z", "has passed"),  # now exactly: not in the future
        ("25:00", "'25:00' is not a time of day"),
        ("18:60", "is not a time of day"),
        ("13pm", "is not a time of day"),
        ("soon", "'soon' is not a time of day"),
        ("18", "'18' is not a time of day"),
        ("2026-12-01", "needs a time of day too"),
        ("2026-13-01T09:00", "is not a date and time"),
        ("next week", "is not a time"),
        ("", "a time is needed"),
    ],
)
def test_what_is_not_a_time_says_so(typed, says):
    with pytest.raises(TimeError, match=says):
        parse_time(typed, NOW, BERLIN_WINTER)


def test_the_day_is_the_local_one_not_utcs():
    # 23:30 UTC on Nov 29 is already 13:30 on Nov 30 in UTC+14: "18:30" is that evening.
    now = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    when = parse_time("18:30", now, LINE_ISLANDS.tzinfo)
    assert when.isoformat() == "2026-11-30T18:30:00+14:00"
    assert parse_time("tomorrow 8:00", now, LINE_ISLANDS.tzinfo).day == 1


def test_the_process_zone_with_daylight_saving():
    # St. John's: UTC-02:30 in summer, UTC-03:30 in winter; DST ends on Sunday 2026-11-01.
    with local_zone(ST_JOHNS):
        before = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)  # 09:30 local, summer time
        tomorrow = parse_time("tomorrow 9:00", before)
        assert tomorrow.isoformat() == "2026-11-01T09:00:00-03:30"  # winter time by then
        assert tomorrow.astimezone(UTC) == datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
        today = parse_time("18:00", before)
        assert today.isoformat() == "2026-10-31T18:00:00-02:30"


@pytest.mark.parametrize(
    ("typed", "split"),
    [
        ("18:30 call mum", ("18:30", "call mum")),
        ("tomorrow 9:00 call mum", ("tomorrow 9:00", "call mum")),
        ("2026-12-01 09:00 the meeting", ("2026-12-01 09:00", "the meeting")),
        ("2026-12-01T09:00 the meeting", ("2026-12-01T09:00", "the meeting")),
        # "tomorrow" without a clock after it: the time is the one word (and will be refused).
        ("tomorrow is fine", ("tomorrow", "is fine")),
        ("9am   two  spaces\nand a line", ("9am", "two  spaces\nand a line")),
        ("18:30", ("18:30", "")),
        ("", ("", "")),
    ],
)
def test_the_time_and_the_text_of_at(typed, split):
    assert split_time(typed) == split
