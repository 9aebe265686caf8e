"""What the response cache may answer, and the name of an entry: a SHA-256 digest over the
endpoint, the answer's form, the cache scope and every field of the body that can change the answer.

Rules:
- Cacheable: `temperature` 0 (embeddings: none, or 0); not a request whose answer depends on
  state kept elsewhere (`session_id`, `previous_response_id`, `conversation`) or that does not
  answer at once (`background`).
- Left out of the digest, since they cannot change the answer: `stream` (the form, JSON or SSE,
  is part of the digest instead), `stream_options` (the usage event is replayed as asked),
  `user`, `metadata`, `safety_identifier` and `prompt_cache_key`. Everything else is in it,
  fields the gateway does not know included: a new field can only make more misses.
- The body is serialised with sorted keys, so the order of a client's fields never matters.
"""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Any

import orjson

VERSION = "1"  # bumped when the digest or the entry format changes: old entries just miss
UNSEEN = frozenset(
    {"stream", "stream_options", "user", "metadata", "safety_identifier", "prompt_cache_key"}
)
STATEFUL = ("session_id", "previous_response_id", "conversation", "background")


class Mode(Enum):
    """What the request's `x-gateway-cache` header asks for."""

    USE = "use"
    BYPASS = "bypass"  # `false`, `bypass`, `no`, `off`: neither read nor written
    REFRESH = "refresh"  # asked upstream again; the answer replaces the entry


def mode_of(header: str | None) -> Mode:
    if header is None:
        return Mode.USE
    value = header.strip().lower()
    if value in ("false", "bypass", "no", "off", "0"):
        return Mode.BYPASS
    if value == "refresh":
        return Mode.REFRESH
    return Mode.USE


def cacheable(endpoint: str, body: dict[str, Any]) -> bool:
    """Whether an answer to `body` may be kept and replayed (deterministic, stateless)."""
    temperature = body.get("temperature")
    if endpoint == "embeddings":
        if temperature is not None and temperature != 0:
            return False
    elif temperature != 0 or isinstance(temperature, bool):
        return False
    return not any(body.get(field) for field in STATEFUL)


def cache_key(prefix: str, endpoint: str, stream: bool, scope: str, body: dict[str, Any]) -> str:
    """The entry's key: `<prefix>:cache:{<scope tag>}:<digest>`. The Redis hash tag is the
    scope's, so a Redis Cluster keeps one tenant's entries on one slot."""
    seen = {k: v for k, v in body.items() if k not in UNSEEN}
    form = "sse" if stream else "json"
    material = orjson.dumps([VERSION, endpoint, form, scope, seen], option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(material).hexdigest()
    tag = hashlib.sha256(scope.encode()).hexdigest()[:16]
    return f"{prefix}:cache:{{{tag}}}:{digest}"
