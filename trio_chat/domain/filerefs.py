"""A file as a message carries it (its record lives in ``files``)."""

from __future__ import annotations

import attrs


@attrs.frozen
class FileRef:
    id: str
    name: str
    size: int
    content_type: str
