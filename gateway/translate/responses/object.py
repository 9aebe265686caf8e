"""The Responses API's Response object and output items, built from OpenAI chat answers.
Shared by the non-stream and stream bridges; item ids derive from the response id, never at random.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..chat_answer import first_choice
from .tools import namespaced_names

# finish_reason -> incomplete_details.reason; any other finish completes the response.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
# ResponseError.code is a closed set; codes outside it become server_error.
_ERROR_CODES = frozenset({"server_error", "rate_limit_exceeded", "invalid_prompt"})


@dataclass(frozen=True, slots=True)
class ResponseContext:
    """What a Response echoes besides its output: ids, model, time and the request's settings."""

    response_id: str
    model: str
    """The public model name the client asked for."""
    created_at: int
    """Unix seconds, from the caller's clock."""
    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    """Function tools in the Responses shape ({type, name, description, parameters, strict})."""
    tool_choice: Any = "auto"
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    previous_response_id: str | None = None
    store: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    parallel_tool_calls: bool = True
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    user: str | None = None
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Chat function name -> (namespace, name) of the request's namespace tools."""

    @classmethod
    def from_request(
        cls, body: dict[str, Any], *, response_id: str, model: str, created_at: int
    ) -> ResponseContext:
        """The context of a request body that responses_to_chat() has accepted."""
        text = body.get("text")
        return cls(
            response_id=response_id,
            model=model,
            created_at=created_at,
            instructions=_str_or_none(body.get("instructions")),
            tools=[_echo_tool(t) for t in body.get("tools") or () if isinstance(t, dict)],
            tool_choice=body.get("tool_choice") or "auto",
            temperature=_number_or_none(body.get("temperature")),
            top_p=_number_or_none(body.get("top_p")),
            max_output_tokens=_int_or_none(body.get("max_output_tokens")),
            previous_response_id=_str_or_none(body.get("previous_response_id")),
            store=body.get("store") is not False,
            metadata=dict(body["metadata"]) if isinstance(body.get("metadata"), dict) else {},
            parallel_tool_calls=body.get("parallel_tool_calls") is not False,
            text={"format": {"type": "text"}, **text}
            if isinstance(text, dict)
            else {"format": {"type": "text"}},
            user=_str_or_none(body.get("user")),
            namespaced=namespaced_names(body.get("tools")),
        )


def item_id(ctx: ResponseContext, prefix: str, output_index: int) -> str:
    """The id of output item ``output_index``: ``<prefix>_<response id without resp_>_<index>``."""
    base = ctx.response_id.removeprefix("resp_")
    return f"{prefix}_{base}_{output_index}"


def call_id(ctx: ResponseContext, output_index: int, given: Any) -> str:
    """The tool call's own id when the chat answer had one, else one derived from the response."""
    return given if isinstance(given, str) and given else item_id(ctx, "call", output_index)


def text_part(text: str) -> dict[str, Any]:
    """An output_text content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(ctx: ResponseContext, index: int, text: str | None, status: str) -> dict[str, Any]:
    """An assistant message output item; ``text`` None gives the empty item of output_item.added."""
    content = [] if text is None else [text_part(text)]
    return {
        "id": item_id(ctx, "msg", index),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def function_call_item(
    ctx: ResponseContext, index: int, call: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    """A function_call output item (a namespace tool's with its own name and `namespace`)."""
    item = {
        "id": item_id(ctx, "fc", index),
        "type": "function_call",
        "status": status,
        "call_id": call,
        "name": name,
        "arguments": arguments,
    }
    name_call(ctx, item, name)
    return item


def name_call(ctx: ResponseContext, item: dict[str, Any], name: str) -> None:
    """Set a function_call item's name from the chat function name."""
    if name in ctx.namespaced:
        item["namespace"], item["name"] = ctx.namespaced[name]
    else:
        item["name"] = name


def response_usage(chat_usage: Any) -> dict[str, Any] | None:
    """A chat ``usage`` object in the Responses shape; None when there is none."""
    if not isinstance(chat_usage, dict):
        return None
    prompt = _count(chat_usage.get("prompt_tokens"))
    completion = _count(chat_usage.get("completion_tokens"))
    prompt_details = chat_usage.get("prompt_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = chat_usage.get("completion_tokens_details")
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": _count(prompt_details.get("cached_tokens")),
            "cache_write_tokens": _count(prompt_details.get("cache_write_tokens")),
            **(
                {"cache_write_1h_tokens": _count(prompt_details["cache_write_1h_tokens"])}
                if "cache_write_1h_tokens" in prompt_details
                else {}
            ),
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": _count(completion_details.get("reasoning_tokens"))
        },
        "total_tokens": prompt + completion,
    }


def incomplete_reason(finish_reason: Any) -> str | None:
    """incomplete_details.reason for a chat finish_reason; None when the answer is complete."""
    return _INCOMPLETE.get(finish_reason) if isinstance(finish_reason, str) else None


def response_error(error: Any) -> dict[str, Any]:
    """A Response ``error`` ({code, message}) from an OpenAI error object."""
    error = error if isinstance(error, dict) else {"message": str(error)}
    code = error.get("code")
    message = error.get("message")
    return {
        "code": code if code in _ERROR_CODES else "server_error",
        "message": message if isinstance(message, str) and message else "The provider failed.",
    }


def response_object(
    ctx: ResponseContext,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    incomplete: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole Response: status, output and usage, plus what the request asked for."""
    return {
        "id": ctx.response_id,
        "object": "response",
        "created_at": ctx.created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": ctx.instructions,
        "max_output_tokens": ctx.max_output_tokens,
        "max_tool_calls": None,
        "model": ctx.model,
        "output": output,
        "parallel_tool_calls": ctx.parallel_tool_calls,
        "previous_response_id": ctx.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "store": ctx.store,
        "temperature": ctx.temperature,
        "text": ctx.text,
        "tool_choice": ctx.tool_choice,
        "tools": ctx.tools,
        "top_p": ctx.top_p,
        "truncation": "disabled",
        "usage": usage,
        "user": ctx.user,
        "metadata": ctx.metadata,
    }


def chat_to_response(chat_body: bytes, ctx: ResponseContext) -> dict[str, Any]:
    """The Response for a non-stream chat.completion body (choice 0).

    Text becomes one message item, each tool call a function_call item after it. A ``length``
    finish gives status incomplete (reason max_output_tokens) and marks the last item incomplete.
    """
    chat, choice, message = first_choice(chat_body)
    output: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str) and content:
        output.append(message_item(ctx, 0, content, "completed"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        index = len(output)
        output.append(
            function_call_item(
                ctx,
                index,
                call_id(ctx, index, call.get("id")),
                _str(function.get("name")),
                _str(function.get("arguments")),
                "completed",
            )
        )
    incomplete = incomplete_reason(choice.get("finish_reason"))
    if incomplete and output:
        output[-1]["status"] = "incomplete"
    return response_object(
        ctx,
        status="incomplete" if incomplete else "completed",
        output=output,
        usage=response_usage(chat.get("usage")),
        incomplete=incomplete,
    )


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        return dict(tool)  # namespaces and hosted tools, as the client sent them
    return {
        "type": tool.get("type"),
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
