"""Token accounting for Responses API answers relayed unchanged (openai and azure providers).
Reads a Response body, or each stream event's data, and never alters a byte.

Rules:
- Usage is ``usage.input_tokens`` / ``usage.output_tokens`` of the Response, in a stream the one
  carried by the terminal event: response.completed, response.incomplete or response.failed.
- A stream that ends without a terminal event is not complete, whatever it showed: its usage is
  estimated from the deltas it carried (text, refusals, reasoning, tool-call arguments).
"""

from __future__ import annotations

from typing import Any

from ...accounting.tokens import Usage, estimate_tokens, json_object, normalised, token_count

_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
# Events whose ``delta`` is generated text the provider bills as output.
_GENERATED = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
    }
)


def response_summary(body: bytes) -> tuple[str | None, Usage | None, str]:
    """(id, usage, status) of a non-stream Response body; (None, None, "") when unreadable."""
    obj = json_object(body)
    if obj is None:
        return None, None, ""
    return _str(obj.get("id")), _usage(obj.get("usage")), _str(obj.get("status")) or ""


class ResponsesStreamReader:
    """Follows one Responses stream: the response id, the terminal status and usage, the text."""

    __slots__ = ("_generated", "error", "response_id", "status", "terminal", "usage")

    def __init__(self) -> None:
        self.response_id: str | None = None
        """From response.created (or any later lifecycle event, if that one was missed)."""
        self.usage: Usage | None = None
        """The terminal event's usage; None until then, or if it had none."""
        self.status: str | None = None
        """The latest lifecycle status: in_progress, then completed, incomplete or failed."""
        self.terminal = False
        """True once response.completed, response.incomplete or response.failed arrived."""
        self.error: Any = None
        """The ``error`` event's payload, or the failed response's ``error``."""
        self._generated: list[str] = []

    @property
    def text(self) -> str:
        """Everything generated so far (output text, refusals, reasoning, tool arguments)."""
        return "".join(self._generated)

    def feed(self, data: bytes) -> None:
        """Account for one SSE event's data."""
        event = json_object(data)
        if event is None:
            return
        kind = event.get("type")
        if kind in _GENERATED:
            delta = event.get("delta")
            if isinstance(delta, str):
                self._generated.append(delta)
            return
        if kind == "error":
            self.error = {k: event.get(k) for k in ("code", "message", "param")}
            return
        response = event.get("response")
        if not isinstance(response, dict) or not isinstance(kind, str):
            return
        if not kind.startswith("response.") or self.terminal:
            return
        if self.response_id is None:
            self.response_id = _str(response.get("id"))
        self.status = _str(response.get("status")) or self.status
        if kind in _TERMINAL:
            self.terminal = True
            self.usage = _usage(response.get("usage"))
            if response.get("error") is not None:
                self.error = response["error"]

    @property
    def complete(self) -> bool:
        """Whether the stream reached a terminal event (what the relay calls complete)."""
        return self.terminal

    def final_usage(self, prompt_estimate: int) -> Usage:
        """The terminal event's usage, else an estimate: ``prompt_estimate`` in, deltas out."""
        if self.terminal and self.usage is not None:
            return self.usage
        return Usage(prompt_estimate, estimate_tokens(self.text), estimated=True)


def _usage(obj: Any) -> Usage | None:
    """A Response's usage: ``input_tokens_details.cached_tokens`` (and the bridge's own
    ``cache_write_tokens``) are parts of the input, ``output_tokens_details.reasoning_tokens``
    of the output."""
    if not isinstance(obj, dict):
        return None
    into = obj.get("input_tokens_details")
    into = into if isinstance(into, dict) else {}
    out = obj.get("output_tokens_details")
    return normalised(
        token_count(obj.get("input_tokens")),
        token_count(obj.get("output_tokens")),
        token_count(into.get("cached_tokens")),
        token_count(into.get("cache_write_tokens")),
        token_count(into.get("cache_write_1h_tokens")),
        token_count(out.get("reasoning_tokens")) if isinstance(out, dict) else 0,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
