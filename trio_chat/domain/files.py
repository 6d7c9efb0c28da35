"""Files: uploads up to a limit, attached to messages by id, seen by whoever sees those.

A file is its bytes (stored once per content, named by their SHA-256: never by anything a
client sends) and a record: the name it was uploaded with (a label only), its type, its size,
who uploaded it, and the messages that carry it. Who may download or attach a file: its
uploader, and anyone who can see a message that carries it.
"""

from __future__ import annotations

import secrets

import attrs

from trio_chat import errors

NAME_MAX = 255
FILES_PER_MESSAGE = 10
UNATTACHED_KEPT_MS = 24 * 3600 * 1000
# Types a browser would run or render as a page: served as a download of bytes instead.
ACTIVE_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/javascript",
    "application/javascript",
    "application/ecmascript",
    "text/xml",
    "application/xml",
    "text/xsl",
)


@attrs.frozen
class FileRecord:
    id: str
    sha256: str
    name: str
    size: int
    content_type: str
    uploader: str  # user key
    created_at: int
    carriers: tuple[int, ...] = ()  # cursors of the messages that carry it


def new_id() -> str:
    return "f" + secrets.token_hex(10)


def name_problem(name: str) -> str | None:
    if not 1 <= len(name) <= NAME_MAX or not name.isprintable():
        return f"name must be 1 to {NAME_MAX} printable characters"
    return None


def content_type_of(raw: str | None) -> str:
    """The uploaded type, as a plain ``type/subtype[; params]`` or octet-stream."""
    if not raw:
        return "application/octet-stream"
    value = raw.strip()
    main = value.split(";", 1)[0].strip().lower()
    if (
        main.count("/") != 1
        or not all(part and part.isascii() and part.isprintable() for part in main.split("/"))
        or len(value) > 200
        or not value.isascii()
        or not value.isprintable()
    ):
        return "application/octet-stream"
    return value


def served_type(content_type: str) -> str:
    """What a download says it is: never a type a browser would run."""
    main = content_type.split(";", 1)[0].strip().lower()
    if main in ACTIVE_TYPES or "script" in main or main.endswith("+xml"):
        return "application/octet-stream"
    return content_type


@attrs.define
class Files:
    records: dict[str, FileRecord] = attrs.field(factory=dict)

    def add(self, record: FileRecord) -> None:
        self.records[record.id] = record

    def get(self, file_id: str) -> FileRecord:
        record = self.records.get(file_id)
        if record is None:
            raise errors.FileNotFound(f"there is no file {file_id!r}")
        return record

    def check_attachable(self, ids: list[str]) -> None:
        if not 1 <= len(ids) <= FILES_PER_MESSAGE or len(set(ids)) != len(ids):
            raise errors.InvalidRequest.field(
                "$.files", f"give 1 to {FILES_PER_MESSAGE} different file ids"
            )

    def attach(self, ids: list[str], cursor: int) -> list[FileRecord]:
        """The records once message ``cursor`` carries them (for the caller to store)."""
        updated = []
        for file_id in ids:
            record = self.get(file_id)
            record = attrs.evolve(record, carriers=(*record.carriers, cursor))
            self.records[file_id] = record
            updated.append(record)
        return updated

    def uses_of(self, sha256: str) -> int:
        return sum(1 for r in self.records.values() if r.sha256 == sha256)

    def unattached_before(self, at: int) -> list[FileRecord]:
        return [r for r in self.records.values() if not r.carriers and r.created_at < at]
