"""Token accounting: read usage from OpenAI responses and streams, estimate it when absent.

Pure functions and one small per-stream accumulator; the relay feeds it each SSE event's data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from ..sse import SSEParser

# Scripts a BPE tokenizer spends about one token per character on: CJK ideographs, kana, Hangul
# and full-width forms. Everything else is counted at about four characters per token.
_WIDE = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
_CHARS_PER_TOKEN = 4
# OpenAI's chat format wraps each message in a few tokens (role, separators) and primes the reply
# with three more; see the "How to count tokens with tiktoken" cookbook.
_TOKENS_PER_MESSAGE = 4
_TOKENS_REPLY_PRIMING = 3


@dataclass(slots=True)
class Usage:
    """Token counts for one request, normalised across providers; ``estimated`` when they did not
    come from upstream. ``prompt_tokens`` is the whole input: cache reads (``cached_tokens``) and
    cache writes (``cache_write_tokens``, of which ``cache_write_1h_tokens`` for the one-hour
    cache) are parts of it. ``completion_tokens`` is the whole output, ``reasoning_tokens`` a
    part of it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total(self) -> int:
        """prompt_tokens + completion_tokens."""
        return self.prompt_tokens + self.completion_tokens


class StreamAccounting:
    """Follows one chat.completion.chunk stream: text so far, upstream usage, end and errors.

    ``text`` is the content of choice 0, as the client saw it. The estimate counts more: reasoning
    content, tool-call arguments and the other choices when ``n > 1``, since upstream bills those.
    """

    __slots__ = ("_content", "_deltas", "_extra", "_held", "_identity", "error", "usage")

    def __init__(self) -> None:
        self._held: list[tuple[bool, bytes]] = []  # (whole events not yet split?, bytes)
        self._content: list[str] = []
        self._extra: list[str] = []
        self._deltas = 0  # content/reasoning deltas: servers like llama.cpp send one token each
        self._identity: dict[str, Any] = {}
        self.usage: Usage | None = None
        self.error: Any = None

    def identity(self) -> dict[str, Any]:
        """`id`, `created` and `model` of the stream's first chunk (for an event of our own)."""
        return dict(self._identity)

    @property
    def text(self) -> str:
        """The assistant content of choice 0 received so far."""
        if len(self._content) > 1:
            self._content[:] = ["".join(self._content)]
        return self._content[0] if self._content else ""

    def observe(self, data: bytes) -> bool:
        """Account for one event's data; True if it is a usage-only event (choices == [])."""
        if data == b"[DONE]":
            return False
        chunk = json_object(data)
        if chunk is None:
            return False
        if chunk.get("error") is not None:
            self.error = chunk["error"]
            return False
        if not self._identity:
            self._identity = {k: chunk[k] for k in ("id", "created", "model") if k in chunk}
        usage = _usage(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return False
        if not choices:
            return usage is not None
        for choice in choices:
            if isinstance(choice, dict):
                self._observe_choice(choice)
        return False

    def hold(self, data: bytes) -> None:
        """Keep one event's data to account for in settle(): the relay's lazy alternative to
        observe(), which spends a JSON parse on every event."""
        self._held.append((False, data))

    def hold_events(self, block: bytes) -> None:
        """Keep whole SSE events, not yet split (a block the SSE parser would end exactly at its
        last byte); settle() splits them only if it has to read them."""
        self._held.append((True, block))

    def settle(self, need_text: bool) -> None:
        """Account for the held events, as if each had gone through observe() in order.

        Only events whose bytes could carry ``usage`` or ``error`` are parsed (a key spelled with
        escapes holds ``\\u``); every event is parsed only when the text is needed or no usage came.
        Events read only for their usage stay held, so calling it again with need_text works.
        """
        held, self._held = self._held, []
        if not held:
            return
        if not need_text and self.usage is None and self.error is None:
            for is_block, raw in held:
                if b"usage" in raw or b"error" in raw or b"\\u" in raw:
                    for data in _event_data(raw) if is_block else (raw,):
                        if b"usage" in data or b"error" in data or b"\\u" in data:
                            self._observe_meta(data)
            if self.usage is not None:
                self._held = held + self._held  # kept, so a later settle can still read the text
                return
            self.error = None  # not enough: go over every event again below
        for is_block, raw in held:
            for data in _event_data(raw) if is_block else (raw,):
                self.observe(data)

    def _observe_meta(self, data: bytes) -> None:
        """observe()'s reading of ``usage`` and ``error``, without the choices."""
        chunk = json_object(data)
        if chunk is None:
            return
        if chunk.get("error") is not None:
            self.error = chunk["error"]
            return
        usage = _usage(chunk.get("usage"))
        if usage is not None:
            self.usage = usage

    def _observe_choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = {"content": choice.get("text")}  # legacy completions stream `text`
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._deltas += 1
            if choice.get("index", 0) == 0:
                self._content.append(content)
            else:
                self._extra.append(content)
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            self._deltas += 1
            self._extra.append(reasoning)
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for call in tool_calls:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    self._extra.extend(
                        v
                        for v in (function.get("name"), function.get("arguments"))
                        if isinstance(v, str)
                    )

    def final_usage(self, prompt_estimate: int) -> Usage:
        """Upstream's usage if it sent one, else an estimate from everything generated so far:
        at least one token per content delta received."""
        if self.usage is not None:
            return self.usage
        generated = self.text + "".join(self._extra)
        completion = max(estimate_tokens(generated), self._deltas)
        return Usage(prompt_estimate, completion, estimated=True)


def _event_data(block: bytes) -> list[bytes]:
    """The data of every event in a block of whole events."""
    parser = SSEParser()
    events = parser.feed(block)
    events += parser.flush()
    return [event.data for event in events if event.data is not None]


# A usage-only event has ``"choices": []``: its bytes must hold an empty JSON array.
_EMPTY_ARRAY = re.compile(rb"\[[ \t\r\n]*\]")


def may_hold_usage_only(block: bytes) -> bool:
    """False when no event in ``block`` can be a usage-only event (is_usage_only's byte test)."""
    return _EMPTY_ARRAY.search(block) is not None and (b"usage" in block or b"\\u" in block)


def is_usage_only(data: bytes) -> bool:
    """What observe() returns for ``data`` (a usage-only event), parsing only the events whose
    bytes could be one: an empty array and a ``usage`` key (or a ``\\u`` escape spelling it)."""
    if not may_hold_usage_only(data):
        return False
    chunk = json_object(data)
    return (
        chunk is not None
        and chunk.get("error") is None
        and chunk.get("choices") == []
        and isinstance(chunk.get("usage"), dict)
    )


def usage_from_body(body: bytes) -> tuple[Usage | None, str]:
    """Usage and choice-0 message content of a non-stream response; (None, "") if unreadable."""
    obj = json_object(body)
    if obj is None:
        return None, ""
    content = ""
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            content = message["content"]
        elif isinstance(choices[0].get("text"), str):  # legacy completions
            content = choices[0]["text"]
    return _usage(obj.get("usage")), content


def estimate_tokens(text: str) -> int:
    """Rough token count: one per CJK/kana/Hangul character, one per 4 other characters.

    Close to cl100k/o200k for English prose and for CJK text; at least 1 for non-empty text.
    """
    if not text:
        return 0
    if text.isascii():
        return math.ceil(len(text) / _CHARS_PER_TOKEN)
    wide = len(_WIDE.findall(text))
    return max(1, wide + math.ceil((len(text) - wide) / _CHARS_PER_TOKEN))


def text_parts(content: Any) -> list[str]:
    """The text of a message's content: a string, or the `{"type": "text"}` parts of a list."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [
        part["text"]
        for part in content
        if isinstance(part, dict)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
    ]


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Rough prompt size: text of every message, plus 4 tokens per message and 3 for the reply.

    Content may be a string or a list of parts; only ``{"type": "text"}`` parts are counted.
    """
    total = _TOKENS_REPLY_PRIMING
    for message in messages:
        total += _TOKENS_PER_MESSAGE
        content = message.get("content") if isinstance(message, dict) else None
        total += sum(estimate_tokens(text) for text in text_parts(content))
    return total


# A flat estimate per image in a prompt: its size is unknown before upstream reads it. OpenAI
# bills a high-detail 2048 x 2048 image about 1,100 tokens, Anthropic at most about 1,600.
IMAGE_TOKENS = 1600
_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
# Request fields sent to the model besides the messages' text: counted by their JSON size.
_PROMPT_FIELDS = ("tools", "functions", "tool_choice", "response_format")


def _json_tokens(value: Any) -> int:
    return estimate_tokens(orjson.dumps(value).decode()) if value is not None else 0


def estimate_chat_prompt(payload: dict[str, Any], messages: list[dict[str, Any]]) -> int:
    """A chat request's prompt estimate for its worst-case reservation: the messages' text,
    their tool calls, IMAGE_TOKENS per image part, and tool, function and response_format
    definitions by their JSON size (a request can carry a large prompt outside its text)."""
    total = estimate_prompt_tokens(messages) + image_tokens(messages)
    total += sum(_json_tokens(payload.get(field)) for field in _PROMPT_FIELDS)
    for message in messages:
        total += _json_tokens(message.get("tool_calls"))
        total += _json_tokens(message.get("function_call"))
    return total


def image_tokens(items: Any) -> int:
    """IMAGE_TOKENS for each image part in the content of a list of messages (chat's, or the
    Responses API's input items)."""
    images = 0
    for item in items if isinstance(items, list) else []:
        content = item.get("content") if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else []:
            images += isinstance(part, dict) and part.get("type") in _IMAGE_PARTS
    return images * IMAGE_TOKENS


def _usage(obj: Any) -> Usage | None:
    """Usage from an OpenAI ``usage`` object; None when it is absent or null.

    Cache reads: ``prompt_tokens_details.cached_tokens`` (OpenAI), else DeepSeek's
    ``prompt_cache_hit_tokens``. Cache writes: ``prompt_tokens_details.cache_write_tokens`` and
    ``cache_write_1h_tokens``, which the gateway's own translations of Anthropic and Gemini
    answers carry (OpenAI has no such field). Reasoning: ``completion_tokens_details``."""
    if not isinstance(obj, dict):
        return None
    prompt = token_count(obj.get("prompt_tokens"))
    completion = token_count(obj.get("completion_tokens"))
    details = obj.get("prompt_tokens_details")
    if isinstance(details, dict):
        cached = token_count(details.get("cached_tokens"))
        writes = token_count(details.get("cache_write_tokens"))
        writes_1h = token_count(details.get("cache_write_1h_tokens"))
    else:
        cached, writes, writes_1h = token_count(obj.get("prompt_cache_hit_tokens")), 0, 0
    out = obj.get("completion_tokens_details")
    reasoning = token_count(out.get("reasoning_tokens")) if isinstance(out, dict) else 0
    return normalised(prompt, completion, cached, writes, writes_1h, reasoning)


def normalised(
    prompt: int,
    completion: int,
    cached: int = 0,
    writes: int = 0,
    writes_1h: int = 0,
    reasoning: int = 0,
) -> Usage:
    """A Usage whose parts never exceed their wholes (a provider's inconsistent counts are
    clipped, never billed twice)."""
    cached = min(cached, prompt)
    writes = min(writes, prompt - cached)
    return Usage(
        prompt,
        completion,
        cached_tokens=cached,
        cache_write_tokens=writes,
        cache_write_1h_tokens=min(writes_1h, writes),
        reasoning_tokens=min(reasoning, completion),
    )


def json_object(data: bytes) -> dict[str, Any] | None:
    """`data` as a JSON object, or None when it is not one (unreadable, or another JSON type)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def token_count(value: Any) -> int:
    """A token count from JSON: a non-negative integer, else 0 (booleans are not counts)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
