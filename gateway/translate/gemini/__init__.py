"""Google Gemini answers, streams and errors as OpenAI's; the whole Gemini translation's face.
Pure: bytes in, bytes out; no I/O, no clock (``created`` and ids are passed in).

Rules:
- One choice per candidate, ``index`` = the candidate's (protobuf JSON may omit a 0 there).
- Tool-call ids are the gateway's own (Gemini has none): ``call_<last 12 of chunk_id>_<n>``, n
  counting the answer's function calls in order. A ``thoughtSignature`` on a ``functionCall`` part
  travels on its tool call as ``extra_content.google.thought_signature``.
- Streams: nothing is buffered but an incomplete SSE event; each Gemini event becomes chunks as it
  completes, so every split of the input bytes gives the same output bytes. ``usageMetadata`` is
  cumulative: the last one counts.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from ...errors import ProviderError, clip, stream_error_event
from ...sse import SSEEvent, SSEParser
from .request import chat_to_gemini, embeddings_to_gemini

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
# Google's canonical status names, for error bodies that lack one.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


# --- answer ----------------------------------------------------------------------------------


def _load(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProviderError("The provider sent an answer that is not JSON.") from None


def gemini_to_chat(body: bytes, public_model: str, chunk_id: str, created: int) -> bytes:
    """A GenerateContentResponse as an OpenAI chat.completion, one choice per candidate."""
    answer = _load(body)
    if not isinstance(answer, dict):
        raise ProviderError("The provider sent an answer that is not a JSON object.")
    candidates = answer.get("candidates")
    choices: list[dict[str, Any]] = []
    calls = 0
    for candidate in candidates if isinstance(candidates, list) else []:
        if not isinstance(candidate, dict):
            continue
        texts: list[str] = []
        thoughts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for part in _parts(candidate):
            if isinstance(part.get("functionCall"), dict):
                call = _tool_call_start(part, _call_id(chunk_id, calls))
                call["function"]["arguments"] = _args_json(part["functionCall"])
                tool_calls.append(call)
                calls += 1
            elif isinstance(part.get("text"), str):
                (thoughts if part.get("thought") is True else texts).append(part["text"])
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if tool_calls and not texts else "".join(texts),
        }
        if thoughts:
            message["reasoning_content"] = "".join(thoughts)
        if tool_calls:
            message["tool_calls"] = tool_calls
        finish = _finish_reason(candidate.get("finishReason"), bool(tool_calls)) or "stop"
        choices.append(
            {
                "index": _index(candidate),
                "message": message,
                "finish_reason": finish,
                "logprobs": None,
            }
        )
    if not choices:  # the prompt itself was blocked: Gemini sends no candidate at all
        blocked = isinstance(answer.get("promptFeedback"), dict) and bool(
            answer["promptFeedback"].get("blockReason")
        )
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": ""},
                "finish_reason": "content_filter" if blocked else "stop",
                "logprobs": None,
            }
        )
    completion: dict[str, Any] = {
        "id": chunk_id,
        "object": "chat.completion",
        "created": created,
        "model": public_model,
        "choices": sorted(choices, key=lambda c: c["index"]),
    }
    usage = _usage(answer.get("usageMetadata"))
    if usage is not None:
        completion["usage"] = usage
    return orjson.dumps(completion)


def _parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _index(candidate: dict[str, Any]) -> int:
    """The candidate's ``index``; protobuf JSON may leave out a zero, so a missing one is 0."""
    index = candidate.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else 0


def _call_id(chunk_id: str, n: int) -> str:
    return f"call_{chunk_id[-12:]}_{n}"


def _tool_call_start(part: dict[str, Any], call_id: str) -> dict[str, Any]:
    """A tool call with empty arguments, and the part's thought signature when it has one."""
    name = part["functionCall"].get("name")
    call: dict[str, Any] = {
        "id": call_id,
        "type": "function",
        "function": {"name": name if isinstance(name, str) else "", "arguments": ""},
    }
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return call


def _args_json(function_call: dict[str, Any]) -> str:
    args = function_call.get("args")
    return orjson.dumps(args if isinstance(args, dict) else {}).decode()


def _finish_reason(reason: Any, called: bool) -> str | None:
    """OpenAI's finish_reason for Gemini's; None while the candidate is still going."""
    if not isinstance(reason, str) or reason in ("", "FINISH_REASON_UNSPECIFIED"):
        return None
    if called:
        return "tool_calls"
    if reason == "MAX_TOKENS":
        return "length"
    return "content_filter" if reason in _FILTERED else "stop"


def _usage(metadata: Any) -> dict[str, Any] | None:
    if not isinstance(metadata, dict):
        return None

    def count(key: str) -> int:
        value = metadata.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt, thoughts = count("promptTokenCount"), count("thoughtsTokenCount")
    completion = count("candidatesTokenCount") + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": count("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


# --- errors ----------------------------------------------------------------------------------


def _google_error(body: bytes) -> dict[str, Any] | None:
    """The ``error`` object of a Google error body, also when wrapped in a JSON list."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None


def error_to_openai(status: int, body: bytes) -> bytes:
    """Google's error body as OpenAI's, keeping Google's message and status name."""
    error = _google_error(body) or {}
    message = error.get("message")
    if not isinstance(message, str) or not message:
        text = body.decode("utf-8", "replace").strip()
        message = clip(text, 500) if text else f"The provider answered HTTP {status}."
    code = error.get("status")
    return orjson.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error" if 400 <= status < 500 else "server_error",
                "param": None,
                "code": code if isinstance(code, str) and code else _STATUS_NAMES.get(status),
            }
        }
    )


# --- streams ---------------------------------------------------------------------------------


