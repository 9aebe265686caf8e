"""The Anthropic front door's answers: an OpenAI chat completion (JSON, or chunks as SSE bytes)
turned into an Anthropic message object or its event stream. Pure: no I/O, no clock.

Rules:
- Content of choice 0 only, in this order for a whole answer: a thinking block from
  ``reasoning_content`` (or ``reasoning``) with ``signature: ""``, a text block from ``content``
  (or ``refusal``), tool_use blocks from ``tool_calls`` (or the legacy ``function_call``).
- Tool arguments that are not a JSON object (invalid JSON, or an array, or empty) give
  ``input: {}``: Anthropic's input must be an object, and inventing keys to carry the raw text
  would hand the client's tool something it never declared.
- finish_reason stop -> end_turn (chat cannot say whether a stop sequence was hit, so
  stop_sequence is always null), length -> max_tokens, tool_calls/function_call -> tool_use,
  content_filter -> refusal; stop or none with tool calls present -> tool_use.
- usage: input_tokens = prompt_tokens - cache reads - cache writes, cache_read_input_tokens =
  prompt_tokens_details.cached_tokens, cache_creation_input_tokens = the gateway's own
  prompt_tokens_details.cache_write_tokens (0 from OpenAI), output_tokens = completion_tokens.
  Without upstream usage: the caller's input estimate and output estimated from the text.
- Streams: message_start at the first chunk (input_tokens = the estimate); blocks numbered in
  order, one open at a time: a change of kind, or a new tool call, closes the open block. A tool
  block starts once its name is known (fragments before it are held). The finish_reason chunk
  closes the open block; message_delta and message_stop follow as soon as usage has arrived with
  or after it, else at ``[DONE]`` or close(). An upstream error event becomes one Anthropic
  ``error`` event (api_error) and ends the translation, as does close() before a finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ...accounting.tokens import estimate_tokens, text_parts
from ...sse import SSEParser
from ..chat_answer import first_choice

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_EARLY_END = "The upstream stream ended before the answer was complete."


def _stop_reason(finish_reason: object, has_tool_use: bool) -> str:
    reason = _STOP_REASONS.get(finish_reason) if isinstance(finish_reason, str) else None
    if has_tool_use and reason in (None, "end_turn"):
        return "tool_use"
    return reason or "end_turn"


def _usage(obj: object) -> tuple[int, int, int, int] | None:
    """(input tokens neither read from nor written to the cache, output tokens, cache reads,
    cache writes) from a chat ``usage`` (its prompt_tokens hold all of the input)."""
    if not isinstance(obj, dict):
        return None
    prompt = _count(obj.get("prompt_tokens"))
    details = obj.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = min(prompt, _count(details.get("cached_tokens")))
    writes = min(prompt - cached, _count(details.get("cache_write_tokens")))
    return prompt - cached - writes, _count(obj.get("completion_tokens")), cached, writes


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _usage_object(usage: tuple[int, int, int, int]) -> dict[str, int]:
    fresh, output, cached, writes = usage
    return {
        "input_tokens": fresh,
        "cache_creation_input_tokens": writes,
        "cache_read_input_tokens": cached,
        "output_tokens": output,
    }


def _tool_input(arguments: object) -> dict[str, Any]:
    if not isinstance(arguments, str):
        return arguments if isinstance(arguments, dict) else {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _reasoning(obj: dict[str, Any]) -> str:
    for key in ("reasoning_content", "reasoning"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _tool_id(message_id: str, n: int) -> str:
    """An id for a tool call upstream sent without one."""
    return f"toolu_{message_id}_{n}"


# --- whole answers ---------------------------------------------------------------------------


def chat_to_message(
    body: bytes, public_model: str, message_id: str, *, input_tokens_estimate: int = 0
) -> bytes:
    """An OpenAI ``chat.completion`` body as an Anthropic message object (JSON bytes).

    ``input_tokens_estimate`` is used only when upstream sent no usage. Raises ProviderError
    when the body is not a chat completion.
    """
    obj, choice, message = first_choice(body)
    content: list[dict[str, Any]] = []
    generated: list[str] = []
    if reasoning := _reasoning(message):
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
        generated.append(reasoning)
    text = "".join(text_parts(message.get("content")))
    if not text and isinstance(message.get("refusal"), str):
        text = message["refusal"]
    if text:
        content.append({"type": "text", "text": text})
        generated.append(text)
    calls = message.get("tool_calls")
    calls = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    if not calls and isinstance(message.get("function_call"), dict):
        calls = [{"function": message["function_call"]}]
    for n, call in enumerate(calls):
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        name, arguments = function.get("name"), function.get("arguments")
        call_id = call.get("id")
        content.append(
            {
                "type": "tool_use",
                "id": call_id if isinstance(call_id, str) and call_id else _tool_id(message_id, n),
                "name": name if isinstance(name, str) else "",
                "input": _tool_input(arguments),
            }
        )
        generated.extend(v for v in (name, arguments) if isinstance(v, str))
    usage = _usage(obj.get("usage"))
    if usage is None:
        usage = (input_tokens_estimate, estimate_tokens("".join(generated)), 0, 0)
    return orjson.dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": public_model,
            "content": content,
            "stop_reason": _stop_reason(choice.get("finish_reason"), bool(calls)),
            "stop_sequence": None,
            "usage": _usage_object(usage),
        }
    )


# --- streams ---------------------------------------------------------------------------------


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


@dataclass(slots=True)
class _ToolCall:
    id: str
    name: str = ""
    block: int | None = None  # its content block index, once started
    held: list[str] = field(default_factory=list)  # argument fragments that came before the name


class ChatToMessagesStream:
    """Turns one ``chat.completion.chunk`` SSE stream into Anthropic's Messages event stream.

    feed() takes the upstream bytes, split anywhere, and returns whole Anthropic events;
    close() ends the stream. Output depends only on the bytes, never on how they were split.
    """

    __slots__ = (
        "_calls",
        "_ended",
        "_estimate",
        "_finish",
        "_generated",
        "_has_tool_use",
        "_id",
        "_model",
        "_next",
        "_open",
        "_parser",
        "_started",
        "_tools",
        "_usage",
    )

    def __init__(self, public_model: str, message_id: str, input_tokens_estimate: int) -> None:
        self._parser = SSEParser()
        self._model = public_model
        self._id = message_id
        self._estimate = input_tokens_estimate
        self._started = False
        self._ended = False  # message_stop or error sent: nothing more comes out
        self._open: tuple[int, str] | None = None  # (index, "text" | "thinking" | "tool_use")
        self._next = 0  # index of the next content block
        self._tools: dict[object, _ToolCall] = {}  # the latest call of each tool_calls[].index
        self._calls: list[_ToolCall] = []  # every call, in order
        self._has_tool_use = False
        self._finish: str | None = None
        self._usage: tuple[int, int, int, int] | None = None
        self._generated: list[str] = []  # for the output estimate when no usage comes

    def feed(self, raw: bytes) -> bytes:
        """Upstream bytes in; the Anthropic events they complete out."""
        if self._ended:
            return b""
        out: list[bytes] = []
        for event in self._parser.feed(raw):
            if self._ended:
                break
            if event.data is not None:
                self._data(event.data, out)
        return b"".join(out)

    def close(self) -> bytes:
        """End of the upstream stream: the last events, or an error event if it ended early."""
        out: list[bytes] = []
        if not self._ended:
            for event in self._parser.flush():
                if not self._ended and event.data is not None:
                    self._data(event.data, out)
        if not self._ended:
            if self._finish is not None:
                self._end(out)
            else:
                self._error(_EARLY_END, out)
        return b"".join(out)

    def _data(self, data: bytes, out: list[bytes]) -> None:
        if data == b"[DONE]":
            self._end(out)  # a clean end, even if no chunk said finish_reason
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(chunk, dict):
            return
        error = chunk.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else error
            self._error(message if isinstance(message, str) and message else "Upstream error.", out)
            return
        self._start(out)
        usage = _usage(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta, out)
            finish = choice.get("finish_reason")
            if isinstance(finish, str):
                self._finish = finish
                self._start_held_tools(out)
                self._close_block(out)
        if usage is not None and self._finish is not None:
            self._end(out)

    def _start(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage_object((self._estimate, 0, 0, 0)),
        }
        out.append(_event("message_start", {"type": "message_start", "message": message}))

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        if reasoning := _reasoning(delta):
            self._text("thinking", reasoning, out)
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._text("text", text, out)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    index = call.get("index")
                    self._tool_delta(call, index if isinstance(index, int) else position, out)
        legacy = delta.get("function_call")
        if isinstance(legacy, dict):
            self._tool_delta({"function": legacy}, "function_call", out)

    def _text(self, kind: str, text: str, out: list[bytes]) -> None:
        """A text or thinking fragment, in the open block of its kind or a new one."""
        if self._open is not None and self._open[1] == kind:
            index = self._open[0]
        elif kind == "thinking":
            index = self._open_block(kind, {"type": kind, "thinking": "", "signature": ""}, out)
        else:
            index = self._open_block(kind, {"type": kind, "text": ""}, out)
        out.append(_delta_event(index, {"type": f"{kind}_delta", kind: text}))
        self._generated.append(text)

    def _tool_delta(self, call: dict[str, Any], key: object, out: list[bytes]) -> None:
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        call_id, name = call.get("id"), function.get("name")
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) else ""
        tool = self._tools.get(key)
        # Some upstreams reuse index 0 for every call: a different id means another call.
        if tool is None or (isinstance(call_id, str) and call_id and call_id != tool.id):
            new_id = call_id if isinstance(call_id, str) and call_id else None
            tool = _ToolCall(new_id or _tool_id(self._id, len(self._calls)))
            self._tools[key] = tool
            self._calls.append(tool)
        if isinstance(name, str) and name and not tool.name:
            tool.name = name
            self._generated.append(name)
        if arguments:
            self._generated.append(arguments)
        if tool.block is None:
            if arguments:
                tool.held.append(arguments)
            if tool.name:
                self._start_tool(tool, out)
        elif arguments:
            # Upstreams send one call's fragments together; one that comes back to an earlier,
            # closed call still goes to that call's block, which is where a client looks for it.
            out.append(_delta_event(tool.block, _json_delta(arguments)))

    def _start_tool(self, tool: _ToolCall, out: list[bytes]) -> None:
        start = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
        tool.block = self._open_block("tool_use", start, out)
        self._has_tool_use = True
        if tool.held:
            out.append(_delta_event(tool.block, _json_delta("".join(tool.held))))
            tool.held.clear()

    def _start_held_tools(self, out: list[bytes]) -> None:
        """At the finish, calls whose name never came are started anyway (with an empty name)."""
        for tool in self._calls:
            if tool.block is None:
                self._start_tool(tool, out)

    def _open_block(self, kind: str, start: dict[str, Any], out: list[bytes]) -> int:
        self._close_block(out)
        index, self._next = self._next, self._next + 1
        self._open = (index, kind)
        payload = {"type": "content_block_start", "index": index, "content_block": start}
        out.append(_event("content_block_start", payload))
        return index

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is not None:
            payload = {"type": "content_block_stop", "index": self._open[0]}
            out.append(_event("content_block_stop", payload))
            self._open = None

    def _end(self, out: list[bytes]) -> None:
        """message_delta and message_stop, after closing whatever is still open."""
        self._start(out)
        self._start_held_tools(out)
        self._close_block(out)
        if self._usage is not None:
            usage: dict[str, int] = _usage_object(self._usage)
            del usage["cache_creation_input_tokens"]
        else:
            usage = {"output_tokens": estimate_tokens("".join(self._generated))}
        delta = {
            "stop_reason": _stop_reason(self._finish, self._has_tool_use),
            "stop_sequence": None,
        }
        out.append(
            _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        )
        out.append(_event("message_stop", {"type": "message_stop"}))
        self._ended = True

    def _error(self, message: str, out: list[bytes]) -> None:
        error = {"type": "api_error", "message": message}
        out.append(_event("error", {"type": "error", "error": error}))
        self._ended = True


def _delta_event(index: int, delta: dict[str, Any]) -> bytes:
    return _event(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def _json_delta(fragment: str) -> dict[str, Any]:
    return {"type": "input_json_delta", "partial_json": fragment}
