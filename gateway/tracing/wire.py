"""OTLP trace bodies (an ExportTraceServiceRequest in protobuf) written straight from the gateway's
span records: what the OTLP/HTTP receivers of the Collector, Jaeger and Tempo decode.

Rules:
- Field numbers and wire types are those of opentelemetry-proto's trace/v1, common/v1 and
  resource/v1; the tests decode every body with opentelemetry-proto itself.
- Pure and cheap: bytes are joined, never re-parsed. A KeyValue that repeats (operation,
  provider, model, user, status) is encoded once and kept, so a span costs little more than its
  unique values. Any attribute value encodes; nothing here raises on a span.
"""

from __future__ import annotations

import struct

from .attributes import Attributes

SERVER = 2  # Span.SpanKind
CLIENT = 3
SAMPLED = 0x01  # W3C trace flags, bits 0-7 of Span.flags
_HAS_IS_REMOTE = 0x100  # Span.flags: whether the parent is remote is known ...
_IS_REMOTE = 0x200  # ... and it is

_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_BYTE = [bytes((i,)) for i in range(256)]
_INT64 = range(-(1 << 63), 1 << 63)
_ERROR_STATUS = b"\x7a\x02\x18\x02"  # Span.status (15) = Status{code (3): STATUS_CODE_ERROR}
_KEPT_MAX = 4096  # encoded KeyValues kept; the set starts again when full


class SpanRecord:
    """One span as the request path fills it and the exporter writes it: W3C ids as integers,
    times in Unix nanoseconds (end 0 while open), plain attributes and (time, name) events."""

    __slots__ = (
        "attributes",
        "encoded",
        "end_ns",
        "error",
        "events",
        "kind",
        "name",
        "parent_id",
        "remote_parent",
        "span_id",
        "start_ns",
        "trace_id",
        "trace_state",
    )

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        parent_id: int,
        name: str,
        kind: int,
        start_ns: int,
        attributes: Attributes,
        *,
        remote_parent: bool = False,
        trace_state: str = "",
        encoded: bytes = b"",
    ):
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id  # 0: a root span
        self.remote_parent = remote_parent
        self.trace_state = trace_state
        self.name = name
        self.kind = kind
        self.start_ns = start_ns
        self.end_ns = 0
        self.attributes = attributes
        self.encoded = encoded  # more attributes, already written by `attribute_fields`
        self.events: list[tuple[int, str]] = []
        self.error = False  # the span's status is ERROR (else unset)


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint of 0 <= n < 2**64."""
    if n < 0x80:
        return _BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag, the payload's length, the payload."""
    return tag + varint(len(payload)) + payload


def any_value(value: object) -> bytes:
    """An AnyValue message: string (1), bool (2), int64 (3), double (4) or array (5); anything
    else as its string form."""
    kind = type(value)
    if kind is str:
        return _field(b"\x0a", value.encode(errors="replace"))  # type: ignore[attr-defined]
    if kind is int and value in _INT64:
        return b"\x18" + varint(value & 0xFFFFFFFFFFFFFFFF)  # type: ignore[operator]
    if kind is float:
        return b"\x21" + _DOUBLE(value)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is list or kind is tuple:
        items = b"".join(_field(b"\x0a", any_value(v)) for v in value)  # type: ignore[attr-defined]
        return _field(b"\x2a", items)
    return _field(b"\x0a", str(value).encode(errors="replace"))


def key_value(key: str, value: object) -> bytes:
    """A KeyValue message: key (1) and value (2)."""
    return _field(b"\x0a", key.encode()) + _field(b"\x12", any_value(value))


_heads: dict[str, bytes] = {}  # a KeyValue's key (1) and the tag of its value (2), per key
_kept: dict[tuple[str, object], bytes] = {}


def _attribute(key: str, value: object) -> bytes:
    """Span.attributes (field 9) holding one KeyValue; a string or integer one is kept."""
    head = _heads.get(key)
    if head is None:
        head = _heads[key] = _field(b"\x0a", key.encode()) + b"\x12"
    if isinstance(value, str):
        raw = value.encode(errors="replace")
        encoded = b"\x0a" + varint(len(raw)) + raw
    else:
        encoded = any_value(value)
    kind = type(value)
    pair = head + varint(len(encoded)) + encoded
    found = b"\x4a" + varint(len(pair)) + pair
    if kind is str or kind is int:
        if len(_kept) >= _KEPT_MAX:
            _kept.clear()
        _kept[(key, value)] = found
    return found


def attribute_fields(attributes: Attributes) -> bytes:
    """Span.attributes fields for `attributes`, for a record's `encoded` (a set that repeats
    from span to span is written once)."""
    return b"".join(_attribute(key, value) for key, value in attributes.items())


_names: dict[str, bytes] = {}


def span(record: SpanRecord) -> bytes:
    """ScopeSpans.spans (field 2) holding one Span message."""
    parts = [
        b"\x0a\x10",  # trace_id (1), 16 bytes
        record.trace_id.to_bytes(16, "big"),
        b"\x12\x08",  # span_id (2), 8 bytes
        record.span_id.to_bytes(8, "big"),
    ]
    if record.trace_state:
        parts.append(_field(b"\x1a", record.trace_state.encode()))
    if record.parent_id:
        parts += (b"\x22\x08", record.parent_id.to_bytes(8, "big"))
    name_field = _names.get(record.name)
    if name_field is None:
        if len(_names) >= _KEPT_MAX:
            _names.clear()
        name_field = _names[record.name] = _field(b"\x2a", record.name.encode(errors="replace"))
    parts += (
        name_field,
        b"\x30",  # kind (6)
        _BYTE[record.kind],
        b"\x39",  # start_time_unix_nano (7), fixed64
        _FIXED64(record.start_ns),
        b"\x41",  # end_time_unix_nano (8), fixed64
        _FIXED64(record.end_ns),
    )
    if record.encoded:
        parts.append(record.encoded)
    kept = _kept
    for item in record.attributes.items():
        kind = type(item[1])
        found = kept.get(item) if kind is str or kind is int else None
        parts.append(_attribute(*item) if found is None else found)
    for at_ns, name in record.events:
        event = b"\x09" + _FIXED64(at_ns) + _field(b"\x12", name.encode())
        parts.append(_field(b"\x5a", event))
    if record.error:
        parts.append(_ERROR_STATUS)
    flags = SAMPLED | _HAS_IS_REMOTE | (_IS_REMOTE if record.remote_parent else 0)
    parts += (b"\x85\x01", _FIXED32(flags))  # flags (16), fixed32
    return _field(b"\x12", b"".join(parts))


class Envelope:
    """The ExportTraceServiceRequest around a batch of spans: one ResourceSpans (the service's
    resource) holding one ScopeSpans (the gateway's instrumentation scope)."""

    def __init__(self, service_name: str, scope_name: str, scope_version: str):
        attribute = _field(b"\x0a", key_value("service.name", service_name))
        self.resource = _field(b"\x0a", attribute)  # ResourceSpans.resource (1)
        scope = _field(b"\x0a", scope_name.encode()) + _field(b"\x12", scope_version.encode())
        self.scope = _field(b"\x0a", scope)  # ScopeSpans.scope (1)

    def wrap(self, spans: bytes) -> bytes:
        """The whole request body; `spans` is `span()`s joined."""
        scope_spans = _field(b"\x12", self.scope + spans)  # ResourceSpans.scope_spans (2)
        return _field(b"\x0a", self.resource + scope_spans)  # resource_spans (1)
