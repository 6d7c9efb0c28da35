"""Time zones for the client's tests, as POSIX ``TZ`` rules (they need no tz database).

The client shows times in the zone of its process (``TZ``), and whether a time gets a date
(``Nov 27 00:30``) depends on the local hour. Tests therefore pin both: in-process tests set
``TZ`` with :func:`local_zone` and inject "now"; tests of real client processes, which read the
real clock, give them a zone in which the local hour is known (:func:`zone_where_it_is`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import attrs


@attrs.frozen
class Zone:
    tz: str  # the value for the TZ environment variable
    offset: timedelta  # from UTC, east positive (on the dates the tests use)

    @property
    def tzinfo(self) -> timezone:
        return timezone(self.offset)

    def at(self, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
        """That local wall-clock time in this zone, as an aware datetime."""
        return datetime(year, month, day, hour, minute, tzinfo=self.tzinfo)


def fixed_zone(offset: timedelta) -> Zone:
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    name = f"{sign}{hours:02d}{mins:02d}"
    # POSIX counts west positive: UTC+14 is "<+14>-14".
    rule = f"{'+' if minutes < 0 else '-'}{hours}:{mins:02d}"
    return Zone(f"<{name}>{rule}", offset)


LINE_ISLANDS = fixed_zone(timedelta(hours=14))  # Pacific/Kiritimati, the earliest zone
BAKER_ISLAND = fixed_zone(timedelta(hours=-12))  # Etc/GMT+12, the latest
# America/St_Johns with its DST rule; in November it is on standard time, UTC-03:30.
ST_JOHNS = Zone("NST3:30NDT,M3.2.0,M11.1.0", timedelta(hours=-3, minutes=-30))


def zone_where_it_is(hour: int, now: datetime | None = None) -> Zone:
    """A fixed-offset zone in which the local time is ``hour``:xx now (offsets -12 to +11 h)."""
    now = now or datetime.now(UTC)
    hours_east = (hour - now.astimezone(UTC).hour + 12) % 24 - 12
    return fixed_zone(timedelta(hours=hours_east))


@contextmanager
def local_zone(zone: Zone) -> Iterator[None]:
    """Run the block with ``zone`` as this process's local time zone."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = zone.tz
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


def clock_readings(
    zone: Zone, since: datetime, until: datetime, fmt: str = "%H:%M", slack: float = 2.0
) -> set[str]:
    """What a clock in ``zone`` may read (``fmt``) at some moment from ``since`` to ``until``.

    For a real process's output, where the exact moment is known only to a few seconds.
    """
    step = timedelta(minutes=1)
    t = (since - timedelta(seconds=slack)).astimezone(zone.tzinfo).replace(second=0, microsecond=0)
    end = until + timedelta(seconds=slack)
    readings = set()
    while t <= end:
        readings.add(t.strftime(fmt))
        t += step
    return readings
