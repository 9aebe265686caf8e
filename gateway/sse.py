"""Incremental Server-Sent-Events parser for relaying upstream streams byte-exactly.

Bytes go in with SSEParser.feed(); whole events come out, each with the exact bytes it was made of.

Rules:
- Lines end with CRLF, LF or a bare CR, in any mix (WHATWG SSE spec). An event ends at a blank
  line, and its ``raw`` includes that blank line's terminator.
- Concatenating ``raw`` of every event returned by feed() and flush() reproduces the input exactly,
  so a relay may forward or drop single events without disturbing its neighbours. Stray blank
  lines therefore come out as empty events (no data, not a comment).
- A CR as the very last byte may be the first half of a CRLF. When it would end an event, the
  event waits for the next byte (or flush()); it is never taken for a blank line on its own.
- No per-byte Python loops: event ends are found with bytes.find on the buffer. Without a CR in
  it, that is one find for b"\\n\\n" and one probe for b"\\r" per event.
"""

from __future__ import annotations

from dataclasses import dataclass

_LF = 0x0A
_CR = 0x0D


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One event: its exact bytes and the fields a relay needs to decide what to do with it."""

    raw: bytes
    """The event's bytes, terminating blank line included (for flush(): whatever remained)."""
    data: bytes | None
    """The ``data:`` values joined with b"\\n"; None when the event has no data field."""


class SSEParser:
    """Splits a byte stream into SSEEvents, keeping any incomplete event until more bytes arrive."""

    __slots__ = ("_buf", "_scan")

    def __init__(self) -> None:
        self._buf = b""
        # Where the search for a blank line resumes in _buf: bytes before it were already searched.
        self._scan = 0

    @property
    def idle(self) -> bool:
        """True when no incomplete event is buffered."""
        return not self._buf

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; return every event that they complete, in stream order."""
        if not chunk:
            return []
        buf = self._buf + chunk if self._buf else bytes(chunk)
        return self._drain(buf, self._scan, final=False)

    def flush(self) -> list[SSEEvent]:
        """End of stream: return the remaining events, an unterminated tail included, and reset."""
        buf, self._buf, scan, self._scan = self._buf, b"", self._scan, 0
        if not buf:
            return []
        events = self._drain(buf, scan, final=True)
        if self._buf:
            events.append(_parse_event(self._buf))
            self._buf, self._scan = b"", 0
        return events

    def _drain(self, buf: bytes, scan: int, *, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        start = 0
        while (end := _event_end(buf, start, scan, final)) >= 0:
            # The common case (one whole event per chunk) slices the full range: no copy.
            events.append(_parse_event(buf[start:end]))
            start = scan = end
        rest = buf[start:]
        self._buf = rest
        # A blank line is found by a two-byte pattern, so the last two bytes must be searched again.
        self._scan = max(0, len(rest) - 2)
        return events


def _event_end(buf: bytes, start: int, scan: int, final: bool) -> int:
    """Index just past the blank line that ends the event at ``start``, or -1 if none yet.

    A blank line starts right after a terminator, so it begins at i + 1 for the first
    b"\\n\\n", b"\\n\\r" or b"\\r\\r" at i (b"\\r\\n" is one CRLF, not two terminators),
    or at ``start`` itself when the event opens with a terminator.
    """
    n = len(buf)
    if start >= n:
        return -1
    first = buf[start]
    if first in (_LF, _CR):
        return _after_terminator(buf, start, final)
    scan = max(scan, start)
    i = buf.find(b"\n\n", scan)
    hi = i + 2 if i >= 0 else n
    if buf.find(b"\r", scan, hi) >= 0:
        for pattern in (b"\n\r", b"\r\r"):
            j = buf.find(pattern, scan, hi)
            if j >= 0:
                i, hi = j, j + 2
    if i < 0:
        return -1
    return _after_terminator(buf, i + 1, final)


def _after_terminator(buf: bytes, at: int, final: bool) -> int:
    """Index past the line terminator at ``at``; -1 if a final CR might still become CRLF."""
    if buf[at] == _LF:
        return at + 1
    if at + 1 < len(buf):
        return at + 2 if buf[at + 1] == _LF else at + 1
    return at + 1 if final else -1


def _parse_event(raw: bytes) -> SSEEvent:
    """Read the fields of one event's bytes. Only ``data`` is kept; other fields are skipped."""
    # The shapes providers send, `data: <json>` alone or after an `event:` line, are read with
    # three searches: one `data: ` line and no other occurrence of `data` in the event.
    if b"\r" not in raw:
        i = raw.find(b"data: ")
        if i == 0 or (i > 0 and raw[i - 1] == _LF and raw.find(b"data", 0, i) < 0):
            end = raw.find(b"\n", i)
            if end >= 0 and raw.find(b"data", end) < 0:
                return SSEEvent(raw=raw, data=raw[i + 6 : end])
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in raw else raw
    data: list[bytes] = []
    for line in text.split(b"\n"):
        if not line or line[0] == 0x3A:  # b":" starts a comment line
            continue
        name, colon, value = line.partition(b":")
        if name != b"data":
            continue
        if colon and value[:1] == b" ":
            value = value[1:]
        data.append(value)
    return SSEEvent(raw=raw, data=b"\n".join(data) if data else None)
