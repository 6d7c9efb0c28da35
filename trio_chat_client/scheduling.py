"""Scheduled messages in the interactive chat (API.md §14): ``/at``, ``/in``, ``/scheduled``,
``/unschedule``, and the ``scheduled_failed`` event.

Times are the client's: ``/at 18:30`` is 18:30 where the user is (``tz``), ``/in 2h`` two hours
from the session's clock; both go to the server as RFC 3339 with the offset, and the server
sends the message when its own clock says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from .commands import Command, ListScheduled, ScheduleAt, ScheduleIn, Unschedule
from .errors import CommandError
from .models import GENERAL, Event, Scheduled, ScheduledFailedEvent, by_id
from .render import chat_label, clean, format_clock, format_duration, one_line
from .when import TimeError, parse_time

if TYPE_CHECKING:
    from .session import ChatSession

__all__ = ["SCHEDULE_COMMANDS", "SHORT_SCHEDULED", "ScheduleCommands", "describe_refusal"]

SCHEDULE_COMMANDS = (ScheduleAt, ScheduleIn, ListScheduled, Unschedule)
SHORT_SCHEDULED: Final = 7  # "q0281ae": enough to tell a user's (at most 100) apart

_REFUSALS: Final = {
    "banned": "you were banned from sending at that time",
    "rate_limited": "the common chat's rate limit was reached at that time",
    "chat_not_found": "you were no longer in that chat",
    "user_not_found": "that user no longer exists",
    "file_not_found": "a file it carried was no longer there",
}


def describe_refusal(code: str, message: str) -> str:
    """Why the server did not send a scheduled message, as a clause."""
    return _REFUSALS.get(code, f"{message} ({code})")


def short_id(scheduled_id: str) -> str:
    return scheduled_id[:SHORT_SCHEDULED]


class ScheduleCommands:
    def __init__(self, session: ChatSession) -> None:
        self.session = session

    async def execute(self, command: Command) -> None:
        s = self.session
        if isinstance(command, ScheduleAt | ScheduleIn):
            now = s.now()
            if isinstance(command, ScheduleAt):
                try:
                    send_at = parse_time(command.when, now, s.tz)
                except TimeError as exc:
                    raise CommandError(f"{exc}; nothing was scheduled") from None
            else:
                send_at = (now + command.delay).astimezone(s.tz)
            conversation = s.sendable()
            to, chat = s.destination(conversation)
            item = await s.api.schedule(command.text, send_at, to, chat=chat)
            s.notice(
                f"{short_id(item.id)} will be sent {self._when(item.send_at, now)} to "
                f"{self._where(item)} (/unschedule {short_id(item.id)} cancels it)"
            )
        elif isinstance(command, ListScheduled):
            waiting = await s.api.scheduled()
            if not waiting:
                s.notice("no messages are waiting to be sent")
                return
            now = s.now()
            s.notice(f"{len(waiting)} message(s) waiting to be sent, soonest first:")
            for item in waiting:
                text = one_line(item.text) or "(no text)"
                files = f" +{len(item.files)} file(s)" if item.files else ""
                s.notice(
                    f"  {short_id(item.id)}  {self._when(item.send_at, now)}  to "
                    f"{self._where(item)}: {text}{files}"
                )
        elif isinstance(command, Unschedule):
            waiting = await s.api.scheduled()
            ref = command.ref
            matches = by_id(waiting, ref)
            if len(matches) != 1:
                problem = "no waiting message" if not matches else "more than one"
                s.error(f"you have {problem} matching {ref!r}; /scheduled lists them")
                return
            (item,) = matches
            await s.api.unschedule(item.id)
            s.notice(f"cancelled {short_id(item.id)}; it will not be sent")

    def _when(self, moment: datetime, now: datetime) -> str:
        s = self.session
        return (
            f"at {format_clock(moment, now, s.tz)} "
            f"(in {format_duration(round((moment - now).total_seconds()))})"
        )

    def _where(self, item: Scheduled) -> str:
        s = self.session
        if item.chat == GENERAL:
            return "the common chat"
        room = s.room_name(item.chat)
        if room is not None:
            return clean(room)
        return clean(item.to) if item.to else chat_label(item.chat, s.me)

    def on_event(self, event: Event) -> bool:
        if not isinstance(event, ScheduledFailedEvent):
            return False
        s = self.session
        item = event.scheduled
        when = format_clock(item.send_at, s.now(), s.tz)
        why = describe_refusal(event.error.code, event.error.message)
        text = one_line(item.text)
        s.error(
            f"your message for {self._where(item)} scheduled at {when} was not sent: {why} "
            f"(it said: {text})"
        )
        return True