class GeminiStream:
    """Turns the bytes of ``streamGenerateContent?alt=sse`` into OpenAI chat.completion.chunk
    events; only candidates with index < n are streamed."""

    __slots__ = (
        "_calls",
        "_chunk_id",
        "_closed",
        "_failed",
        "_finished",
        "_head",
        "_n",
        "_parser",
        "_per_choice",
        "_started",
        "_usage",
    )

    def __init__(self, public_model: str, chunk_id: str, created: int, n: int = 1) -> None:
        self._parser = SSEParser()
        self._chunk_id = chunk_id
        self._head: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": public_model,
        }
        self._n = max(1, n)
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._per_choice: dict[int, int] = {}  # candidate index -> tool calls started
        self._calls = 0  # tool calls over all candidates, for the ids
        self._usage: dict[str, Any] | None = None
        self._failed = False
        self._closed = False

    def feed(self, raw: bytes) -> bytes:
        """Bytes from upstream, split anywhere; the OpenAI events they complete."""
        if self._failed or self._closed:
            return b""
        return self._events(self._parser.feed(raw))

    def close(self) -> bytes:
        """End of the upstream stream: usage chunk and [DONE], or one stream_error event."""
        if self._failed or self._closed:
            return b""
        out = self._events(self._parser.flush())
        self._closed = True
        if self._failed:
            return out
        if not self._finished or not self._started <= self._finished:
            return out + self._fail("The provider's stream ended before the answer was complete.")
        if self._usage is not None:
            out += self._chunk([], self._usage)
        return out + b"data: [DONE]\n\n"

    def _events(self, events: list[SSEEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if event.data is not None and not self._failed:
                out.append(self._on_data(event.data))
        return b"".join(out)

    def _on_data(self, data: bytes) -> bytes:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail("The provider sent a stream event that is not JSON.")
        if isinstance(obj, list) and obj:
            obj = obj[0]
        if not isinstance(obj, dict):
            return self._fail("The provider sent a stream event that is not a JSON object.")
        if obj.get("error") is not None:
            error = obj["error"]
            message = error.get("message") if isinstance(error, dict) else None
            if not isinstance(message, str) or not message:
                message = "The provider reported an error during the stream."
            return self._fail(message)
        usage = _usage(obj.get("usageMetadata"))
        if usage is not None:
            self._usage = usage  # cumulative: the last one counts
        out: list[bytes] = []
        candidates = obj.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else []:
            if isinstance(candidate, dict):
                out.append(self._on_candidate(candidate, _index(candidate)))
        feedback = obj.get("promptFeedback")
        if not candidates and isinstance(feedback, dict) and feedback.get("blockReason"):
            out.append(self._start(0) + self._finish(0, "content_filter"))
        return b"".join(out)

    def _on_candidate(self, candidate: dict[str, Any], index: int) -> bytes:
        if index >= self._n or index in self._finished:
            return b""
        out = [self._start(index)]
        for part in _parts(candidate):
            if isinstance(part.get("functionCall"), dict):
                k = self._per_choice.get(index, 0)
                self._per_choice[index] = k + 1
                start = {
                    "index": k,
                    **_tool_call_start(part, _call_id(self._chunk_id, self._calls)),
                }
                self._calls += 1
                arguments = {
                    "index": k,
                    "function": {"arguments": _args_json(part["functionCall"])},
                }
                out.append(self._delta(index, {"tool_calls": [start]}))
                out.append(self._delta(index, {"tool_calls": [arguments]}))
            elif isinstance(part.get("text"), str) and part["text"]:
                key = "reasoning_content" if part.get("thought") is True else "content"
                out.append(self._delta(index, {key: part["text"]}))
        finish = _finish_reason(candidate.get("finishReason"), index in self._per_choice)
        if finish is not None:
            out.append(self._finish(index, finish))
        return b"".join(out)

    def _start(self, index: int) -> bytes:
        if index in self._started:
            return b""
        self._started.add(index)
        return self._delta(index, {"role": "assistant", "content": ""})

    def _finish(self, index: int, reason: str) -> bytes:
        self._finished.add(index)
        return self._chunk([{"index": index, "delta": {}, "finish_reason": reason}])

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return self._chunk([{"index": index, "delta": delta, "finish_reason": None}])

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {**self._head, "choices": choices}
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _fail(self, message: str) -> bytes:
        self._failed = True
        return stream_error_event(ProviderError(message))


# --- embeddings ------------------------------------------------------------------------------


def gemini_embeddings_to_openai(
    body: bytes, public_model: str, encoding_format: str, prompt_tokens: int
) -> bytes:
    """A BatchEmbedContentsResponse as OpenAI's embeddings list (base64: little-endian float32)."""
    answer = _load(body)
    embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
    if not isinstance(embeddings, list):
        raise ProviderError("The provider sent an embeddings answer without `embeddings`.")
    data = []
    for i, embedding in enumerate(embeddings):
        values = embedding.get("values") if isinstance(embedding, dict) else None
        if not isinstance(values, list):
            raise ProviderError("The provider sent an embedding without `values`.")
        vector: list[float] | str = values
        if encoding_format == "base64":
            try:
                packed = struct.pack(f"<{len(values)}f", *values)
            except struct.error:
                raise ProviderError("The provider sent an embedding that is not numbers.") from None
            vector = base64.b64encode(packed).decode()
        data.append({"object": "embedding", "index": i, "embedding": vector})
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": public_model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )


__all__ = [
    "GeminiStream",
    "chat_to_gemini",
    "embeddings_to_gemini",
    "error_to_openai",
    "gemini_embeddings_to_openai",
    "gemini_to_chat",
]
