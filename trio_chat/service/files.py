"""Files: streaming uploads to disk, downloads for whoever may see them, and clean-up.

An upload never sits in memory whole: chunks go to a temporary file as they arrive (the
hash computed on the way), which is fsynced and renamed into place before its record is
committed and the upload answered. A file may be seen by its uploader and by anyone who can
see a message carrying it -- asked of the one visibility rule, message by message.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import trio

from trio_chat import errors
from trio_chat.domain import files
from trio_chat.domain.filerefs import FileRef
from trio_chat.domain.files import FileRecord
from trio_chat.domain.models import User, message_id
from trio_chat.service.core import Core, writes
from trio_chat.storage import Batch

log = logging.getLogger("trio_chat.service")


class FileKeeping:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.files = core.files
        self.blobs = core.blobs
        core.hourly.append(self._forget_unattached)

    async def upload(
        self,
        user: User,
        name: str,
        content_type: str | None,
        chunks: AsyncIterator[bytes],
        limit: int,
    ) -> FileRecord:
        if problem := files.name_problem(name):
            raise errors.InvalidRequest.field("$.name", problem)
        temp = self.blobs.temp_path()
        digest = hashlib.sha256()
        size = 0
        try:
            async with await trio.open_file(temp, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise errors.PayloadTooLarge(f"the file is over the limit of {limit} bytes")
                    digest.update(chunk)
                    await out.write(chunk)
                if size == 0:
                    raise errors.InvalidRequest("the file is empty")
                await out.flush()
                await trio.to_thread.run_sync(_fsync, out.wrapped)
            sha256 = digest.hexdigest()
            await trio.to_thread.run_sync(self.blobs.keep, temp, sha256)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(lambda: temp.unlink(missing_ok=True))
            raise
        record = FileRecord(
            id=files.new_id(),
            sha256=sha256,
            name=name,
            size=size,
            content_type=files.content_type_of(content_type),
            uploader=user.key,
            created_at=self.core.now(),
        )
        await self._record(record)
        log.info("file uploaded id=%s size=%d by=%s", record.id, size, user.name)
        return record

    @writes
    async def _record(self, record: FileRecord) -> None:
        self.files.add(record)

        def undo() -> None:
            self.files.records.pop(record.id, None)

        await self.core.commit(Batch(files={record.id: record}), undo=undo)

    async def may_see(self, user: User, record: FileRecord) -> bool:
        if record.uploader == user.key:
            return True
        for cursor in record.carriers:
            if await self.core.visible_message(user, message_id(cursor)) is not None:
                return True
        return False

    async def find(self, user: User, file_id: str) -> tuple[FileRecord, Path]:
        """A file ``user`` may see, and where its bytes are; 404 alike for anything else."""
        record = self.files.records.get(file_id)
        if record is None or not await self.may_see(user, record):
            raise errors.FileNotFound(f"there is no file {file_id!r}")
        return record, self.blobs.path(record.sha256)

    async def refs(self, user: User, ids: list[str]) -> tuple[FileRef, ...]:
        """The files a message may carry, checked (``$.files``); 404 for any not the user's
        to attach."""
        self.files.check_attachable(ids)
        found = []
        for file_id in ids:
            record, _ = await self.find(user, file_id)
            found.append(FileRef(record.id, record.name, record.size, record.content_type))
        return tuple(found)

    async def _forget_unattached(self) -> None:
        old = self.files.unattached_before(self.core.now() - files.UNATTACHED_KEPT_MS)
        if old:
            await self.core.forget_files(old)


def _fsync(f: BinaryIO) -> None:
    os.fsync(f.fileno())
