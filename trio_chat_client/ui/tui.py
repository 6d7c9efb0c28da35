"""The full-screen console: urwid on Trio, laid out like irssi or WeeChat.

```
 scrollback of the conversation in view           (PgUp/PgDn; PgUp at the top loads older)
 ─ alice@host:8000 │ 1:general 2:bob(3) 3:carol │ live ──────────── (the status line)
 general> what you type, on as many rows as it needs
```

urwid does the terminal work: width-correct rendering of wide characters, wrapping, resize,
bracketed paste, key names, suspend on Ctrl-Z (its SIGTSTP handler puts the terminal back
first) and restoring the terminal however the program ends (``MainLoop.start()`` is a context
manager). This module only decides what goes where. It runs as urwid's Trio event loop inside
our own Trio program (``urwid.TrioEventLoop.run_async``), so the session's tasks change widgets
directly and ask for a redraw.

Input: Enter sends what was typed (all its rows: a multi-line paste is one message, to the
conversation it was typed in); keys inside a bracketed paste, and several lines arriving in one
read from a terminal without bracketed paste, only add rows.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final, Protocol

import trio
import urwid

from ..commands import ALIASES as _ALIASES
from ..conversations import Conversation, Conversations
from ..render import NAME_STYLES, Line
from .terminal import InputRouter

__all__ = ["Controller", "TuiConsole", "open_tui", "palette"]

NEWLINE_KEY: Final = "paste newline"
# Commands whose whole argument is one name with spaces in it, and those that take a word.
_WHOLE_ARGUMENT: Final = re.compile(r"(/switch|/sw)\s+(.*)", re.IGNORECASE | re.DOTALL)
_ONE_WORD_ARGUMENT: Final = re.compile(r"(/\S+)\s+$")
Key = (
    str | tuple[str, int, int, int]
)  # a key name, or a mouse event  # a line break inside pasted text: not "send"

_NAME_COLOURS = ("light cyan", "light green", "yellow", "light magenta", "light blue", "brown")


def palette() -> list[tuple[str, str, str, str]]:
    """Styles as ``(name, foreground, background, monochrome)``; see ``NO_COLOR`` in
    :func:`open_tui` for when only the monochrome column is used."""
    entries = [
        ("time", "dark gray", "default", "default"),
        ("ref", "dark gray", "default", "default"),
        ("text", "default", "default", "default"),
        ("me", "white,bold", "default", "bold"),
        ("private", "light magenta", "default", "default"),
        ("alert", "yellow,bold", "default", "standout"),
        ("notice", "dark cyan", "default", "default"),
        ("error", "light red,bold", "default", "bold"),
        ("info", "dark gray", "default", "default"),
        ("status", "white", "dark blue", "standout"),
        ("tab", "white", "dark blue", "standout"),
        ("tab focus", "white,bold", "dark blue", "bold"),
        ("tab unread", "yellow", "dark blue", "standout"),
        ("tab alert", "light red,bold", "dark blue", "bold,standout"),
        ("prompt", "light cyan,bold", "default", "bold"),
        ("file", "light blue", "default", "default"),
        ("progress", "black", "light gray", "standout"),
    ]
    entries += [(f"name{i}", _NAME_COLOURS[i], "default", "default") for i in range(NAME_STYLES)]
    return entries


class Controller(Protocol):
    """What the screen asks of the chat session (``session.ChatSession``)."""

    me: str
    views: Conversations

    @property
    def live(self) -> bool: ...

    def focus(self, chat: str) -> Conversation: ...

    async def page_back(self, chat: str, limit: int = ..., *, quiet: bool = ...) -> int: ...

    def completions(
        self, word: str, *, command: bool, argument_of: str | None = None
    ) -> list[str]: ...


class InputLine(urwid.Edit):
    """The input: multi-row, readline keys, history, Tab completion, paste-aware Enter."""

    def __init__(self, tui: TuiConsole) -> None:
        super().__init__(multiline=False, text_completer=self._complete, undo_limit=100)
        commands = urwid.command_map.copy()
        commands.bind_readline()
        self._command_map = commands
        self.tui = tui
        self.pasting = False
        self.secret = False  # a password is being typed: masked, never completed or remembered
        self.history: list[str] = []
        self._recall = 0

    def keypress(self, size: tuple[int], key: str) -> str | None:  # type: ignore[override]
        if key == "begin paste":
            self.pasting = True
            return None
        if key == "end paste":
            self.pasting = False
            return None
        if key == NEWLINE_KEY or (key == "enter" and self.pasting):
            self.insert_text("\n")
            return None
        if key == "enter":
            self.tui.submit(self.edit_text)
            return None
        if key == "ctrl c":
            if self.edit_text:
                self.set_edit_text("")  # clears the line; quitting is /quit or Ctrl-D
            else:
                self.tui.hint(
                    "Ctrl-C clears what you type; /quit or Ctrl-D on an empty line leaves"
                )
            return None
        if key == "ctrl d" and not self.edit_text:
            self.tui.end_of_input()
            return None
        unhandled = super().keypress(size, key)
        if unhandled in ("up", "down"):
            self._recall_history(-1 if unhandled == "up" else 1)
            return None
        return unhandled

    def remember(self, text: str) -> None:
        if text.strip() and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self._recall = len(self.history)

    def _recall_history(self, step: int) -> None:
        position = self._recall + step
        if not 0 <= position <= len(self.history):
            return
        self._recall = position
        text = self.history[position] if position < len(self.history) else ""
        self.set_edit_text(text)
        self.set_edit_pos(len(text))

    def _complete(self, text: str, position: int) -> Sequence[tuple[str, int]]:
        if self.secret:
            return []  # never complete (or show) anything in a password
        head = text[:position]
        tail = text[position:]
        whole = _WHOLE_ARGUMENT.match(head)
        if whole is not None:
            # A room's name may have spaces: the whole argument is what is completed.
            name = _ALIASES.get(whole[1].lower(), whole[1].lower())
            found = self.tui.controller().completions(whole[2], command=False, argument_of=name)
            return [(head[: whole.start(2)] + c + tail, whole.start(2) + len(c)) for c in found]
        start = max(head.rfind(" "), head.rfind("\n")) + 1
        word = head[start:]
        command = start == 0 and word.startswith("/")
        if not word and not command:
            return []
        argument = _ONE_WORD_ARGUMENT.match(head[:start])
        argument_of = None
        if argument is not None:
            argument_of = _ALIASES.get(argument[1].lower(), argument[1].lower())
        found = self.tui.controller().completions(word, command=command, argument_of=argument_of)
        out = []
        for candidate in found:
            # A name at the very start of a message addresses someone: "alice: ".
            suffix = ": " if start == 0 and not command and not tail else " "
            new = head[:start] + candidate + suffix
            out.append((new + tail, len(new)))
        return out


class ChatFrame(urwid.Frame[urwid.Widget, Any, urwid.Pile]):
    """Page keys scroll the conversation whatever has the focus; PgUp at the top pages back."""

    def __init__(self, tui: TuiConsole, body: urwid.Widget, footer: urwid.Pile) -> None:
        super().__init__(body, footer=footer, focus_part="footer")
        self.tui = tui

    def keypress(self, size: tuple[int, int], key: str) -> str | None:  # type: ignore[override]
        if key in ("page up", "page down"):
            maxcol, maxrow = size
            footer = self.footer
            rows = maxrow - (footer.rows((maxcol,), focus=True) if footer is not None else 0)
            listbox = self.body
            if isinstance(listbox, urwid.ListBox) and rows > 0:
                listbox.keypress((maxcol, rows), key)
                if key == "page up" and "top" in listbox.ends_visible((maxcol, rows)):
                    self.tui.load_older()  # scrolled to the top: fetch what came before
            return None
        return super().keypress(size, key)


class TuiConsole:
    """A :class:`~trio_chat_client.session.Console` on a full screen."""

    shows_everything = False

    def __init__(self, who: str) -> None:
        self.who = who  # "alice@host:8000", for the status line
        self._controller: Controller | None = None
        self._walkers: dict[str, urwid.SimpleFocusListWalker[urwid.Widget]] = {}
        self._listboxes: dict[str, urwid.ListBox[int]] = {}
        self._input = InputRouter(self._ask)
        self.edit = InputLine(self)
        self.status = urwid.Text("", wrap="clip")
        self._progress = urwid.AttrMap(urwid.Text("", wrap="clip"), "progress")
        self._caption = "> "
        footer = urwid.Pile([urwid.AttrMap(self.status, "status"), self.edit])
        self._footer = footer
        self.frame = ChatFrame(self, urwid.ListBox(urwid.SimpleFocusListWalker([])), footer)
        self.loop: urwid.MainLoop | None = None
        self._draw_pending = False
        self._older_loading: set[str] = set()
        self._nursery: trio.Nursery | None = None
        self._stopping = False

    # -- wiring -----------------------------------------------------------------------------

    def bind(self, controller: Controller) -> None:
        self._controller = controller
        self._show_view(controller.views.focused)
        self.changed()

    def controller(self) -> Controller:
        if self._controller is None:
            raise RuntimeError("the screen is not bound to a chat session yet")
        return self._controller

    # -- the Console protocol ---------------------------------------------------------------

    def show(self, line: Line) -> None:
        chat = line.chat
        if chat is None:
            chat = self._controller.views.focused if self._controller else "general"
        walker = self._walker(chat)
        listbox = self._listboxes[chat]
        at_bottom = not walker or listbox.focus_position == len(walker) - 1
        walker.append(_widget(line))
        if at_bottom:
            listbox.set_focus(len(walker) - 1)
        if line.alert:
            self.bell()
        self.redraw()

    def show_older(self, chat: str, lines: list[Line]) -> None:
        walker = self._walker(chat)
        # Inserted above what is shown; the walker keeps its focus on the same line.
        walker[0:0] = [_widget(line) for line in lines]
        # Show where the older messages begin (asked for by PgUp or /history).
        listbox = self._listboxes[chat]
        listbox.set_focus(0)
        listbox.set_focus_valign("top")
        self.redraw()

    def changed(self) -> None:
        if self._controller is None:
            return
        views = self._controller.views
        if self._listboxes.get(views.focused) is not self.frame.body:
            self._show_view(views.focused)
        markup: list[Any] = []
        for position, conversation in enumerate(views, start=1):
            style = "tab"
            label = f" {position}:{conversation.title}"
            if conversation.gone:
                label += "(left)"
            if conversation.id == views.focused:
                style = "tab focus"
                label = f" [{label[1:]}]"
            elif conversation.alert:
                style = "tab alert"
            elif conversation.unread:
                style = "tab unread"
            if conversation.unread:
                label += f"({conversation.unread})"
            markup.append((style, label))
        state = "live" if self._controller.live else "reconnecting…"
        # The conversations first: on a narrow terminal the end of the line is cut off.
        markup.append(("status", f" │ {state} │ {self.who}"))
        self.status.set_text(markup)
        if not self.edit.secret:
            gone = " (left)" if views.current.gone else ""
            self._caption = f"{views.current.title}{gone}> "
            self.edit.set_caption(("prompt", self._caption))
        self.redraw()

    def progress(self, text: str | None) -> None:
        """A row above the status line while a file travels: ``uploading x [###...] 42%``."""
        rows = self._footer.contents
        showing = rows[0][0] is self._progress
        if (text is None) == showing:
            self._keep_bottom_in_view()  # the conversation's room grows or shrinks by a row
        if text is None:
            if showing:
                del rows[0]
        else:
            widget = self._progress.original_widget
            assert isinstance(widget, urwid.Text)
            widget.set_text(text)
            if not showing:
                rows.insert(0, (self._progress, self._footer.options()))
        self.redraw()

    def _keep_bottom_in_view(self) -> None:
        if self._controller is None:
            return
        chat = self._controller.views.focused
        walker, listbox = self._walkers.get(chat), self._listboxes.get(chat)
        if walker and listbox is not None and listbox.focus_position == len(walker) - 1:
            listbox.set_focus_valign("bottom")

    async def read_line(self) -> str | None:
        return await self._input.line()

    async def read_password(self, prompt: str) -> str | None:
        return await self._input.secret(prompt)

    # -- actions from keys ------------------------------------------------------------------

    def submit(self, text: str) -> None:
        # What was typed gets its answer at the bottom: go there, as after typing in a shell.
        walker = self._walkers.get(self.controller().views.focused)
        if walker:
            self._listboxes[self.controller().views.focused].set_focus(len(walker) - 1)
        secret = self._input.secret_wanted
        if not secret:
            self.edit.remember(text)
        self.edit.set_edit_text("")
        self._input.put(text)
        self.changed()

    def end_of_input(self) -> None:
        self._input.close()

    def hint(self, text: str) -> None:
        self.show(Line(f"* {text}", "notice"))

    def switch(self, position: int) -> None:
        conversation = self.controller().views.at(position)
        if conversation is not None:
            self.controller().focus(conversation.id)

    def step(self, delta: int) -> None:
        views = self.controller().views
        position = (views.index(views.focused) + delta) % len(views)
        self.switch(position)

    def load_older(self) -> None:
        chat = self.controller().views.focused
        if chat in self._older_loading or self._nursery is None:
            return
        self._older_loading.add(chat)
        self._nursery.start_soon(self._load_older, chat)

    async def _load_older(self, chat: str) -> None:
        try:
            await self.controller().page_back(chat)
        except Exception as exc:  # shown, not fatal: paging back is a convenience
            self.show(Line(f"error: {exc}", "error", chat))
        finally:
            self._older_loading.discard(chat)

    def unhandled(self, key: Key) -> bool:
        if not isinstance(key, str):
            return False
        if key.startswith("meta ") and key[5:].isdigit():
            self.switch((int(key[5:]) - 1) % 10)
        elif key in ("ctrl n", "meta right"):
            self.step(+1)
        elif key in ("ctrl p", "meta left"):
            self.step(-1)
        else:
            return False
        return True

    def bell(self) -> None:
        screen = self.loop.screen if self.loop is not None else None
        if isinstance(screen, urwid.display.raw.Screen):
            with contextlib.suppress(OSError):
                screen.write("\a")
                screen.flush()

    # -- drawing ----------------------------------------------------------------------------

    def _walker(self, chat: str) -> urwid.SimpleFocusListWalker[urwid.Widget]:
        walker = self._walkers.get(chat)
        if walker is None:
            walker = urwid.SimpleFocusListWalker([])
            self._walkers[chat] = walker
            self._listboxes[chat] = urwid.ListBox(walker)  # type: ignore[arg-type]
        return walker

    def _show_view(self, chat: str) -> None:
        self._walker(chat)
        self.frame.body = self._listboxes[chat]

    def _ask(self, prompt: str | None) -> None:
        self.edit.secret = prompt is not None
        if prompt is None:
            self.edit.set_mask(None)
            self.edit.set_caption(("prompt", self._caption))
        else:
            self.edit.set_edit_text("")
            self.edit.set_mask("*")
            self.edit.set_caption(("alert", prompt))
        self.redraw()

    def redraw(self) -> None:
        """Draw soon, once for everything changed meanwhile."""
        if self.loop is None or self._draw_pending or self._stopping:
            return
        self._draw_pending = True
        self.loop.event_loop.alarm(0, self._draw)

    def _draw(self) -> None:
        self._draw_pending = False
        if self.loop is not None and not self._stopping:
            self.loop.draw_screen()

    def input_filter(self, keys: list[Key], raw: list[int]) -> list[Key]:
        """Several lines in one read, without paste brackets: a paste, so one message."""
        if "enter" in keys[:-1] and not self.edit.pasting:
            last = len(keys) - 1
            return [NEWLINE_KEY if k == "enter" and i < last else k for i, k in enumerate(keys)]
        return keys

    def stop(self) -> None:
        """End the screen (from any task): urwid's loop must be left from one of its callbacks."""
        if self.loop is None or self._stopping:
            return
        self._stopping = True

        def leave() -> None:
            raise urwid.ExitMainLoop()

        self.loop.event_loop.alarm(0, leave)


def _widget(line: Line) -> urwid.Widget:
    """A line of the scrollback; a message's text wraps under itself, not under its time."""
    markup = line.markup()
    prefix = 0
    while prefix < len(markup) and markup[prefix][0] in ("time", "ref"):
        prefix += 1
    if line.kind not in ("message", "comment") or not 0 < prefix < len(markup):
        return urwid.Text(markup)
    head = markup[:prefix]
    width = sum(urwid.util.calc_width(text, 0, len(text)) for _, text in head)
    return urwid.Columns([(width, urwid.Text(head)), urwid.Text(markup[prefix:])])


@contextlib.asynccontextmanager
async def open_tui(who: str, *, colours: bool | None = None) -> AsyncIterator[TuiConsole]:
    """Run the full-screen console for the duration of the block; the terminal is restored
    when it ends, however it ends. ``colours``: default from ``NO_COLOR`` (no-color.org)."""
    if colours is None:
        colours = not os.environ.get("NO_COLOR")
    tui = TuiConsole(who)
    event_loop = urwid.TrioEventLoop()
    # Bracketed paste is asked for outright: a terminal that lacks it ignores the request, and
    # its pastes are recognised by several lines arriving at once (input_filter).
    screen = urwid.display.raw.Screen(bracketed_paste_mode=True)
    if not colours:
        screen.set_terminal_properties(colors=1)
    loop = urwid.MainLoop(
        tui.frame,
        palette(),
        screen=screen,
        event_loop=event_loop,
        handle_mouse=False,
        unhandled_input=tui.unhandled,
        input_filter=tui.input_filter,
    )
    tui.loop = loop
    with loop.start():
        # Ctrl-C is a key here (it clears the input line), not SIGINT.
        screen.tty_signal_keys(intr="undefined")
        async with trio.open_nursery() as nursery:
            tui._nursery = nursery

            async def run_screen() -> None:
                try:
                    await event_loop.run_async()
                except urwid.InputClosedError:
                    pass  # the terminal went away (hung up): the chat ends with it
                finally:
                    tui.end_of_input()  # the screen ended first (it cannot now): so does the chat

            nursery.start_soon(run_screen)
            try:
                yield tui
            finally:
                tui.stop()
