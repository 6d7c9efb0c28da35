"""The one clock: RFC 3339 timestamps, and wall time that follows Trio's (mock) clock."""

from __future__ import annotations

from trio_chat.clock import TrioClock, format_ms


def test_timestamps_are_rfc3339_utc_with_milliseconds() -> None:
    assert format_ms(1_795_736_429_123) == "2026-11-26T23:40:29.123Z"
    assert format_ms(0) == "1970-01-01T00:00:00.000Z"
    assert format_ms(1_795_736_429_007) == "2026-11-26T23:40:29.007Z"


async def test_wall_time_moves_with_the_mock_clock(mock_clock) -> None:
    clock = TrioClock(wall_start=1000.0)
    assert clock.now() == 1000.0
    mock_clock.jump(3600)
    assert clock.now() == 4600.0
