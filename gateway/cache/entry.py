"""One cached answer: when it was made, its status, content type and usage, and its body (the
JSON answer, or the stream's SSE bytes as upstream sent them). Stored as one byte string."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import orjson

MAGIC = b"GWC1"
HEAD = struct.Struct(">4sI")  # magic, then the header's length


@dataclass(frozen=True, slots=True)
class Entry:
    """`usage` holds the answer's token counts as the accounting module orders them."""

    stored_at: float  # Unix time
    status: int
    content_type: str
    usage: tuple[int, ...]
    body: bytes

    def encode(self) -> bytes:
        header = orjson.dumps([self.stored_at, self.status, self.content_type, self.usage])
        return HEAD.pack(MAGIC, len(header)) + header + self.body

    @classmethod
    def decode(cls, value: bytes) -> Entry | None:
        """The entry, or None for bytes this version does not read (they count as a miss)."""
        if len(value) < HEAD.size:
            return None
        magic, size = HEAD.unpack_from(value)
        if magic != MAGIC or len(value) < HEAD.size + size:
            return None
        try:
            at, status, content_type, usage = orjson.loads(value[HEAD.size : HEAD.size + size])
            return cls(
                float(at), int(status), str(content_type), tuple(usage), value[HEAD.size + size :]
            )
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.stored_at)
