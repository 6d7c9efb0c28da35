"""Files in the interactive chat (API.md §16): ``/upload`` sends one, ``/download`` saves one.

An upload streams the file from disk as the request body, a chunk at a time; a download
streams the answer into a file made for it, which never replaces an existing one. Files of
:data:`~.files.PROGRESS_FROM` and more show a progress bar on the console while they travel.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from .commands import Command, Download, Upload
from .errors import ClientError, CommandError
from .files import (
    PROGRESS_FROM,
    Progress,
    UnsafeNameError,
    available_path,
    content_type_for,
    create_new,
    format_size,
    safe_name,
)
from .models import FileInfo, Message
from .render import clean

if TYPE_CHECKING:
    from .session import ChatSession

__all__ = ["FILE_COMMANDS", "FileCommands", "LocalFileError", "target_path", "why_named"]

FILE_COMMANDS = (Upload, Download)


class LocalFileError(CommandError):
    """Something about a file on this machine: not there, not readable, would overwrite …"""


def target_path(given: str | None, server_name: str | None, file_id: str, cwd: Path) -> Path:
    """Where a download goes: ``given`` (a file that must not exist yet, or a directory to
    put it in: one that exists, or any ``PATH/``), else the current directory; in a directory,
    under the server's name made safe (:func:`~.files.safe_name`), with `` (1)`` etc. added
    rather than overwrite."""
    directory = cwd
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_absolute():
            path = cwd / path
        if given.endswith(("/", os.sep)) and not path.is_dir():
            raise LocalFileError(f"there is no directory {path}")
        if not path.is_dir():
            if path.exists() or path.is_symlink():
                raise LocalFileError(f"{path} exists already; nothing was overwritten")
            if not path.parent.is_dir():
                raise LocalFileError(f"there is no directory {path.parent}")
            return path
        directory = path
    try:
        name = safe_name(server_name if server_name is not None else file_id)
    except UnsafeNameError as exc:
        raise LocalFileError(f"{exc}; give a PATH to save it as: /download ID PATH") from None
    return available_path(directory, name)


def why_named(path: Path, server_name: str | None) -> str:
    """Why a download saved in a directory is not called what the server calls it, if so."""
    if server_name is None or path.name == server_name:
        return ""
    safe = safe_name(server_name)
    notes = []
    if safe != server_name:
        notes.append(f"the server calls it {clean(server_name)!r}")
    if path.name != safe:
        notes.append(f"{clean(safe)} was there already")
    return f" ({'; '.join(notes)})"


class FileCommands:
    def __init__(self, session: ChatSession, cwd: Callable[[], Path] = Path.cwd) -> None:
        self.session = session
        self._cwd = cwd
        self.known: dict[str, FileInfo] = {}  # files shown in messages, by id

    def saw(self, message: Message) -> None:
        for file in message.files:
            self.known[file.id] = file

    async def execute(self, command: Command) -> None:
        if isinstance(command, Upload):
            await self._upload(command)
        elif isinstance(command, Download):
            await self._download(command)

    @contextlib.contextmanager
    def _progress(self, progress: Progress) -> Iterator[Callable[[int, int], None]]:
        """A callback for the transfer that keeps the console's progress bar up to date."""
        console = self.session.console
        shown = progress.total >= PROGRESS_FROM

        def update(done: int, total: int) -> None:
            progress.done, progress.total = done, total
            if shown:
                console.progress(progress.describe())

        if shown:
            console.progress(progress.describe())
        try:
            yield update
        finally:
            if shown:
                console.progress(None)

    async def _upload(self, command: Upload) -> None:
        s = self.session
        path = Path(command.path).expanduser()
        try:
            info = await trio.Path(path).stat()
        except OSError as exc:
            raise LocalFileError(f"cannot read {path}: {exc.strerror}; nothing was sent") from None
        if not path.is_file():
            raise LocalFileError(f"{path} is not a file; nothing was sent")
        if info.st_size == 0:
            raise LocalFileError(f"{path} is empty, and the server takes no empty files")
        if not os.access(path, os.R_OK):
            raise LocalFileError(f"cannot read {path}: permission denied; nothing was sent")
        conversation = s.sendable()
        to, chat = s.destination(conversation)
        with self._progress(Progress("uploading", clean(path.name), info.st_size)) as update:
            uploaded = await s.api.upload(
                path, content_type=content_type_for(path), progress=update
            )
        try:
            message = await s.api.send(command.text, to, chat=chat, files=[uploaded.id])
        except ClientError as exc:
            raise UploadedNotSentError(exc) from exc
        s.show_message(message)

    async def _download(self, command: Download) -> None:
        s = self.session
        file_id = s.file_refs.resolve(command.ref)
        async with s.api.download(file_id) as answer:
            known = self.known.get(file_id)
            name = answer.name or (known.name if known is not None else None)
            cwd = self._cwd()
            path = target_path(command.path, name, file_id, cwd)
            # Put in a directory under the server's name, or named by the user (a file PATH)?
            in_directory = command.path is None or (cwd / Path(command.path).expanduser()).is_dir()
            size = answer.size if answer.size is not None else (known.size if known else 0)
            try:
                target = create_new(path)
            except OSError as exc:
                raise LocalFileError(f"cannot write {path}: {exc.strerror}") from None
            written = 0
            complete = False
            try:
                with (
                    self._progress(Progress("downloading", clean(path.name), size)) as update,
                    target,
                ):
                    async for chunk in answer.chunks():
                        await trio.to_thread.run_sync(target.write, chunk)
                        written += len(chunk)
                        update(written, max(size, written))
                complete = True
            finally:
                if not complete:
                    with contextlib.suppress(OSError):
                        path.unlink()
        note = why_named(path, name) if in_directory else ""
        s.notice(f"saved {format_size(written)} to {clean(str(path))}{note}")


class UploadedNotSentError(ClientError):
    """The file went up, the message carrying it did not."""

    def __init__(self, cause: ClientError) -> None:
        self.cause = cause
        super().__init__(str(cause))
